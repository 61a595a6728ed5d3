#include <packtrain/dashboard/rebuild.hpp>
#include <packtrain/dashboard/run_files.hpp>
#include <packtrain/dashboard/sampler.hpp>
#include <packtrain/dashboard/trace.hpp>

#include "dashboard/dashboard_fixture.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <set>
#include <thread>

using namespace packtrain;
using namespace packtrain::dashboard;
using namespace packtrain::testing;

namespace {

std::map<std::string, std::string> thread_names(const nlohmann::json& trace) {
  std::map<std::string, std::string> names;
  for (const auto& e : trace["traceEvents"])
    if (e["ph"] == "M" && e["name"] == "thread_name") names[e["tid"].dump()] = e["args"]["name"];
  return names;
}

}  // namespace

TEST(Trace, BuilderWritesChromeTraceEventsWithOneSlicePerCore) {
  TraceBuilder trace(2, 1000.0, {{"command", "kfold"}});
  trace.add_cores({0, 1});
  AttemptSpan a{.job_id = "aa", .name = "mlp/cosine/fold0", .attempt = 1, .status = JobStatus::done, .start = 1000.5,
                .end = 1002.0, .cores = {1, 5}, .rank = 2};
  trace.add_attempt(a, slice_args(a, {{"model", "mlp"}, {"fold", 0}, {"nested", {{"x", 1}}}}, {{"val_top1", 0.9}}));
  const std::vector<Series> series = {{SeriesKind::core_busy, 0}, {SeriesKind::memory_mb, 0}};
  trace.add_sample(series, {.time = 1000.25, .values = {0.5, 100}});
  trace.add_sample(series, {.time = 1000.5, .values = {0.5, 101}});  // core 0 unchanged: no new event
  AttemptSpan running{.job_id = "bb", .name = "lenet5", .attempt = 1, .start = 1001.0, .cores = {0}, .rank = 2};

  const auto j = nlohmann::json::parse(trace.text({{running, slice_args(running, {}, {})}}, 1003.0));
  EXPECT_EQ(j["displayTimeUnit"], "ms");
  EXPECT_DOUBLE_EQ(j["otherData"]["start_unix"].get<double>(), 1000.0);
  EXPECT_EQ(j["otherData"]["command"], "kfold");
  const auto names = thread_names(j);
  EXPECT_EQ(names.at("0"), "core 0");
  EXPECT_EQ(names.at("1"), "core 1");
  EXPECT_EQ(names.at("5"), "core 5");  // named when an attempt first used it
  bool process_named = false;
  for (const auto& e : j["traceEvents"]) {
    EXPECT_EQ(e["pid"], 2);
    if (e["name"] == "process_name") process_named = e["args"]["name"] == "rank 2";
  }
  EXPECT_TRUE(process_named);

  const auto slices = slices_of(j);
  ASSERT_EQ(slices.size(), 3u);  // mlp on cores 1 and 5, lenet5 running on core 0
  std::set<int> mlp_cores;
  for (const auto& s : slices) {
    if (s["name"] != "mlp/cosine/fold0") continue;
    mlp_cores.insert(s["tid"].get<int>());
    EXPECT_EQ(s["ts"], 500000);
    EXPECT_EQ(s["dur"], 1500000);
    EXPECT_EQ(s["cat"], "job");
    EXPECT_EQ(s["args"]["job"], "aa");
    EXPECT_EQ(s["args"]["status"], "done");
    EXPECT_EQ(s["args"]["model"], "mlp");
    EXPECT_EQ(s["args"]["fold"], 0);
    EXPECT_DOUBLE_EQ(s["args"]["val_top1"].get<double>(), 0.9);
    EXPECT_FALSE(s["args"].contains("nested"));  // scalars only
  }
  EXPECT_EQ(mlp_cores, (std::set<int>{1, 5}));
  const auto& open = slices[2];
  EXPECT_EQ(open["name"], "lenet5");
  EXPECT_EQ(open["args"]["status"], "running");
  EXPECT_EQ(open["ts"], 1000000);
  EXPECT_EQ(open["dur"], 2000000);  // drawn up to `now`

  std::vector<nlohmann::json> counters;
  for (const auto& e : j["traceEvents"])
    if (e["ph"] == "C") counters.push_back(e);
  ASSERT_EQ(counters.size(), 3u);  // core 0 once (unchanged later), memory twice
  EXPECT_EQ(counters[0]["name"], "core 0");
  EXPECT_DOUBLE_EQ(counters[0]["args"]["busy %"].get<double>(), 50.0);
  EXPECT_EQ(counters[1]["name"], "memory");
  EXPECT_DOUBLE_EQ(counters[2]["args"]["MiB"].get<double>(), 101.0);
  EXPECT_EQ(counters[2]["ts"], 500000);

  // Without running attempts the same builder still makes valid JSON.
  EXPECT_EQ(slices_of(nlohmann::json::parse(trace.text())).size(), 2u);
}

