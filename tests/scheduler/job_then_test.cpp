// Job::then: jobs a job adds as it ends (packtrain batch's entries planned
// from another entry's results), while the run goes and on --resume.
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/job_graph.hpp>
#include <packtrain/scheduler/job_runner.hpp>

#include "common/test_util.hpp"
#include "scheduler/runner_fixture.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>

using namespace packtrain;
using packtrain::testing::TempDir;
using packtrain::testing::VirtualRun;

namespace {

Job job_returning(const std::string& name, double value) {
  Job job;
  job.name = name;
  job.spec = {{"name", name}};
  job.run = [value](JobContext&) { return JobOutcome{.metrics = {{"value", value}}}; };
  return job;
}

// A job that records the `value` metric of each job it waits for.
Job job_reading_dependencies(const std::string& name, std::mutex& m, std::map<std::string, double>& seen) {
  Job job;
  job.name = name;
  job.spec = {{"name", name}};
  job.run = [&m, &seen, name](JobContext& ctx) {
    std::lock_guard lock(m);
    double sum = 0;
    for (const auto& r : ctx.dependencies()) sum += r.metrics.value("value", 0.0);
    seen[name] = sum;
    return JobOutcome{.metrics = {{"value", sum}}};
  };
  return job;
}

}  // namespace

TEST(JobGraph, AddedJobsWaitForRunningOnesAndASkippedDependencySkipsThem) {
  JobGraph graph({{.cost = 1}, {.cost = 1}});
  graph.start(0);
  graph.start(1);
  graph.end(1, JobStatus::failed, /*may_retry=*/false);
  // 2 after 0 (running), 3 after 1 (failed), 4 follows 1 (order only), 5 after 2.
  const auto added = graph.add({{.after = {0}}, {.after = {1}}, {.follows = {1}}, {.after = {2}}});
  ASSERT_EQ(graph.size(), 6);
  ASSERT_EQ(added.skipped.size(), 1u);
  EXPECT_EQ(added.skipped[0], std::make_pair(3, 1));
  EXPECT_EQ(added.released, std::vector<int>({4}));
  EXPECT_EQ(graph.ready(), std::vector<int>({4}));
  const auto ended = graph.end(0, JobStatus::done, true);
  EXPECT_EQ(ended.released, std::vector<int>({2}));
  graph.start(2);
  EXPECT_EQ(graph.end(2, JobStatus::done, true).released, std::vector<int>({5}));
}

TEST(JobRunner, ThenAddsJobsThatRunBeforeTheRunEndsAndSeeTheirDependencies) {
  VirtualRun r(2);
  std::mutex m;
  std::map<std::string, double> seen;
  const auto a = r.runner->add(job_returning("a", 2.0));
  const auto other = r.runner->add(job_returning("other", 5.0));
  auto gate = job_reading_dependencies("gate", m, seen);
  gate.follows = {a, other};
  gate.then = [&m, &seen](const JobRecord& done) {
    EXPECT_EQ(done.status, JobStatus::done);
    EXPECT_EQ(done.metrics.value("value", 0.0), 7.0);
    std::vector<Job> more;
    more.push_back(job_reading_dependencies("b", m, seen));
    more.back().after = {done.id};
    auto c = job_reading_dependencies("c", m, seen);
    c.after = {more.back().id()};  // on a job added with it
    more.push_back(std::move(c));
    return more;
  };
  r.runner->add(std::move(gate));
  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(summary.exit_code(), 0);
  EXPECT_EQ(summary.done, 5);
  ASSERT_EQ(summary.jobs.size(), 5u);
  EXPECT_EQ(summary.jobs[3].name, "b");
  EXPECT_EQ(summary.jobs[4].name, "c");
  EXPECT_EQ(seen["gate"], 7.0);  // both jobs it follows, with their metrics
  EXPECT_EQ(seen["b"], 7.0);     // the gate's value
  EXPECT_EQ(seen["c"], 7.0);
  EXPECT_EQ(r.runner->jobs().size(), 5u);
}

