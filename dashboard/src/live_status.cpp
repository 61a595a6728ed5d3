#include <packtrain/dashboard/live_status.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace packtrain::dashboard {
namespace {

constexpr std::size_t kRecentJobs = 8;

std::optional<double> number_in(const nlohmann::json& object, const std::string& key) {
  if (!object.is_object()) return std::nullopt;
  const auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return std::nullopt;
  const double v = it->get<double>();
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

// A label value, escaped as the exposition format asks: \\, \" and \n.
std::string label_value(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

class Exposition {
 public:
  void family(const std::string& name, const char* type, const std::string& help) {
    text_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void value(const std::string& name, const std::string& labels, double v) {
    text_ += name + (labels.empty() ? "" : "{" + labels + "}") + " " + prometheus_number(v) + "\n";
  }
  std::string take() { return std::move(text_); }

 private:
  std::string text_;
};

}  // namespace

std::string prometheus_number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  return ec == std::errc() ? std::string(buf, end) : "NaN";
}

LiveStatus::LiveStatus(int rank, std::vector<int> cores, int sample_ms, int history)
    : rank_(rank), cores_(std::move(cores)), sample_ms_(sample_ms), history_(static_cast<std::size_t>(std::max(1, history))) {}

void LiveStatus::run_start(const RunStart& start, double now) {
  started_ = true;
  ended_ = false;
  run_start_ = now;
  total_ = start.total_jobs;
  resumed_ = start.already_done;
  total_cost_ = start.total_cost;
  done_cost_ = 0;
  retried_ = 0;
  jobs_.clear();
  running_.clear();
  recent_.clear();
}

void LiveStatus::jobs_added(const RunStart& added) {
  total_ += added.total_jobs;
  resumed_ += added.already_done;
  total_cost_ += added.total_cost;
}

void LiveStatus::event(const JobEvent& e, double now) {
  switch (e.kind) {
    case EventKind::queued:
      jobs_[e.job_id] = JobStatus::queued;
      return;
    case EventKind::started:
      jobs_[e.job_id] = JobStatus::running;
      running_[e.job_id] = {.id = e.job_id, .name = e.name, .attempt = e.attempt, .since = now, .cores = e.cores};
      return;
    case EventKind::resized: {
      // An elastic job's cores now: the live view shows every core it has.
      if (const auto it = running_.find(e.job_id); it != running_.end()) it->second.cores = e.cores;
      return;
    }
    case EventKind::progress: {
      const auto it = running_.find(e.job_id);
      if (it == running_.end()) return;
      if (auto rate = number_in(e.data, "samples_per_s")) it->second.samples_per_s = rate;
      if (auto replicas = number_in(e.data, "replicas")) it->second.replicas = replicas;
      if (auto share = number_in(e.data, "sync_share")) it->second.sync_share = share;
      return;
    }
    case EventKind::retried:
      ++retried_;
      jobs_[e.job_id] = JobStatus::queued;
      running_.erase(e.job_id);
      return;
    case EventKind::skipped:
      jobs_[e.job_id] = JobStatus::skipped;
      return;
    case EventKind::finished:
    case EventKind::failed:
    case EventKind::cancelled: {
      const JobStatus status = e.kind == EventKind::failed      ? JobStatus::failed
                               : e.kind == EventKind::cancelled ? JobStatus::cancelled
                                                                : e.status;
      jobs_[e.job_id] = status;
      double seconds = 0;
      if (const auto it = running_.find(e.job_id); it != running_.end()) {
        seconds = now - it->second.since;
        running_.erase(it);
      }
      done_cost_ += e.cost;
      recent_.push_front({e.name, status, seconds, number_in(e.data, metric_)});
      if (recent_.size() > kRecentJobs) recent_.pop_back();
      return;
    }
  }
}

void LiveStatus::run_end(double now) {
  if (ended_) return;
  ended_ = true;
  run_end_ = now;
  running_.clear();
}

void LiveStatus::sample(const std::vector<Series>& series, const Sample& sample) {
  if (series != series_) {
    series_ = series;
    history_values_.assign(series_.size(), {});
    latest_.assign(series_.size(), NAN);
  }
  for (std::size_t i = 0; i < series_.size() && i < sample.values.size(); ++i) {
    latest_[i] = sample.values[i];
    auto& h = history_values_[i];
    h.push_back(static_cast<float>(sample.values[i]));
    if (h.size() > history_) h.pop_front();
  }
}

std::optional<double> LiveStatus::latest(const Series& series) const {
  for (std::size_t i = 0; i < series_.size(); ++i)
    if (series_[i] == series && std::isfinite(latest_[i])) return latest_[i];
  return std::nullopt;
}

JobCounts LiveStatus::counts() const {
  JobCounts c;
  c.total = total_;
  c.resumed = resumed_;
  c.retried = retried_;
  c.done = resumed_;
  for (const auto& [id, status] : jobs_) {
    switch (status) {
      case JobStatus::queued: ++c.queued; break;
      case JobStatus::running: ++c.running; break;
      case JobStatus::done: ++c.done; break;
      case JobStatus::failed: ++c.failed; break;
      case JobStatus::diverged: ++c.diverged; break;
      case JobStatus::skipped: ++c.skipped; break;
      case JobStatus::cancelled: ++c.cancelled; break;
      case JobStatus::crashed: ++c.failed; break;  // only from the journal (a parent records it): no event brings it
    }
  }
  return c;
}

double LiveStatus::elapsed_seconds(double now) const {
  if (!started_) return 0;
  return std::max(0.0, (ended_ ? run_end_ : now) - run_start_);
}

std::optional<double> LiveStatus::eta_seconds(double now) const {
  if (ended_) return 0.0;
  const double elapsed = elapsed_seconds(now);
  if (done_cost_ <= 0 || elapsed <= 0) return std::nullopt;
  return std::max(0.0, (total_cost_ - done_cost_) / (done_cost_ / elapsed));
}

nlohmann::json LiveStatus::status_json(double now) const {
  const auto c = counts();
  nlohmann::json out = {
      {"rank", rank_},
      {"state", !started_ ? "starting" : ended_ ? "finished" : "running"},
      {"command", command_},
      {"elapsed_s", elapsed_seconds(now)},
      {"sample_ms", sample_ms_},
      {"metric", metric_},
      {"jobs",
       {{"total", c.total}, {"queued", c.queued}, {"running", c.running}, {"done", c.done}, {"failed", c.failed},
        {"diverged", c.diverged}, {"skipped", c.skipped}, {"cancelled", c.cancelled}, {"resumed", c.resumed},
        {"retried", c.retried}}}};
  const auto eta = eta_seconds(now);
  out["eta_s"] = eta ? nlohmann::json(*eta) : nlohmann::json(nullptr);

  // Which running job holds each core.
  std::map<int, const Running*> on_core;
  for (const auto& [id, r] : running_)
    for (int core : r.cores) on_core[core] = &r;
  auto history_of = [this](const Series& s) {
    nlohmann::json values = nlohmann::json::array();
    for (std::size_t i = 0; i < series_.size(); ++i)
      if (series_[i] == s)
        for (float v : history_values_[i]) values.push_back(std::round(v * 1000.0f) / 1000.0f);
    return values;
  };
  nlohmann::json cores = nlohmann::json::array();
  for (int core : cores_) {
    const Series s{SeriesKind::core_busy, core};
    const auto busy = latest(s);
    nlohmann::json entry = {{"core", core}, {"busy", busy ? nlohmann::json(*busy) : nlohmann::json(nullptr)},
                            {"history", history_of(s)}, {"job", nullptr}};
    if (const auto it = on_core.find(core); it != on_core.end()) {
      const auto& r = *it->second;
      entry["job"] = {{"id", r.id}, {"name", r.name}, {"attempt", r.attempt}, {"running_s", now - r.since}};
      if (r.samples_per_s) entry["job"]["samples_per_s"] = *r.samples_per_s;
      if (r.replicas) entry["job"]["replicas"] = *r.replicas;
      if (r.sync_share) entry["job"]["sync_share"] = *r.sync_share;
    }
    cores.push_back(std::move(entry));
  }
  out["cores"] = std::move(cores);
  const Series memory{SeriesKind::memory_mb, 0};
  const auto rss = latest(memory);
  out["memory_mb"] = rss ? nlohmann::json(*rss) : nlohmann::json(nullptr);
  out["memory_history"] = history_of(memory);

  double rate = 0;
  bool any_rate = false;
  for (const auto& [id, r] : running_)
    if (r.samples_per_s) {
      rate += *r.samples_per_s;
      any_rate = true;
    }
  if (any_rate) out["samples_per_s"] = rate;

  nlohmann::json recent = nlohmann::json::array();
  for (const auto& e : recent_)
    recent.push_back({{"name", e.name}, {"status", std::string(to_string(e.status))}, {"seconds", e.seconds},
                      {"metric", e.metric ? nlohmann::json(*e.metric) : nlohmann::json(nullptr)}});
  out["recent"] = std::move(recent);
  return out;
}

std::string LiveStatus::metrics_text(double now, double dashboard_cpu_seconds) const {
  Exposition x;
  const auto c = counts();
  x.family("packtrain_jobs", "gauge", "Jobs of the run by state (resumed jobs count as done).");
  const std::pair<const char*, int> states[] = {{"queued", c.queued},   {"running", c.running},
                                                {"done", c.done},       {"failed", c.failed},
                                                {"diverged", c.diverged}, {"skipped", c.skipped},
                                                {"cancelled", c.cancelled}};
  for (const auto& [state, n] : states) x.value("packtrain_jobs", std::string("state=\"") + state + "\"", n);
  x.family("packtrain_jobs_in_run", "gauge", "Jobs in the run, resumed ones included.");
  x.value("packtrain_jobs_in_run", "", c.total);
  x.family("packtrain_job_retries_total", "counter", "Failed attempts that were retried.");
  x.value("packtrain_job_retries_total", "", c.retried);
  x.family("packtrain_cores", "gauge", "Cores the run packs jobs onto.");
  x.value("packtrain_cores", "", static_cast<double>(cores_.size()));

  std::map<int, bool> occupied;
  for (const auto& [id, r] : running_)
    for (int core : r.cores) occupied[core] = true;
  x.family("packtrain_core_busy_ratio", "gauge",
           "Busy fraction of each core over the last sample interval, every process counted.");
  for (int core : cores_)
    if (auto v = latest({SeriesKind::core_busy, core}))
      x.value("packtrain_core_busy_ratio", "core=\"" + std::to_string(core) + "\"", *v);
  x.family("packtrain_core_running_job", "gauge", "1 while a job of this run holds the core.");
  for (int core : cores_)
    x.value("packtrain_core_running_job", "core=\"" + std::to_string(core) + "\"", occupied.count(core) ? 1 : 0);

  if (auto rss = latest({SeriesKind::memory_mb, 0})) {
    x.family("packtrain_resident_memory_bytes", "gauge", "Resident memory of the packtrain process.");
    x.value("packtrain_resident_memory_bytes", "", std::round(*rss * 1024.0 * 1024.0));
  }
  bool gpu_busy = false, gpu_memory = false;
  for (std::size_t i = 0; i < series_.size(); ++i) {
    const auto& s = series_[i];
    if (history_values_[i].empty()) continue;
    const std::string label = "gpu=\"" + std::to_string(s.index) + "\"";
    if (s.kind == SeriesKind::gpu_busy) {
      if (!gpu_busy) x.family("packtrain_gpu_busy_ratio", "gauge", "Busy fraction of each GPU.");
      gpu_busy = true;
      x.value("packtrain_gpu_busy_ratio", label, latest_[i]);
    }
  }
  for (std::size_t i = 0; i < series_.size(); ++i) {
    const auto& s = series_[i];
    if (history_values_[i].empty() || s.kind != SeriesKind::gpu_memory_mb) continue;
    if (!gpu_memory) x.family("packtrain_gpu_memory_bytes", "gauge", "Memory used on each GPU.");
    gpu_memory = true;
    x.value("packtrain_gpu_memory_bytes", "gpu=\"" + std::to_string(s.index) + "\"",
            std::round(latest_[i] * 1024.0 * 1024.0));
  }

  x.family("packtrain_run_elapsed_seconds", "gauge", "Seconds since the run started.");
  x.value("packtrain_run_elapsed_seconds", "", elapsed_seconds(now));
  if (auto eta = eta_seconds(now)) {
    x.family("packtrain_run_eta_seconds", "gauge", "Estimated seconds until the run ends.");
    x.value("packtrain_run_eta_seconds", "", *eta);
  }

  // Throughput, only when running jobs report it (progress events with samples_per_s).
  double rate = 0;
  bool any_rate = false;
  for (const auto& [id, r] : running_)
    if (r.samples_per_s) {
      rate += *r.samples_per_s;
      any_rate = true;
    }
  if (any_rate) {
    x.family("packtrain_samples_per_second", "gauge", "Training samples per second of all running jobs that report it.");
    x.value("packtrain_samples_per_second", "", rate);
    x.family("packtrain_job_samples_per_second", "gauge", "Training samples per second of each running job.");
    for (const auto& [id, r] : running_)
      if (r.samples_per_s)
        x.value("packtrain_job_samples_per_second", "job=\"" + label_value(id) + "\",name=\"" + label_value(r.name) + "\"",
                *r.samples_per_s);
  }
  x.family("packtrain_dashboard_cpu_seconds_total", "counter", "CPU time the dashboard's sampler thread has used.");
  x.value("packtrain_dashboard_cpu_seconds_total", "", dashboard_cpu_seconds);
  return x.take();
}

}  // namespace packtrain::dashboard
