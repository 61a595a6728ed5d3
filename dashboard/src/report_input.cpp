// Gathering what the report shows: utilization buckets and a run's files.
#include <packtrain/dashboard/report.hpp>

#include <packtrain/scheduler/results.hpp>

#include <algorithm>
#include <set>
#include <unordered_map>

namespace packtrain::dashboard {
namespace {

// Buckets per chart: about one per two pixels of the report's plot width.
constexpr int kReportBuckets = 540;
// attempts.csv and the journal time an attempt's start a few microseconds
// apart (two clock reads); a run never restarts a job this fast.
constexpr double kSameStartSeconds = 0.5;

}  // namespace

UtilizationBinner::UtilizationBinner(double begin, double end, int buckets)
    : begin_(begin), end_(std::max(end, begin + 1e-3)), buckets_(std::max(1, buckets)) {}

void UtilizationBinner::add(const std::vector<Series>& series, const Sample& sample) {
  ++samples_;
  // A sample measures the time since the previous one (busy fractions are
  // rates over it): it fills every bucket that interval overlaps, weighted
  // by the overlap. After a gap (a resumed run) or for the first sample, it
  // covers one bucket's width.
  const double width = (end_ - begin_) / buckets_;
  const double to = sample.time;
  double from = to - width;
  if (previous_ > 0 && to > previous_ && to - previous_ <= kMaxSampleSpan) from = previous_;
  previous_ = to;
  const int first = std::clamp(static_cast<int>(std::floor((from - begin_) / width)), 0, buckets_ - 1);
  const int last = std::clamp(static_cast<int>(std::floor((to - begin_) / width)), 0, buckets_ - 1);
  for (std::size_t i = 0; i < series.size() && i < sample.values.size(); ++i) {
    auto it = std::find_if(sums_.begin(), sums_.end(), [&](const Sums& s) { return s.series == series[i]; });
    if (it == sums_.end()) {
      sums_.push_back({.series = series[i], .sum = std::vector<double>(buckets_, 0.0),
                       .weight = std::vector<double>(buckets_, 0.0)});
      it = sums_.end() - 1;
    }
    const double v = sample.values[i];
    for (int b = first; b <= last; ++b) {
      const double lo = begin_ + b * width, hi = lo + width;
      // Clipped to the chart at its two ends, so nothing is lost there.
      const double overlap = std::min(to, b == buckets_ - 1 ? std::max(hi, to) : hi) -
                             std::max(from, b == 0 ? std::min(lo, from) : lo);
      if (overlap <= 0) continue;
      it->sum[b] += v * overlap;
      it->weight[b] += overlap;
    }
    it->total += v * (to - from);
    it->total_weight += to - from;
    it->peak = std::max(it->peak, v);
  }
}

UtilizationChart UtilizationBinner::chart() const {
  UtilizationChart chart{.begin = begin_, .end = end_, .samples = samples_};
  for (const auto& s : sums_) {
    UtilizationTrack t{.series = s.series};
    t.buckets.resize(buckets_);
    for (int b = 0; b < buckets_; ++b) t.buckets[b] = s.weight[b] > 0 ? s.sum[b] / s.weight[b] : NAN;
    t.mean = s.total_weight > 0 ? s.total / s.total_weight : NAN;
    t.peak = std::isfinite(s.peak) ? s.peak : NAN;
    chart.tracks.push_back(std::move(t));
  }
  // Cores in id order, then memory, then GPUs: the order the page draws them.
  std::stable_sort(chart.tracks.begin(), chart.tracks.end(), [](const UtilizationTrack& a, const UtilizationTrack& b) {
    return std::make_pair(static_cast<int>(a.series.kind), a.series.index) <
           std::make_pair(static_cast<int>(b.series.kind), b.series.index);
  });
  return chart;
}

std::vector<AttemptSpan> run_attempts(const std::filesystem::path& dir, const std::vector<JobRecord>& records) {
  // Every attempt that ended, from attempts.csv, plus each job's last
  // attempt from the journal where the file lacks it (a run killed while
  // the attempt ran, or a folder without the file).
  auto attempts = read_attempts(dir / "attempts.csv");
  std::unordered_multimap<std::string, double> logged;  // job id -> start
  for (const auto& a : attempts) logged.emplace(a.job_id, a.start);
  for (const auto& r : records) {
    if (r.started_at <= 0 || r.cores.empty()) continue;
    const auto [first, last] = logged.equal_range(r.id);
    if (std::any_of(first, last, [&](const auto& a) { return std::abs(a.second - r.started_at) < kSameStartSeconds; }))
      continue;
    attempts.push_back({.job_id = r.id, .name = r.name, .attempt = std::max(1, r.attempts), .status = r.status,
                        .start = r.started_at, .end = r.ended_at > r.started_at ? r.ended_at : 0, .cores = r.cores,
                        .rank = r.rank});
  }
  return attempts;
}

ReportInput report_input(const std::filesystem::path& dir, std::vector<JobRecord> records, const SweepMeta& sweep,
                         const nlohmann::json& summary) {
  ReportInput in;
  in.title = std::filesystem::absolute(dir).lexically_normal().filename().string();
  if (in.title.empty()) in.title = std::filesystem::absolute(dir).lexically_normal().parent_path().filename().string();
  in.sweep = sweep;
  in.summary = summary.is_object() ? summary : nlohmann::json::object();
  in.columns = report_columns(result_columns(sweep), sweep);

  label_entries(records, sweep);
  in.attempts = run_attempts(dir, records);
  in.jobs = std::move(records);
  if (!in.jobs.empty()) in.rank = in.jobs.front().rank;

  // The time range: every attempt and every sample.
  double begin = INFINITY, end = -INFINITY;
  for (const auto& a : in.attempts) {
    begin = std::min(begin, a.start);
    end = std::max(end, std::max(a.start, a.end));
  }
  const auto csv = dir / "utilization.csv";
  read_utilization(csv, [&](const std::vector<Series>&, const Sample& s) {
    begin = std::min(begin, s.time);
    end = std::max(end, s.time);
  });
  if (!std::isfinite(begin)) begin = end = 0;
  // Attempts still running when the run was killed end where the record ends.
  for (auto& a : in.attempts)
    if (a.end <= 0) a.end = end;

  UtilizationBinner binner(begin, end, kReportBuckets);
  read_utilization(csv, [&](const std::vector<Series>& series, const Sample& s) { binner.add(series, s); });
  in.utilization = binner.chart();

  std::set<int> cores;
  for (const auto& t : in.utilization.tracks)
    if (t.series.kind == SeriesKind::core_busy) cores.insert(t.series.index);
  for (const auto& a : in.attempts) cores.insert(a.cores.begin(), a.cores.end());
  cores.insert(sweep.cores.begin(), sweep.cores.end());  // a core that ran no job still has a track
  in.cores.assign(cores.begin(), cores.end());
  return in;
}

}  // namespace packtrain::dashboard