TEST(JobRunner, ThenThatThrowsOrAddsABadJobFailsItsJobAndAddsNothing) {
  for (int bad = 0; bad < 3; ++bad) {
    VirtualRun r(2);
    auto a = job_returning("a", 1.0);
    const auto a_id = a.id();
    a.then = [bad, a_id](const JobRecord&) -> std::vector<Job> {
      if (bad == 0) throw Error("no plan");
      std::vector<Job> more = {job_returning("x", 1.0)};
      if (bad == 1) more.back().cores = 3;                   // more than the node has
      if (bad == 2) more.push_back(job_returning("a", 1.0));  // a's own spec again
      return more;
    };
    r.runner->add(std::move(a));
    r.runner->add(job_returning("b", 1.0));
    const auto summary = r.runner->run(r.options);
    EXPECT_EQ(summary.failed, 1) << bad;
    EXPECT_EQ(summary.done, 1) << bad;
    EXPECT_EQ(summary.jobs.size(), 2u) << bad;
    EXPECT_NE(summary.jobs[0].message.find("the jobs after it cannot be made"), std::string::npos)
        << summary.jobs[0].message;
  }
}

TEST(JobRunner, ResumedRunAddsAgainWhatAJobDoneBeforeAddedAndRunsOnlyWhatIsMissing) {
  TempDir dir;
  std::atomic<int> b_runs{0}, gate_runs{0};
  std::atomic<bool> b_fails{true};
  const auto make = [&](VirtualRun& r) {
    auto gate = job_returning("gate", 3.0);
    auto inner = gate.run;
    gate.run = [&gate_runs, inner](JobContext& ctx) {
      ++gate_runs;
      return inner(ctx);
    };
    gate.then = [&](const JobRecord& done) {
      std::vector<Job> more;
      // Planned from the record's metrics: the same on resume (the journal's).
      Job b;
      b.name = "b";
      b.spec = {{"name", "b"}, {"from", done.metrics.value("value", 0.0)}};
      b.after = {done.id};
      b.run = [&](JobContext&) {
        ++b_runs;
        if (b_fails) throw Error("first time");
        return JobOutcome{};
      };
      more.push_back(std::move(b));
      more.push_back(job_returning("c", 1.0));
      return more;
    };
    r.runner->add(std::move(gate));
  };
  auto journal = Journal::open(dir / "journal.sqlite");
  {
    VirtualRun r(2);
    make(r);
    r.options.journal = journal.get();
    const auto first = r.runner->run(r.options);
    EXPECT_EQ(first.done, 2);  // gate and c
    EXPECT_EQ(first.failed, 1);
  }
  EXPECT_EQ(journal->records().size(), 3u);
  b_fails = false;
  VirtualRun r(2);
  make(r);
  r.options.journal = journal.get();
  r.options.resume = true;
  const auto resumed = r.runner->run(r.options);
  EXPECT_EQ(resumed.exit_code(), 0);
  EXPECT_EQ(resumed.resumed, 2);  // gate and c, c added again from the gate's record
  EXPECT_EQ(resumed.done, 1);     // b
  EXPECT_EQ(gate_runs, 1);
  EXPECT_EQ(b_runs, 2);
  ASSERT_EQ(resumed.jobs.size(), 3u);
  EXPECT_EQ(resumed.jobs[1].spec["from"], 3.0);
}

TEST(JobRunner, ThenWithWorkSharingIsRefusedBeforeAnythingRuns) {
  struct Sharing final : WorkSharing {
    bool starts_with(int) override { return true; }
    void idle() override {}
    void ended(int, const JobRecord&) override {}
  } sharing;
  VirtualRun r(1);
  std::atomic<int> runs{0};
  auto a = job_returning("a", 1.0);
  a.run = [&runs](JobContext&) {
    ++runs;
    return JobOutcome{};
  };
  a.then = [](const JobRecord&) { return std::vector<Job>{}; };
  r.runner->add(std::move(a));
  r.options.sharing = &sharing;
  try {
    r.runner->run(r.options);
    ADD_FAILURE() << "ran with work sharing";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("adds jobs as it ends"), std::string::npos) << e.what();
  }
  EXPECT_EQ(runs, 0);
}

