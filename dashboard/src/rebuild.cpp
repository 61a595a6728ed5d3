#include <packtrain/dashboard/rebuild.hpp>

#include <packtrain/dashboard/trace.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/results.hpp>

#include <algorithm>
#include <cmath>
#include <map>

namespace packtrain::dashboard {

RunFolder read_run_folder(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) throw Error("no run folder at " + dir.string());
  const auto path = dir / "journal.sqlite";
  // Journal::open creates a missing journal: look first.
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error("no journal at " + path.string() + " (is " + dir.string() + " a packtrain run's folder?)");
  const auto journal = Journal::open(path);  // Error for a damaged or foreign file
  return read_run(dir, *journal);
}

RunFolder read_run(const std::filesystem::path& dir, const Journal& journal) {
  RunFolder run;
  run.dir = dir;
  run.records = journal.records();
  run.sweep = SweepMeta::from_journal(journal);
  label_entries(run.records, run.sweep);
  if (auto summary = journal.meta("summary")) {
    auto parsed = nlohmann::json::parse(*summary, nullptr, false);
    if (parsed.is_object()) run.summary = std::move(parsed);
  }
  return run;
}

nlohmann::json run_summary(const RunFolder& run) {
  if (!run.summary.empty()) return run.summary;
  nlohmann::json s = {{"command", run.sweep.command}, {"jobs", run.records.size()}};
  for (const char* status : {"done", "failed", "diverged", "skipped", "cancelled", "running", "queued"}) s[status] = 0;
  double job_seconds = 0;
  for (const auto& r : run.records) {
    const std::string status(to_string(r.status));
    s[status] = s[status].get<int>() + 1;
    job_seconds += r.seconds();
  }
  s["job_seconds"] = job_seconds;
  return s;
}

void write_results(const RunFolder& run) {
  const auto columns = result_columns(run.sweep);
  write_results_csv(run.dir / "results.csv", run.records, columns);
  write_results_json(run.dir / "results.json", run.records, run_summary(run), columns);
}

void write_report(const RunFolder& run) {
  auto input = report_input(run.dir, run.records, run.sweep, run_summary(run));
  write_file_atomically(run.dir / "report.html", render_report_html(input));
}

bool write_trace(const RunFolder& run) {
  const auto csv = run.dir / "utilization.csv";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(csv, ec)) return false;

  auto attempts = run_attempts(run.dir, run.records);
  const auto lent = read_attempts(run.dir / "lent.csv");
  double begin = INFINITY, end = -INFINITY;
  for (const auto& a : lent) begin = std::min(begin, a.start);
  for (const auto& a : attempts) {
    begin = std::min(begin, a.start);
    end = std::max(end, std::max(a.start, a.end));
  }
  read_utilization(csv, [&](const std::vector<Series>&, const Sample& s) {
    begin = std::min(begin, s.time);
    end = std::max(end, s.time);
  });
  if (!std::isfinite(begin)) begin = end = 0;

  const int rank = run.records.empty() ? 0 : run.records.front().rank;
  TraceBuilder trace(rank, begin, {{"command", run.sweep.command}, {"rebuilt", true}});
  std::map<std::string, const JobRecord*> by_id;
  for (const auto& r : run.records) by_id[r.id] = &r;
  read_utilization(csv, [&](const std::vector<Series>& series, const Sample& s) {
    std::vector<int> cores;
    for (const auto& x : series)
      if (x.kind == SeriesKind::core_busy) cores.push_back(x.index);
    trace.add_cores(cores);
    trace.add_sample(series, s);
  });
  for (auto& a : attempts) {
    if (a.end <= 0) a.end = end;  // still running when the run was killed
    const auto it = by_id.find(a.job_id);
    const auto spec = it == by_id.end() ? nlohmann::json::object() : it->second->spec;
    // Metrics belong to the job's last attempt, the one the journal recorded.
    const bool last = it != by_id.end() && it->second->status == a.status;
    const auto metrics = last ? it->second->metrics : nlohmann::json::object();
    trace.add_attempt(a, slice_args(a, spec, metrics));
  }
  for (const auto& a : lent) {
    // A core lent to an elastic job: a slice of its own on that core's track.
    const auto it = by_id.find(a.job_id);
    auto args = slice_args(a, it == by_id.end() ? nlohmann::json::object() : it->second->spec, nlohmann::json::object());
    args["lent"] = true;
    trace.add_attempt(a, args);
  }
  for (const auto& step : read_steps(run.dir / "steps.csv")) {
    // A gang's steps: compute and allreduce tracks on each member rank.
    const auto it = by_id.find(step.job_id);
    trace.add_step(step, it == by_id.end() ? step.job_id : it->second->name);
  }
  write_file_atomically(run.dir / "trace.json", trace.text());
  return true;
}

}  // namespace packtrain::dashboard