TEST(Trace, HoldsOneSlicePerFinishedAttemptOnTheCoresTheJournalRecorded) {
  DashboardHarness h(4);
  add_standard_jobs(*h.run.runner);
  const auto summary = h.run_and_finish();
  ASSERT_EQ(summary.done, 10);
  ASSERT_EQ(summary.failed, 1);

  const auto trace = read_json(h.dir / "trace.json");
  ASSERT_TRUE(trace.has_value());
  const auto slices = slices_of(*trace);
  EXPECT_EQ(slices.size(), 13u);  // 12 attempts, the 2-core job on two tracks

  std::set<std::tuple<std::string, int, int>> seen;  // (job, attempt, core): never twice
  for (const auto& s : slices) {
    const auto key = std::make_tuple(s["args"]["job"].get<std::string>(), s["args"]["attempt"].get<int>(), s["tid"].get<int>());
    EXPECT_TRUE(seen.insert(key).second) << s.dump();
    EXPECT_GE(s["ts"].get<long long>(), 0);
    EXPECT_GE(s["dur"].get<long long>(), 1);
    EXPECT_EQ(s["pid"], 0);
  }
  const auto names = thread_names(*trace);
  for (int core = 0; core < 4; ++core) EXPECT_EQ(names.at(std::to_string(core)), "core " + std::to_string(core));

  for (const auto& record : h.journal->records()) {
    std::vector<nlohmann::json> mine;
    for (const auto& s : slices)
      if (s["args"]["job"] == record.id) mine.push_back(s);
    // The journal's (last) attempt: one slice on each core it recorded, with its status.
    std::set<int> cores;
    for (const auto& s : mine)
      if (s["args"]["attempt"] == record.attempts) {
        cores.insert(s["tid"].get<int>());
        EXPECT_EQ(s["args"]["status"], std::string(to_string(record.status))) << record.name;
        EXPECT_EQ(s["name"], record.name);
        EXPECT_EQ(s["args"]["model"], record.spec["model"]);
        EXPECT_EQ(s["args"]["schedule"], record.spec["schedule"]);
        EXPECT_EQ(s["args"]["fold"], record.spec["fold"]);
      }
    EXPECT_EQ(cores, std::set<int>(record.cores.begin(), record.cores.end())) << record.name;
    if (record.name == "flaky") {
      ASSERT_EQ(mine.size(), 2u);
      EXPECT_EQ(mine[0]["args"]["attempt"], 1);
      EXPECT_EQ(mine[0]["args"]["status"], "failed");
    } else {
      EXPECT_EQ(mine.size(), record.cores.size()) << record.name;
    }
    if (record.status == JobStatus::done) {
      for (const auto& s : mine) {
        if (s["args"]["attempt"] == record.attempts) {
          EXPECT_EQ(s["args"]["val_top1"], record.metrics["val_top1"]);
        }
      }
    }
  }

  bool core_counter = false, memory_counter = false;
  for (const auto& e : (*trace)["traceEvents"]) {
    if (e["ph"] != "C") continue;
    if (e["name"] == "core 0" && e["args"].contains("busy %")) core_counter = true;
    if (e["name"] == "memory" && e["args"]["MiB"].get<double>() > 0) memory_counter = true;
  }
  EXPECT_TRUE(core_counter);
  EXPECT_TRUE(memory_counter);
}

