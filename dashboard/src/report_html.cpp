// render_report_html: the self-contained report page. The charts are SVG
// strings built here; report_assets.cpp holds the page's CSS and script.
#include <packtrain/dashboard/report.hpp>

#include <packtrain/scheduler/console_sink.hpp>
#include <packtrain/scheduler/results.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>

namespace packtrain::dashboard {

extern const char* const kReportCss;
extern const char* const kReportScript;

namespace {

// The charts' coordinate system (SVG user units; the SVG scales to the page).
constexpr double kWidth = 1200;
constexpr double kLeft = 84;   // track labels
constexpr double kRight = 60;  // per-track means
constexpr double kPlotWidth = kWidth - kLeft - kRight;
constexpr double kAxisHeight = 22;

constexpr JobStatus kStatuses[] = {JobStatus::done,    JobStatus::diverged, JobStatus::failed,  JobStatus::crashed,
                                   JobStatus::cancelled, JobStatus::running, JobStatus::skipped, JobStatus::queued};

const char* const kSeriesColours[] = {"#3a7bd5", "#e07b39", "#2e9e68", "#9b59b6", "#d9453d", "#1b9aaa", "#8a6d3b"};

std::string esc(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

// Coordinates: one decimal is finer than any screen.
std::string xy(double v) { return short_number(v, 1); }

std::string percent(double fraction) { return std::isfinite(fraction) ? fixed(fraction * 100.0, 0) + "%" : "–"; }

std::string human_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "–";
  if (seconds < 10) return fixed(seconds, 1) + "s";
  return format_duration(seconds);
}

std::string metric_text(double v) { return std::isfinite(v) ? fixed(v, 4) : "–"; }

std::string json_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return short_number(v.get<double>(), 6);
  return v.dump();
}

std::string local_time(double unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// A "nice" step (1, 2, 2.5, 5 x 10^k) that cuts `span` into at most `ticks` pieces.
double nice_step(double span, int ticks) {
  if (!(span > 0)) return 1;
  const double raw = span / ticks;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * magnitude >= raw) return m * magnitude;
  return 10 * magnitude;
}

// Time steps people read: seconds, then whole minutes, then whole hours.
double time_step(double span) {
  static const double kSteps[] = {0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
                                  21600, 43200, 86400};
  for (double s : kSteps)
    if (span / s <= 10) return s;
  return nice_step(span, 10);
}

std::string time_label(double t, double step) {
  if (step < 1) return fixed(t, 1) + "s";
  const long s = std::lround(t);
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + (s % 60 ? fixed(static_cast<double>(s % 60), 0) + "s" : "");
  return std::to_string(s / 3600) + "h" + (s % 3600 ? (s % 3600 / 60 < 10 ? "0" : "") + std::to_string(s % 3600 / 60) + "m" : "");
}

// Maps a time (unix seconds) to x in the charts.
struct TimeScale {
  double begin, end;
  double x(double t) const { return kLeft + (t - begin) / std::max(end - begin, 1e-3) * kPlotWidth; }
};

// Vertical grid lines and labels under a chart of height `height`.
std::string time_axis(const TimeScale& ts, double top, double height) {
  const double span = ts.end - ts.begin;
  const double step = time_step(span);
  std::string out = "<g class=\"axis\">";
  for (double t = 0; t <= span + 1e-9; t += step) {
    const double x = ts.x(ts.begin + t);
    out += "<line x1=\"" + xy(x) + "\" x2=\"" + xy(x) + "\" y1=\"" + xy(top) + "\" y2=\"" + xy(top + height) +
           "\" class=\"grid\"/>";
    out += "<text x=\"" + xy(x) + "\" y=\"" + xy(top + height + 15) + "\" text-anchor=\"middle\">" +
           esc(time_label(t, step)) + "</text>";
  }
  return out + "</g>";
}

// An area chart of `values` (0..top_value, NaN = gap) in a band of
// `height`, as SVG path data.
std::string area_path(const std::vector<double>& values, double top_value, double height) {
  std::string d;
  const double n = static_cast<double>(values.size());
  std::size_t i = 0;
  while (i < values.size()) {
    while (i < values.size() && !std::isfinite(values[i])) ++i;
    if (i == values.size()) break;
    const std::size_t first = i;
    std::string line;
    for (; i < values.size() && std::isfinite(values[i]); ++i) {
      const double v = std::clamp(values[i] / top_value, 0.0, 1.0);
      const double x0 = kLeft + static_cast<double>(i) / n * kPlotWidth;
      const double x1 = kLeft + static_cast<double>(i + 1) / n * kPlotWidth;
      const double y = height - v * height;
      line += "L" + xy(x0) + " " + xy(y) + "L" + xy(x1) + " " + xy(y);
    }
    const double start = kLeft + static_cast<double>(first) / n * kPlotWidth;
    const double stop = kLeft + static_cast<double>(i) / n * kPlotWidth;
    d += "M" + xy(start) + " " + xy(height) + line + "L" + xy(stop) + " " + xy(height) + "Z";
  }
  return d;
}

struct Totals {
  std::map<JobStatus, int> by_status;
  double makespan = 0, job_seconds = 0;
  double mean_busy = NAN, peak_memory = NAN;
};

Totals totals(const ReportInput& in) {
  Totals t;
  for (const auto& r : in.jobs) ++t.by_status[r.status];
  double first = INFINITY, last = -INFINITY, seconds = 0;
  for (const auto& r : in.jobs) {
    seconds += r.seconds();
    if (r.started_at > 0) first = std::min(first, r.started_at);
    last = std::max(last, r.ended_at);
  }
  const auto number = [&](const char* key, double fallback) {
    return in.summary.contains(key) && in.summary[key].is_number() ? in.summary[key].get<double>() : fallback;
  };
  t.makespan = number("makespan_s", std::isfinite(first) && last > first ? last - first : 0);
  t.job_seconds = number("job_seconds", seconds);
  double busy = 0;
  int cores = 0;
  for (const auto& track : in.utilization.tracks) {
    if (track.series.kind == SeriesKind::core_busy && std::isfinite(track.mean)) {
      busy += track.mean;
      ++cores;
    }
    if (track.series.kind == SeriesKind::memory_mb) t.peak_memory = track.peak;
  }
  if (cores) t.mean_busy = busy / cores;
  return t;
}

// "lenet5 / cosine"; numbers with their key: "reset_epoch=2 / sparsity=0.5".
std::string group_name(const nlohmann::json& key) {
  std::string name;
  for (const auto& [k, v] : key.items())
    name += (name.empty() ? "" : " / ") + (v.is_string() ? json_text(v) : k + "=" + json_text(v));
  return name;
}

// --- sections -----------------------------------------------------------------

std::string header_section(const ReportInput& in) {
  const std::string command = in.sweep.command.empty() ? "run" : in.sweep.command;
  std::string meta = "rank " + std::to_string(in.rank) + " · " + std::to_string(in.cores.size()) + " core" +
                     (in.cores.size() == 1 ? "" : "s");
  if (in.utilization.begin > 0) meta += " · started " + local_time(in.utilization.begin);
  return "<header><div class=\"brand\">packtrain</div><h1>" + esc(command) + " <span class=\"dim\">·</span> " +
         esc(in.title) + "</h1><div class=\"meta\">" + esc(meta) + "</div></header>\n";
}

std::string card(const std::string& label, const std::string& value_html, const std::string& sub,
                 const std::string& cls = "") {
  return "<div class=\"card" + (cls.empty() ? "" : " " + cls) + "\"><div class=\"k\">" + esc(label) +
         "</div><div class=\"v\">" + value_html + "</div><div class=\"s\">" + esc(sub) + "</div></div>";
}

std::string cards_section(const ReportInput& in, const Totals& t, const std::vector<GroupStat>& groups) {
  std::string states;
  for (JobStatus s : kStatuses) {
    const auto it = t.by_status.find(s);
    if (it == t.by_status.end() || it->second == 0) continue;
    states += (states.empty() ? "" : " · ") + std::to_string(it->second) + " " + std::string(to_string(s));
  }
  std::set<std::string> attempted;
  for (const auto& a : in.attempts) attempted.insert(a.job_id);
  const auto retried = in.attempts.size() - attempted.size();
  if (retried > 0) states += " · " + std::to_string(retried) + " retried";
  std::string out = "<section class=\"cards\">";
  out += card("jobs", "<span id=\"job-count\">" + std::to_string(in.jobs.size()) + "</span>",
              states.empty() ? "no jobs" : states);
  out += card("makespan", esc(human_duration(t.makespan)), "jobs' own time " + human_duration(t.job_seconds));
  const double speedup = t.makespan > 0 ? t.job_seconds / t.makespan : NAN;
  out += card("packing speedup", std::isfinite(speedup) ? fixed(speedup, 2) + "×" : "–", "vs. one job at a time");
  out += card("core utilization", esc(percent(t.mean_busy)),
              "mean over " + std::to_string(in.cores.size()) + " core" + (in.cores.size() == 1 ? "" : "s"));
  out += card("peak memory", std::isfinite(t.peak_memory) ? fixed(t.peak_memory, 0) + " MiB" : "–", "resident, whole process");
  for (const auto& g : groups)
    if (g.best)
      out += card("best " + in.sweep.metric, metric_text(g.mean), group_name(g.key) + " ± " + metric_text(g.std), "best");
  return out + "</section>\n";
}

std::string utilization_section(const ReportInput& in) {
  const auto& chart = in.utilization;
  const TimeScale ts{chart.begin, chart.end};
  const std::size_t n = in.cores.size();
  const double row = n <= 16 ? 26 : n <= 48 ? 16 : 9;
  const double gap = row >= 16 ? 4 : 1;
  const int label_every = row >= 12 ? 1 : 4;

  std::map<int, const UtilizationTrack*> by_core;
  std::vector<const UtilizationTrack*> others;
  for (const auto& t : chart.tracks) {
    if (t.series.kind == SeriesKind::core_busy) by_core[t.series.index] = &t;
    else others.push_back(&t);
  }
  std::string body;
  double y = 6;
  for (std::size_t i = 0; i < n; ++i) {
    const int core = in.cores[i];
    const auto it = by_core.find(core);
    const UtilizationTrack* t = it == by_core.end() ? nullptr : it->second;
    body += "<g class=\"core-track\" data-core=\"" + std::to_string(core) + "\" transform=\"translate(0," + xy(y) + ")\">";
    body += "<title>core " + std::to_string(core) + (t ? ": mean " + percent(t->mean) + ", peak " + percent(t->peak) : ": no samples") +
            "</title>";
    if (static_cast<int>(i) % label_every == 0)
      body += "<text class=\"lbl\" x=\"" + xy(kLeft - 8) + "\" y=\"" + xy(row / 2) + "\">core " + std::to_string(core) + "</text>";
    body += "<rect class=\"band\" x=\"" + xy(kLeft) + "\" y=\"0\" width=\"" + xy(kPlotWidth) + "\" height=\"" + xy(row) + "\"/>";
    if (t) {
      body += "<path class=\"area\" d=\"" + area_path(t->buckets, 1.0, row) + "\"/>";
      body += "<text class=\"val\" x=\"" + xy(kWidth - kRight + 8) + "\" y=\"" + xy(row / 2) + "\">" + percent(t->mean) + "</text>";
    }
    body += "</g>\n";
    y += row + gap;
  }
  // Memory and GPU tracks, each on its own scale.
  for (const auto* t : others) {
    y += 8;
    const double h = 44;
    const bool fraction = t->series.kind == SeriesKind::gpu_busy;
    const double top = fraction ? 1.0 : std::max(1.0, t->peak * 1.1);
    const std::string cls = t->series.kind == SeriesKind::memory_mb ? "memory-track" : "gpu-track";
    body += "<g class=\"" + cls + "\" data-series=\"" + esc(t->series.name()) + "\" transform=\"translate(0," + xy(y) + ")\">";
    body += "<title>" + esc(t->series.label()) + (fraction ? ": mean " + percent(t->mean) : ": peak " + fixed(t->peak, 0) + " MiB") +
            "</title>";
    body += "<text class=\"lbl\" x=\"" + xy(kLeft - 8) + "\" y=\"" + xy(h / 2) + "\">" + esc(t->series.label()) + "</text>";
    body += "<rect class=\"band\" x=\"" + xy(kLeft) + "\" y=\"0\" width=\"" + xy(kPlotWidth) + "\" height=\"" + xy(h) + "\"/>";
    body += "<path class=\"area " + std::string(fraction ? "" : "mem") + "\" d=\"" + area_path(t->buckets, top, h) + "\"/>";
    body += "<text class=\"val\" x=\"" + xy(kWidth - kRight + 8) + "\" y=\"" + xy(h / 2) + "\">" +
            (fraction ? percent(t->mean) : fixed(t->peak, 0) + " MiB") + "</text>";
    body += "</g>\n";
    y += h;
  }
  const double height = y + 2;
  std::string out = "<section id=\"utilization\"><h2>Core utilization</h2><p class=\"note\">Busy fraction of each core per "
                    "time slice, every process counted (from /proc/stat); the number at the right is the mean over the run.";
  if (chart.samples == 0) out += " <b>No utilization samples were recorded for this run.</b>";
  out += "</p>\n<svg class=\"chart\" id=\"utilization-chart\" viewBox=\"0 0 " + xy(kWidth) + " " + xy(height + kAxisHeight) +
         "\" role=\"img\" aria-label=\"utilization of every core over time\">\n";
  out += time_axis(ts, 0, height) + "\n" + body + "</svg></section>\n";
  return out;
}

std::string gantt_section(const ReportInput& in) {
  const TimeScale ts{in.utilization.begin, in.utilization.end};
  const std::size_t n = in.cores.size();
  const double row = n <= 16 ? 26 : n <= 48 ? 16 : 9;
  const double gap = row >= 16 ? 4 : 1;
  const int label_every = row >= 12 ? 1 : 4;
  std::map<JobStatus, int> attempts_by_status;
  std::map<int, std::vector<const AttemptSpan*>> by_core;
  for (const auto& a : in.attempts) {
    ++attempts_by_status[a.status];
    for (int c : a.cores) by_core[c].push_back(&a);
  }
  std::map<std::string, const JobRecord*> records;
  for (const auto& r : in.jobs) records[r.id] = &r;

  std::string body;
  double y = 6;
  for (std::size_t i = 0; i < n; ++i) {
    const int core = in.cores[i];
    body += "<g class=\"gantt-row\" data-gantt-core=\"" + std::to_string(core) + "\" transform=\"translate(0," + xy(y) + ")\">";
    if (static_cast<int>(i) % label_every == 0)
      body += "<text class=\"lbl\" x=\"" + xy(kLeft - 8) + "\" y=\"" + xy(row / 2) + "\">core " + std::to_string(core) + "</text>";
    body += "<rect class=\"band\" x=\"" + xy(kLeft) + "\" y=\"0\" width=\"" + xy(kPlotWidth) + "\" height=\"" + xy(row) + "\"/>";
    for (const auto* a : by_core[core]) {
      const double x0 = ts.x(a->start);
      const double w = std::max(1.0, ts.x(a->end) - x0);
      std::string tip = a->name + " — " + std::string(to_string(a->status)) + ", " + human_duration(a->end - a->start);
      if (a->attempt > 1) tip += ", attempt " + std::to_string(a->attempt);
      if (a->cores.size() > 1) tip += ", " + std::to_string(a->cores.size()) + " cores";
      if (const auto it = records.find(a->job_id); it != records.end()) {
        const auto& m = it->second->metrics;
        if (a->status == JobStatus::done && m.is_object() && m.contains(in.sweep.metric) && m[in.sweep.metric].is_number())
          tip += ", " + in.sweep.metric + " " + metric_text(m[in.sweep.metric].get<double>());
        if (a->status != JobStatus::done && !it->second->message.empty() && a->status == it->second->status)
          tip += ": " + it->second->message;
      }
      body += "<g class=\"bar st-" + std::string(to_string(a->status)) + "\" data-job=\"" + esc(a->job_id) + "\"><title>" +
              esc(tip) + "</title><rect x=\"" + xy(x0) + "\" y=\"1.5\" width=\"" + xy(w) + "\" height=\"" + xy(row - 3) +
              "\" rx=\"" + (row >= 16 ? "3" : "1") + "\"/>";
      // A label where it fits (about 6.3 units a character at 11px).
      const double room = w - 10;
      if (row >= 16 && room > 30) {
        std::string label = a->name;
        const auto fits = static_cast<std::size_t>(room / 6.3);
        if (label.size() > fits) {
          std::size_t cut = fits > 1 ? fits - 1 : 0;
          while (cut > 0 && (static_cast<unsigned char>(label[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
          label = label.substr(0, cut) + "…";
        }
        body += "<text x=\"" + xy(x0 + 5) + "\" y=\"" + xy(row / 2) + "\">" + esc(label) + "</text>";
      }
      body += "</g>";
    }
    body += "</g>\n";
    y += row + gap;
  }
  const double height = y + 2;
  std::string legend = "<div class=\"legend\">";
  for (JobStatus s : kStatuses) {
    const auto it = attempts_by_status.find(s);
    if (it == attempts_by_status.end()) continue;
    legend += "<span><i class=\"sw st-" + std::string(to_string(s)) + "\"></i>" + std::string(to_string(s)) + " " +
              std::to_string(it->second) + "</span>";
  }
  legend += "</div>";
  std::string out = "<section id=\"gantt\"><h2>Jobs per core</h2><p class=\"note\">Every attempt of every job on the core(s) it "
                    "owned, coloured by how it ended. Hover for details.</p>" + legend + "\n";
  out += "<svg class=\"chart\" id=\"gantt-chart\" viewBox=\"0 0 " + xy(kWidth) + " " + xy(height + kAxisHeight) +
         "\" role=\"img\" aria-label=\"jobs per core over time\">\n";
  out += time_axis(ts, 0, height) + "\n" + body + "</svg></section>\n";
  return out;
}

// One line per plot_series value of the metric's mean against plot_x, with
// std error bars, and the reference (the dense model) dashed.
std::string line_plot(const ReportInput& in) {
  const auto& s = in.sweep;
  std::vector<std::string> keys;
  if (!s.plot_series.empty()) keys.push_back(s.plot_series);
  keys.push_back(s.plot_x);
  const auto groups = group_stats(in.jobs, keys, s.metric, s.higher_is_better);
  struct Point {
    double x, mean, std;
  };
  std::vector<std::pair<nlohmann::json, std::vector<Point>>> lines;
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (const auto& g : groups) {
    const auto& xv = g.key[s.plot_x];
    if (!xv.is_number() || !std::isfinite(g.mean)) continue;
    const nlohmann::json series = s.plot_series.empty() ? nlohmann::json(s.metric) : g.key[s.plot_series];
    auto it = std::find_if(lines.begin(), lines.end(), [&](const auto& l) { return l.first == series; });
    if (it == lines.end()) {
      lines.push_back({series, {}});
      it = lines.end() - 1;
    }
    const double x = xv.get<double>();
    it->second.push_back({x, g.mean, g.std});
    x_lo = std::min(x_lo, x);
    x_hi = std::max(x_hi, x);
    y_lo = std::min(y_lo, g.mean - g.std);
    y_hi = std::max(y_hi, g.mean + g.std);
  }
  if (lines.empty()) return "<p class=\"note\">No done job has a numeric " + esc(s.plot_x) + " and " + esc(s.metric) + " to plot.</p>";
  if (s.plot_reference) {
    y_lo = std::min(y_lo, *s.plot_reference);
    y_hi = std::max(y_hi, *s.plot_reference);
  }
  std::sort(lines.begin(), lines.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& l : lines) std::sort(l.second.begin(), l.second.end(), [](const Point& a, const Point& b) { return a.x < b.x; });
  if (x_hi <= x_lo) {
    x_lo -= 0.5;
    x_hi += 0.5;
  }
  const double y_pad = std::max((y_hi - y_lo) * 0.08, 1e-3);
  y_lo -= y_pad;
  y_hi += y_pad;

  const double w = 760, h = 340, ml = 64, mr = 170, mt = 14, mb = 46;
  const double pw = w - ml - mr, ph = h - mt - mb;
  const auto X = [&](double x) { return ml + (x - x_lo) / (x_hi - x_lo) * pw; };
  const auto Y = [&](double y) { return mt + (1 - (y - y_lo) / (y_hi - y_lo)) * ph; };
  std::string out = "<svg class=\"plot\" id=\"metric-plot\" viewBox=\"0 0 " + xy(w) + " " + xy(h) + "\" role=\"img\" aria-label=\"" +
                    esc(s.metric + " against " + s.plot_x) + "\">";
  out += "<g class=\"axis\">";
  const double ys = nice_step(y_hi - y_lo, 6);
  for (double v = std::ceil(y_lo / ys) * ys; v <= y_hi + 1e-12; v += ys) {
    out += "<line class=\"grid\" x1=\"" + xy(ml) + "\" x2=\"" + xy(ml + pw) + "\" y1=\"" + xy(Y(v)) + "\" y2=\"" + xy(Y(v)) + "\"/>";
    out += "<text x=\"" + xy(ml - 6) + "\" y=\"" + xy(Y(v) + 4) + "\" text-anchor=\"end\">" + short_number(v, 4) + "</text>";
  }
  std::set<double> xs;
  for (const auto& l : lines)
    for (const auto& p : l.second) xs.insert(p.x);
  for (double v : xs)
    out += "<text x=\"" + xy(X(v)) + "\" y=\"" + xy(mt + ph + 16) + "\" text-anchor=\"middle\">" + short_number(v, 4) + "</text>";
  out += "<line class=\"frame\" x1=\"" + xy(ml) + "\" x2=\"" + xy(ml + pw) + "\" y1=\"" + xy(mt + ph) + "\" y2=\"" + xy(mt + ph) + "\"/>";
  out += "<text x=\"" + xy(ml + pw / 2) + "\" y=\"" + xy(h - 8) + "\" text-anchor=\"middle\" class=\"title\">" + esc(s.plot_x) + "</text>";
  out += "<text transform=\"translate(16," + xy(mt + ph / 2) + ") rotate(-90)\" text-anchor=\"middle\" class=\"title\">" +
         esc(s.metric) + "</text></g>";
  if (s.plot_reference) {
    const double y = Y(*s.plot_reference);
    out += "<g class=\"reference\"><line x1=\"" + xy(ml) + "\" x2=\"" + xy(ml + pw) + "\" y1=\"" + xy(y) + "\" y2=\"" + xy(y) +
           "\"/><text x=\"" + xy(ml + pw - 4) + "\" y=\"" + xy(y - 5) + "\" text-anchor=\"end\">reference " +
           metric_text(*s.plot_reference) + "</text></g>";
  }
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string colour = kSeriesColours[i % std::size(kSeriesColours)];
    const auto& [series, points] = lines[i];
    std::string poly;
    out += "<g class=\"series\" data-series=\"" + esc(json_text(series)) + "\" style=\"color:" + colour + "\">";
    for (const auto& p : points) {
      poly += xy(X(p.x)) + "," + xy(Y(p.mean)) + " ";
      out += "<line class=\"err\" x1=\"" + xy(X(p.x)) + "\" x2=\"" + xy(X(p.x)) + "\" y1=\"" + xy(Y(p.mean - p.std)) + "\" y2=\"" +
             xy(Y(p.mean + p.std)) + "\"/>";
    }
    out += "<polyline points=\"" + poly + "\"/>";
    for (const auto& p : points)
      out += "<circle cx=\"" + xy(X(p.x)) + "\" cy=\"" + xy(Y(p.mean)) + "\" r=\"3.5\"><title>" +
             esc(s.plot_x + " " + short_number(p.x, 6) + ": " + s.metric + " " + metric_text(p.mean) + " ± " + metric_text(p.std)) +
             "</title></circle>";
    const double ly = mt + 10 + static_cast<double>(i) * 20;
    out += "<line x1=\"" + xy(ml + pw + 18) + "\" x2=\"" + xy(ml + pw + 40) + "\" y1=\"" + xy(ly) + "\" y2=\"" + xy(ly) + "\"/>";
    out += "<text class=\"legend\" x=\"" + xy(ml + pw + 46) + "\" y=\"" + xy(ly + 4) + "\">" +
           esc(s.plot_series.empty() ? json_text(series) : s.plot_series + " = " + json_text(series)) + "</text></g>";
  }
  return out + "</svg>";
}

// `id` and `title`: a batch's entry has a section of its own.
std::string sweep_section(const ReportInput& in, const std::vector<GroupStat>& groups, const std::string& id = "sweep",
                          const std::string& title = "Sweep summary") {
  const auto& s = in.sweep;
  if (groups.empty() && s.plot_x.empty()) return "";
  std::string by;
  for (const auto& k : s.group_by) by += (by.empty() ? "" : ", ") + k;
  std::string out = "<section id=\"" + esc(id) + "\" class=\"sweep-section\"><h2>" + esc(title) + "</h2><p class=\"note\">" + esc(s.metric) +
                    " over done jobs" + (by.empty() ? "" : ", by " + esc(by)) + "; " +
                    (s.higher_is_better ? "higher" : "lower") + " is better.</p>\n";
  if (!groups.empty()) {
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& g : groups)
      if (std::isfinite(g.mean)) {
        lo = std::min(lo, g.mean - g.std);
        hi = std::max(hi, g.mean + g.std);
      }
    if (hi <= lo) {
      lo -= 0.01;
      hi += 0.01;
    }
    out += "<table class=\"sweep sortable\" id=\"" + esc(id) + "-table\"><thead><tr>";
    for (const auto& k : s.group_by) out += "<th>" + esc(k) + "</th>";
    out += "<th class=\"num\">jobs</th><th class=\"num\">" + esc(s.metric) + " mean</th><th class=\"num\">± std</th><th>spread</th><th></th></tr></thead><tbody>\n";
    for (const auto& g : groups) {
      out += std::string("<tr") + (g.best ? " class=\"best\"" : "") + ">";
      for (const auto& k : s.group_by) out += "<td>" + esc(json_text(g.key[k])) + "</td>";
      out += "<td class=\"num\" data-v=\"" + std::to_string(g.measured) + "\">" + std::to_string(g.measured) + "/" +
             std::to_string(g.jobs) + "</td>";
      out += "<td class=\"num mean\">" + metric_text(g.mean) + "</td><td class=\"num\">" + metric_text(g.std) + "</td><td>";
      if (std::isfinite(g.mean)) {
        // A dot at the mean with a whisker of ±std, on a scale shared by all groups.
        const auto X = [&](double v) { return 4 + (v - lo) / (hi - lo) * 152; };
        out += "<svg class=\"spread\" viewBox=\"0 0 160 14\"><line x1=\"" + xy(X(g.mean - g.std)) + "\" x2=\"" +
               xy(X(g.mean + g.std)) + "\" y1=\"7\" y2=\"7\"/><circle cx=\"" + xy(X(g.mean)) + "\" cy=\"7\" r=\"3.5\"/></svg>";
      }
      out += "</td><td>" + std::string(g.best ? "<span class=\"badge\">best</span>" : "") + "</td></tr>\n";
    }
    out += "</tbody></table>\n";
  }
  if (!s.plot_x.empty()) out += "<h3>" + esc(s.metric) + " against " + esc(s.plot_x) + "</h3>" + line_plot(in) + "\n";
  return out + "</section>\n";
}

std::string results_section(const ReportInput& in) {
  auto columns = in.columns.empty() ? report_columns(result_columns(in.sweep), in.sweep) : in.columns;
  // Columns no job has a value in (an lth run has no fold) only take room;
  // results.csv keeps them all.
  std::erase_if(columns, [&](const std::string& c) {
    return c != "job" && c != "status" &&
           std::none_of(in.jobs.begin(), in.jobs.end(), [&](const JobRecord& r) { return !result_cell(r, c).empty(); });
  });
  const bool messages = std::any_of(in.jobs.begin(), in.jobs.end(), [](const JobRecord& r) { return !r.message.empty(); });
  std::string out = "<section id=\"results\"><h2>Results</h2><p class=\"note\">One row per job (also in results.csv and "
                    "results.json). Click a column to sort.</p><div class=\"scroll\"><table class=\"results sortable\" "
                    "id=\"results-table\"><thead><tr><th>name</th>";
  for (const auto& c : columns) out += "<th>" + esc(c) + "</th>";
  if (messages) out += "<th>message</th>";
  out += "</tr></thead><tbody>\n";
  for (const auto& r : in.jobs) {
    const std::string status(to_string(r.status));
    out += "<tr data-status=\"" + status + "\"><td>" + esc(r.name) + "</td>";
    for (const auto& c : columns) {
      const std::string cell = result_cell(r, c);
      if (c == "status") out += "<td><span class=\"pill st-" + status + "\">" + esc(cell) + "</span></td>";
      else if (c == "job") out += "<td class=\"mono\">" + esc(cell) + "</td>";
      else out += "<td>" + esc(cell) + "</td>";
    }
    if (messages) out += "<td class=\"msg\">" + esc(r.message) + "</td>";
    out += "</tr>\n";
  }
  return out + "</tbody></table></div></section>\n";
}

}  // namespace

std::string render_report_html(const ReportInput& in) {
  const auto t = totals(in);
  const auto groups = group_stats(in.jobs, in.sweep.group_by, in.sweep.metric, in.sweep.higher_is_better);
  std::string page = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                     "<title>packtrain report · " + esc(in.title) + "</title><style>" + kReportCss + "</style></head>\n<body>\n";
  page += header_section(in);
  page += "<main>\n" + cards_section(in, t, groups);
  page += utilization_section(in);
  page += gantt_section(in);
  page += sweep_section(in, groups);
  // A batch: each entry's summary, as its command's own report has it.
  for (const auto& e : in.sweep.entries) {
    ReportInput part;
    part.sweep = e.meta;
    const std::set<std::string> ids(e.jobs.begin(), e.jobs.end());
    for (const auto& r : in.jobs)
      if (ids.count(r.id)) part.jobs.push_back(r);
    const auto stats = group_stats(part.jobs, part.sweep.group_by, part.sweep.metric, part.sweep.higher_is_better);
    const std::string title = "Entry " + e.name + (e.command.empty() ? "" : " (" + e.command + ")") + ": " +
                              std::to_string(part.jobs.size()) + " job(s)";
    auto section = sweep_section(part, stats, "entry-" + e.name, title);
    if (section.empty())
      section = "<section id=\"" + esc("entry-" + e.name) + "\" class=\"sweep-section\"><h2>" + esc(title) +
                "</h2><p class=\"note\">No summary for this entry's jobs.</p></section>\n";
    page += section;
  }
  page += results_section(in);
  page += "</main>\n<footer>Made by packtrain. The same run, to zoom in: <code>trace.json</code> in ui.perfetto.dev or "
          "chrome://tracing. Rebuild this page: <code>packtrain report DIR</code>.</footer>\n";
  page += std::string("<script>") + kReportScript + "</script>\n</body></html>\n";
  return page;
}

}  // namespace packtrain::dashboard