// A failure to make the jobs after it is not the training's: no retry.
TEST(JobRunner, AJobWhoseThenFailsIsNotRetried) {
  VirtualRun r(1);
  std::atomic<int> runs{0};
  auto a = job_returning("a", 1.0);
  a.retries = 2;
  a.run = [&runs](JobContext&) {
    ++runs;
    return JobOutcome{};
  };
  a.then = [](const JobRecord&) -> std::vector<Job> { throw Error("no plan"); };
  r.runner->add(std::move(a));
  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(summary.failed, 1);
  EXPECT_EQ(runs, 1);
}

// Jobs added by a job that another's added jobs wait for: on --resume they
// are added again in the order their jobs ended, so every dependency is
// known when it is needed.
TEST(JobRunner, ResumeAddsAgainInTheOrderTheJobsEnded) {
  TempDir dir;
  auto journal = Journal::open(dir / "journal.sqlite");
  const auto make = [](VirtualRun& r) {
    // `late` (added first) follows `early`; early adds x, late adds y after x.
    auto early = job_returning("early", 1.0);
    const auto early_id = early.id();
    const auto x = job_returning("x", 1.0);
    const auto x_id = x.id();
    early.then = [x](const JobRecord&) { return std::vector<Job>{x}; };
    auto late = job_returning("late", 1.0);
    late.follows = {early_id};
    late.then = [x_id](const JobRecord&) {
      auto y = job_returning("y", 1.0);
      y.after = {x_id};
      return std::vector<Job>{y};
    };
    r.runner->add(std::move(late));
    r.runner->add(std::move(early));
  };
  {
    VirtualRun r(1);
    make(r);
    r.options.journal = journal.get();
    EXPECT_EQ(r.runner->run(r.options).done, 4);
  }
  VirtualRun r(1);
  make(r);
  r.options.journal = journal.get();
  r.options.resume = true;
  const auto resumed = r.runner->run(r.options);
  EXPECT_EQ(resumed.exit_code(), 0);
  EXPECT_EQ(resumed.resumed, 4);
  EXPECT_EQ(resumed.jobs.size(), 4u);
}

// Many jobs adding jobs at once, on every core: each added job runs exactly
// once, and the run ends only after all of them (under ThreadSanitizer in
// tsan.scheduler).
TEST(JobRunner, ManyJobsAddingJobsConcurrentlyRunEachAddedJobOnce) {
  VirtualRun r(4);
  constexpr int kGates = 40, kEach = 5;
  std::mutex m;
  std::map<std::string, int> runs;
  for (int g = 0; g < kGates; ++g) {
    auto gate = job_returning("gate" + std::to_string(g), g);
    gate.then = [&m, &runs, g](const JobRecord& done) {
      std::vector<Job> more;
      for (int k = 0; k < kEach; ++k) {
        Job job;
        job.name = "g" + std::to_string(g) + "/" + std::to_string(k);
        job.spec = {{"name", job.name}};
        if (k % 2 == 0) job.after = {done.id};
        job.run = [&m, &runs, name = job.name](JobContext&) {
          std::lock_guard lock(m);
          ++runs[name];
          return JobOutcome{};
        };
        more.push_back(std::move(job));
      }
      return more;
    };
    r.runner->add(std::move(gate));
  }
  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(summary.done, kGates * (kEach + 1));
  EXPECT_EQ(summary.jobs.size(), static_cast<std::size_t>(kGates * (kEach + 1)));
  std::lock_guard lock(m);
  ASSERT_EQ(runs.size(), static_cast<std::size_t>(kGates * kEach));
  for (const auto& [name, n] : runs) EXPECT_EQ(n, 1) << name;
}
