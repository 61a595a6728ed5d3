#pragma once
// A JobRunner on virtual cores with a journal and a RunDashboard, in a
// temporary folder, and the jobs the dashboard tests run on it.
#include <packtrain/dashboard/run_dashboard.hpp>
#include <packtrain/scheduler/job_runner.hpp>
#include <packtrain/scheduler/journal.hpp>

#include "common/test_util.hpp"
#include "scheduler/runner_fixture.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace packtrain::testing {

// A job with a k-fold spec that sleeps `ms` and reports val_top1.
inline Job kfold_job(const std::string& model, const std::string& schedule, int fold, int ms, double top1) {
  Job job;
  job.name = model + "/" + schedule + "/fold" + std::to_string(fold);
  job.spec = {{"model", model}, {"schedule", schedule}, {"fold", fold}, {"epochs", 1}};
  job.cost = ms;
  job.run = [ms, top1](JobContext&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return JobOutcome{.metrics = {{"val_top1", top1}, {"val_loss", 1.0 - top1}}};
  };
  return job;
}

// A job that throws on its first `failures` attempts, then is done.
inline Job flaky_job(const std::string& name, int failures, int retries) {
  Job job;
  job.name = name;
  job.spec = {{"model", name}, {"schedule", "none"}, {"fold", 0}};
  job.retries = retries;
  job.run = [failures](JobContext& ctx) -> JobOutcome {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (ctx.attempt() <= failures) throw std::runtime_error("boom on attempt " + std::to_string(ctx.attempt()));
    return JobOutcome{.metrics = {{"val_top1", 0.5}}};
  };
  return job;
}

// The standard mixed run: 8 k-fold jobs (2 models x 2 schedules x 2 folds),
// a job that fails once then succeeds, one that always fails, and a
// 2-core job. 11 jobs: 10 done, 1 failed, 12 attempts.
inline void add_standard_jobs(JobRunner& runner) {
  const double top1[2][2] = {{0.86, 0.88}, {0.90, 0.89}};
  const char* models[] = {"mlp", "lenet5"};
  const char* schedules[] = {"cosine", "warm"};
  for (int m = 0; m < 2; ++m)
    for (int s = 0; s < 2; ++s)
      for (int fold = 0; fold < 2; ++fold)
        runner.add(kfold_job(models[m], schedules[s], fold, 20 + 5 * fold, top1[m][s] + 0.01 * fold));
  runner.add(flaky_job("flaky", 1, 1));
  runner.add(flaky_job("broken", 5, 0));
  auto wide = kfold_job("wide", "cosine", 0, 15, 0.8);
  wide.cores = 2;
  runner.add(wide);
}

// A run folder with a journal, a runner on `cores` virtual cores and a
// dashboard writing into the folder.
struct DashboardHarness {
  explicit DashboardHarness(int cores, dashboard::DashboardOptions options = dashboard::DashboardOptions())
      : run(cores) {
    journal = Journal::open(dir / "journal.sqlite");
    journal->set_meta("command", "kfold");
    journal->set_meta("group_by", R"(["model","schedule"])");
    journal->set_meta("metric", "val_top1");
    dash = std::make_unique<dashboard::RunDashboard>(
        options.out_dir(dir.path()).cores(run.node.cores).journal(journal.get()).sample_ms(10).trace_ms(10));
    run.options.journal = journal.get();
    run.options.sinks.push_back(dash.get());
  }
  ~DashboardHarness() {
    dash.reset();  // before the journal it reads
  }

  RunSummary run_and_finish() {
    auto summary = run.runner->run(run.options);
    dash->finish(summary);
    return summary;
  }

  TempDir dir;
  VirtualRun run;
  std::unique_ptr<Journal> journal;
  std::unique_ptr<dashboard::RunDashboard> dash;
};

// Parses a whole JSON file; nullopt when it is missing or not (yet) JSON.
inline std::optional<nlohmann::json> read_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  auto j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

// The trace's complete slices ("ph":"X").
inline std::vector<nlohmann::json> slices_of(const nlohmann::json& trace) {
  std::vector<nlohmann::json> out;
  for (const auto& e : trace["traceEvents"])
    if (e["ph"] == "X") out.push_back(e);
  return out;
}

}  // namespace packtrain::testing