TEST(Trace, StaysValidJsonWhileTheRunGoesAndShowsRunningJobs) {
  DashboardHarness h(2);
  std::promise<void> release;
  auto released = release.get_future().share();
  Job blocker;
  blocker.name = "blocker";
  blocker.spec = {{"model", "blocker"}};
  blocker.run = [released](JobContext&) {
    released.wait();
    return JobOutcome{};
  };
  const auto blocker_id = h.run.runner->add(blocker);
  for (int i = 0; i < 6; ++i) h.run.runner->add(kfold_job("mlp", "cosine", i, 15, 0.8));

  // A reader that parses trace.json over and over while the run goes.
  std::atomic<bool> stop{false};
  std::atomic<int> parsed{0}, broken{0};
  std::thread reader([&] {
    while (!stop.load()) {
      if (!std::filesystem::exists(h.dir / "trace.json")) continue;
      if (read_json(h.dir / "trace.json")) ++parsed;
      else ++broken;
    }
  });
  std::thread runner([&] { h.run_and_finish(); });

  // Wait until a rewrite shows the blocker as a running slice.
  bool seen_running = false;
  while (!seen_running) {
    if (auto t = read_json(h.dir / "trace.json"))
      for (const auto& s : slices_of(*t))
        if (s["args"]["job"] == blocker_id && s["args"]["status"] == "running") seen_running = true;
    if (!seen_running) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  release.set_value();
  runner.join();
  stop.store(true);
  reader.join();

  EXPECT_EQ(broken.load(), 0);
  EXPECT_GT(parsed.load(), 0);
  const auto final_trace = read_json(h.dir / "trace.json");
  ASSERT_TRUE(final_trace.has_value());
  int blocker_slices = 0;
  for (const auto& s : slices_of(*final_trace))
    if (s["args"]["job"] == blocker_id) {
      ++blocker_slices;
      EXPECT_EQ(s["args"]["status"], "done");  // the running slice was replaced, not ended twice
    }
  EXPECT_EQ(blocker_slices, 1);
}

TEST(Trace, CoresLentToAnElasticJobAreSlicesOfTheirOwn) {
  // Three cores: a 60 ms job holds one; the elastic job starts on another
  // and is lent the third at once, then the first when the job ends.
  DashboardHarness h(3);
  std::atomic<bool> end{false};
  std::atomic<int> helpers{0};
  Job elastic;
  elastic.name = "elastic";
  elastic.spec = {{"model", "mlp"}};
  elastic.cores = 1;
  elastic.max_cores = 3;
  elastic.run = [&](JobContext& ctx) {
    ctx.lend_cores_to([&](const CoreLease& lease) {
      helpers.fetch_add(1);
      while (!lease.should_return()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (helpers.load() < 2 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return JobOutcome{};
  };
  h.run.runner->add(elastic);
  h.run.runner->add(sleeping_job("other", 60, 100));
  const auto summary = h.run_and_finish();
  ASSERT_EQ(summary.done, 2);

  const auto trace = read_json(h.dir / "trace.json");
  ASSERT_TRUE(trace.has_value());
  std::vector<nlohmann::json> lent, own;
  for (const auto& s : slices_of(*trace)) {
    if (s["name"] == "elastic (lent)") lent.push_back(s);
    if (s["name"] == "elastic") own.push_back(s);
  }
  ASSERT_EQ(own.size(), 1u);
  ASSERT_EQ(lent.size(), 2u);  // the idle core at once, the other job's core at its end
  std::set<int> cores = {own[0]["tid"].get<int>()};
  for (const auto& s : lent) {
    EXPECT_EQ(s["args"]["lent"], true);
    EXPECT_GE(s["dur"].get<long long>(), 1);
    // Within the job's own slice.
    EXPECT_GE(s["ts"].get<long long>(), own[0]["ts"].get<long long>());
    EXPECT_LE(s["ts"].get<long long>() + s["dur"].get<long long>(),
              own[0]["ts"].get<long long>() + own[0]["dur"].get<long long>() + 1000);
    cores.insert(s["tid"].get<int>());
  }
  EXPECT_EQ(cores.size(), 3u);
}

TEST(Trace, AGangsStepsAreComputeAndAllreduceSlicesOnEveryRanksTracksAndSurviveARebuild) {
  // A job reports two members' steps as dataparallel::fit_in_job does; the
  // trace draws each on its rank's compute and allreduce tracks, steps.csv
  // keeps them, and `packtrain report`'s rebuild draws the same slices.
  DashboardHarness h(1);
  const double t = unix_now();
  nlohmann::json rows = nlohmann::json::array();
  for (int step = 1; step <= 3; ++step)
    for (int rank = 0; rank < 2; ++rank) {
      const double at = t + 0.1 * step;
      rows.push_back({rank, step, at, at + 0.02 + 0.01 * rank, at + 0.03 + 0.01 * rank, at + 0.05});
    }
  Job gang;
  gang.name = "lenet5/cosine";
  gang.spec = {{"model", "lenet5"}};
  gang.run = [&](JobContext& ctx) {
    ctx.report({{"step_timings", rows}});
    ctx.report({{"epoch", 1}});  // a report without steps draws nothing
    return JobOutcome{};
  };
  h.run.runner->add(gang);
  ASSERT_EQ(h.run_and_finish().done, 1);

  const auto check = [&](const nlohmann::json& trace) {
    const double start = trace["otherData"]["start_unix"].get<double>();
    std::map<std::pair<int, std::string>, std::vector<nlohmann::json>> by_track;
    std::set<int> named_processes;
    std::map<std::pair<int, int>, std::string> track_names;
    for (const auto& e : trace["traceEvents"]) {
      if (e["ph"] == "M" && e["name"] == "process_name") named_processes.insert(e["pid"].get<int>());
      if (e["ph"] == "M" && e["name"] == "thread_name")
        track_names[{e["pid"].get<int>(), e["tid"].get<int>()}] = e["args"]["name"];
      if (e["ph"] == "X" && e["cat"] == "step") by_track[{e["pid"].get<int>(), e["name"]}].push_back(e);
    }
    EXPECT_EQ(named_processes, (std::set<int>{0, 1}));
    for (int rank = 0; rank < 2; ++rank) {
      EXPECT_EQ((track_names[{rank, kComputeTrack}]), "compute");
      EXPECT_EQ((track_names[{rank, kAllreduceTrack}]), "allreduce");
      const auto& compute = by_track[{rank, "compute"}];
      const auto& allreduce = by_track[{rank, "allreduce"}];
      ASSERT_EQ(compute.size(), 3u);
      ASSERT_EQ(allreduce.size(), 3u);
      for (int i = 0; i < 3; ++i) {
        const double at = t + 0.1 * (i + 1);
        EXPECT_EQ(compute[i]["tid"], kComputeTrack);
        EXPECT_EQ(allreduce[i]["tid"], kAllreduceTrack);
        EXPECT_EQ(compute[i]["args"]["step"], i + 1);
        EXPECT_EQ(compute[i]["args"]["name"], "lenet5/cosine");
        EXPECT_NEAR(compute[i]["ts"].get<double>(), (at - start) * 1e6, 2);
        EXPECT_NEAR(compute[i]["dur"].get<double>(), (0.02 + 0.01 * rank) * 1e6, 2);
        EXPECT_NEAR(allreduce[i]["ts"].get<double>(), (at + 0.03 + 0.01 * rank - start) * 1e6, 2);
        // Every member's exchange ends at the same moment.
        EXPECT_NEAR(allreduce[i]["ts"].get<double>() + allreduce[i]["dur"].get<double>(), (at + 0.05 - start) * 1e6, 2);
      }
    }
  };
  const auto live = read_json(h.dir / "trace.json");
  ASSERT_TRUE(live.has_value());
  check(*live);
  EXPECT_EQ(read_steps(h.dir / "steps.csv").size(), 6u);

  std::filesystem::remove(h.dir / "trace.json");
  ASSERT_TRUE(write_trace(read_run_folder(h.dir.path())));
  const auto rebuilt = read_json(h.dir / "trace.json");
  ASSERT_TRUE(rebuilt.has_value());
  check(*rebuilt);
}

TEST(Trace, StepSlicesPastTheCapAreCountedNotDrawn) {
  TraceBuilder trace(0, 1000.0);
  StepSlice step{.job_id = "j", .attempt = 1, .rank = 0, .step = 1, .compute_begin = 1000.1, .compute_end = 1000.2,
                 .sync_begin = 1000.2, .sync_end = 1000.3};
  for (std::size_t i = 0; i < kMaxStepSlices / 2 + 5; ++i) trace.add_step(step, "j");
  const auto parsed = nlohmann::json::parse(trace.text());
  std::size_t drawn = 0;
  for (const auto& e : parsed["traceEvents"]) drawn += e["ph"] == "X" ? 1 : 0;
  EXPECT_EQ(drawn, kMaxStepSlices);
  EXPECT_EQ(parsed["otherData"]["step_slices_dropped"], 10);
}

TEST(Trace, AProgressReportsStepRowsOfAnotherShapeAreSkipped) {
  const nlohmann::json progress = {
      {"step_timings", {{0, 1, 1.0, 2.0, 3.0, 4.0}, {0, 2, "x", 2.0, 3.0, 4.0}, {1, 2, 1.0}, "row", {1, 3, 1, 2, 3, 4}}}};
  const auto steps = steps_in_progress("job", 2, progress);
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0].step, 1);
  EXPECT_EQ(steps[1].rank, 1);
  EXPECT_EQ(steps[1].attempt, 2);
  EXPECT_DOUBLE_EQ(steps[1].sync_end, 4.0);
  EXPECT_TRUE(steps_in_progress("job", 1, nlohmann::json{{"epoch", 1}}).empty());
  // steps.csv round trip
  TempDir dir;
  {
    AppendFile file(dir / "steps.csv");
    file.append(kStepsHeader);
    for (const auto& s : steps) file.append(step_row(s));
    file.append("torn,line\n");
  }
  const auto read = read_steps(dir / "steps.csv");
  ASSERT_EQ(read.size(), 2u);
  EXPECT_EQ(read[1].job_id, "job");
  EXPECT_DOUBLE_EQ(read[1].compute_end, 2.0);
}
