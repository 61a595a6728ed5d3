#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/job_runner.hpp>
#include <packtrain/scheduler/resources.hpp>

#include "common/test_util.hpp"
#include "scheduler/runner_fixture.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <stop_token>
#include <thread>

using namespace packtrain;
using packtrain::testing::Counter;
using packtrain::testing::thrown_error;
using packtrain::testing::sleeping_job;
using packtrain::testing::VirtualRun;
using Clock = std::chrono::steady_clock;

namespace {

struct Span {
  Clock::time_point start, end;
  std::vector<int> cores;
};

// Wraps a job so that its start and end times and cores are recorded.
Job recorded(Job job, std::mutex& m, std::map<std::string, Span>& spans) {
  auto inner = job.run;
  job.run = [inner, &m, &spans, name = job.name](JobContext& ctx) {
    const auto start = Clock::now();
    auto out = inner(ctx);
    std::lock_guard lock(m);
    spans[name] = {start, Clock::now(), ctx.cores()};
    return out;
  };
  return job;
}

// A job that counts its start, then sleeps until a stop is asked for and
// returns `cancelled`. The stop wakes it through its stop token; the
// deadline only turns a lost wakeup into a `done` with a message instead
// of a hang.
Job stops_when_asked(const std::string& name, Counter& started) {
  Job job = sleeping_job(name, 0);
  job.run = [&started](JobContext& ctx) {
    std::mutex m;
    std::condition_variable stop;
    const std::stop_callback wake(ctx.stop_token(), [&] {
      std::lock_guard lock(m);
      stop.notify_all();
    });
    std::unique_lock lock(m);
    started.add(1);
    const auto deadline = Clock::now() + packtrain::testing::kPatience;
    if (!stop.wait_until(lock, deadline, [&] { return ctx.stop_requested(); }) || Clock::now() >= deadline)
      return JobOutcome{.message = "not woken by the stop"};
    return JobOutcome{.status = JobStatus::cancelled};
  };
  return job;
}

// Asks `runner` to stop (as Ctrl-C does) once `jobs` have started.
std::thread stop_once_started(JobRunner& runner, Counter& started, int jobs) {
  return std::thread([&runner, &started, jobs] {
    EXPECT_TRUE(started.wait_for(jobs));
    runner.request_stop();
  });
}

}  // namespace

TEST(JobRunner, DependenciesRespected) {
  VirtualRun r(3);
  std::mutex m;
  std::map<std::string, Span> spans;
  // A diamond: a -> (b, c) -> d, plus independent e.
  const auto a = r.runner->add(recorded(sleeping_job("a", 30), m, spans));
  auto b = sleeping_job("b", 20, 5);
  b.after = {a};
  const auto b_id = r.runner->add(recorded(b, m, spans));
  auto c = sleeping_job("c", 10, 1);
  c.after = {a};
  const auto c_id = r.runner->add(recorded(c, m, spans));
  auto d = sleeping_job("d", 5, 100);  // the highest cost must still wait
  d.after = {b_id, c_id};
  r.runner->add(recorded(d, m, spans));
  r.runner->add(recorded(sleeping_job("e", 5), m, spans));

  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(summary.done, 5);
  EXPECT_EQ(summary.exit_code(), 0);
  EXPECT_LE(spans["a"].end, spans["b"].start);
  EXPECT_LE(spans["a"].end, spans["c"].start);
  EXPECT_LE(spans["b"].end, spans["d"].start);
  EXPECT_LE(spans["c"].end, spans["d"].start);
  EXPECT_LT(spans["e"].start, spans["a"].end);  // independent work runs meanwhile
}

TEST(JobRunner, NeverRunsMoreThreadsThanCores) {
  constexpr int kCores = 4;
  VirtualRun r(kCores);
  std::atomic<int> in_use{0}, peak{0};
  std::mutex m;
  std::vector<std::pair<std::set<int>, std::pair<Clock::time_point, Clock::time_point>>> placements;
  for (int i = 0; i < 40; ++i) {
    Job job;
    job.name = "job" + std::to_string(i);
    job.spec = {{"i", i}};
    job.cores = 1 + i % 3;
    job.cost = (i * 37) % 11;
    job.run = [&, cores = job.cores, ms = 2 + i % 5](JobContext& ctx) {
      EXPECT_EQ(ctx.threads(), cores);
      const int now = in_use.fetch_add(cores) + cores;
      int p = peak.load();
      while (now > p && !peak.compare_exchange_weak(p, now)) {
      }
      const auto start = Clock::now();
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      in_use.fetch_sub(cores);
      std::lock_guard lock(m);
      placements.push_back({std::set<int>(ctx.cores().begin(), ctx.cores().end()), {start, Clock::now()}});
      return JobOutcome{};
    };
    r.runner->add(job);
  }
  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(summary.done, 40);
  EXPECT_LE(peak.load(), kCores);
  EXPECT_GE(peak.load(), 3);  // it does pack jobs side by side
  EXPECT_LE(summary.peak_cores_in_use, kCores);
  // Jobs that overlapped in time never shared a core.
  for (std::size_t i = 0; i < placements.size(); ++i)
    for (std::size_t j = i + 1; j < placements.size(); ++j) {
      const auto& [ci, ti] = placements[i];
      const auto& [cj, tj] = placements[j];
      if (ti.first < tj.second && tj.first < ti.second) {
        for (int c : ci) EXPECT_EQ(cj.count(c), 0u) << "core " << c << " shared by overlapping jobs";
      }
    }
}

TEST(JobRunner, LongestEstimatedJobStartsFirst) {
  VirtualRun r(1);
  std::mutex m;
  std::vector<double> order;
  for (double cost : {3.0, 9.0, 1.0, 7.0, 5.0}) {
    Job job = sleeping_job("c" + std::to_string(static_cast<int>(cost)), 1, cost);
    job.run = [&, cost](JobContext&) {
      std::lock_guard lock(m);
      order.push_back(cost);
      return JobOutcome{};
    };
    r.runner->add(job);
  }
  r.runner->run(r.options);
  EXPECT_EQ(order, (std::vector<double>{9, 7, 5, 3, 1}));
}

TEST(JobRunner, IdleCoreTakesAShorterJobThatFits) {
  VirtualRun r(2);
  std::mutex m;
  std::map<std::string, Span> spans;
  r.runner->add(recorded(sleeping_job("long", 150, 10), m, spans));
  r.runner->add(recorded(sleeping_job("wide", 10, 9, 2), m, spans));  // must wait for both cores
  r.runner->add(recorded(sleeping_job("short", 10, 1), m, spans));    // fits the idle core now
  r.runner->run(r.options);
  EXPECT_LT(spans["short"].start, spans["long"].end);
  EXPECT_GE(spans["wide"].start, spans["long"].end);
  EXPECT_EQ(spans["wide"].cores.size(), 2u);
}

TEST(JobRunner, FailedJobsAreRetriedRecordedAndTheOthersGoOn) {
  VirtualRun r(2);
  std::atomic<int> flaky_calls{0};
  Job flaky = sleeping_job("flaky", 1);
  flaky.retries = 2;
  flaky.run = [&](JobContext& ctx) {
    flaky_calls++;
    if (ctx.attempt() < 3) throw std::runtime_error("flaky attempt " + std::to_string(ctx.attempt()));
    return JobOutcome{.metrics = {{"ok", true}}};
  };
  Job broken = sleeping_job("broken", 1);
  broken.retries = 1;
  broken.run = [](JobContext&) -> JobOutcome { throw std::runtime_error("out of cheese\nsecond line"); };
  r.runner->add(flaky);
  const auto broken_id = r.runner->add(broken);
  Job after_broken = sleeping_job("after-broken", 1);
  after_broken.after = {broken_id};
  r.runner->add(after_broken);
  for (int i = 0; i < 5; ++i) r.runner->add(sleeping_job("fine" + std::to_string(i), 2));

  const auto s = r.runner->run(r.options);
  EXPECT_EQ(flaky_calls.load(), 3);
  EXPECT_EQ(s.done, 6);
  EXPECT_EQ(s.failed, 1);
  EXPECT_EQ(s.skipped, 1);
  EXPECT_EQ(s.retried, 3);
  EXPECT_EQ(s.exit_code(), 1);
  for (const auto& rec : s.jobs) {
    if (rec.name == "flaky") {
      EXPECT_EQ(rec.status, JobStatus::done);
      EXPECT_EQ(rec.attempts, 3);
    } else if (rec.name == "broken") {
      EXPECT_EQ(rec.status, JobStatus::failed);
      EXPECT_EQ(rec.attempts, 2);
      EXPECT_EQ(rec.message, "out of cheese");  // one line
    } else if (rec.name == "after-broken") {
      EXPECT_EQ(rec.status, JobStatus::skipped);
      EXPECT_NE(rec.message.find("broken failed"), std::string::npos) << rec.message;
    }
  }
}

TEST(JobRunner, StopLetsRunningJobsFinishAndStartsNothingNew) {
  VirtualRun r(2);
  packtrain::testing::TempDir dir;
  auto journal = Journal::open(dir / "journal.sqlite");
  Counter started;
  for (int i = 0; i < 10; ++i) {
    r.runner->add(stops_when_asked("j" + std::to_string(i), started));
  }
  std::thread stopper = stop_once_started(*r.runner, started, 2);
  r.options.journal = journal.get();
  const auto s = r.runner->run(r.options);
  stopper.join();
  EXPECT_TRUE(s.interrupted);
  EXPECT_EQ(s.exit_code(), 130);
  EXPECT_EQ(started.value(), 2);
  EXPECT_EQ(s.cancelled, 2);
  int queued = 0, cancelled = 0;
  for (const auto& rec : journal->records()) {
    queued += rec.status == JobStatus::queued;
    cancelled += rec.status == JobStatus::cancelled;
  }
  EXPECT_EQ(queued, 8);
  EXPECT_EQ(cancelled, 2);
}

TEST(JobRunner, PreemptAsksRunningJobsForACheckpointThenStopsWith143) {
  for (const bool preempt : {true, false}) {
    VirtualRun r(2);
    Counter started;
    std::atomic<int> asked_to_save{0};
    for (int i = 0; i < 4; ++i) {
      Job job = stops_when_asked("j" + std::to_string(i), started);
      job.run = [inner = job.run, &asked_to_save](JobContext& ctx) {
        auto outcome = inner(ctx);
        // After the stop is seen, the preemption is seen too (it is raised first).
        if (ctx.checkpoint_requested()) asked_to_save.fetch_add(1);
        return outcome;
      };
      r.runner->add(std::move(job));
    }
    std::thread stopper([&] {
      EXPECT_TRUE(started.wait_for(2));
      preempt ? r.runner->request_preempt() : r.runner->request_stop();
    });
    const auto s = r.runner->run(r.options);
    stopper.join();
    EXPECT_TRUE(s.interrupted);
    EXPECT_EQ(s.preempted, preempt);
    EXPECT_EQ(s.exit_code(), preempt ? 143 : 130);
    EXPECT_EQ(s.cancelled, 2);
    EXPECT_EQ(asked_to_save.load(), preempt ? 2 : 0);
  }
}

// A full disk mid-run (the journal's file may grow no more: RLIMIT_FSIZE, as
// a real write then fails): the run starts nothing more and says why, the
// journal keeps what it had and passes SQLite's integrity check, and a
// resume once the space is back runs only the jobs not recorded done.
TEST(JobRunner, AJournalThatCannotBeWrittenStopsTheRunKeepsWhatItHasAndResumeFinishes) {
  packtrain::testing::TempDir dir;
  const auto path = dir / "journal.sqlite";
  std::signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails (EFBIG) instead of killing the process
  rlimit before{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &before), 0);
  constexpr int kJobs = 12;
  std::atomic<int> runs{0};
  const auto add_jobs = [&](JobRunner& runner, bool fill_disk) {
    for (int i = 0; i < kJobs; ++i) {
      Job job = sleeping_job("j" + std::to_string(i), 20);
      job.run = [&runs, &before, path, i, fill_disk, sleep = job.run](JobContext& ctx) {
        ++runs;
        if (fill_disk && i == 5) {  // from here on the journal's WAL can grow no more
          rlimit full = before;
          full.rlim_cur = std::filesystem::file_size(path.string() + "-wal");
          setrlimit(RLIMIT_FSIZE, &full);
        }
        return sleep(ctx);
      };
      runner.add(job);
    }
  };
  {
    VirtualRun r(2);
    auto journal = Journal::open(path);
    add_jobs(*r.runner, true);
    r.options.journal = journal.get();
    const auto s = r.runner->run(r.options);
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &before), 0);
    EXPECT_NE(s.journal_error.find("journal"), std::string::npos) << s.journal_error;
    EXPECT_EQ(s.exit_code(), 1);
    EXPECT_LE(runs.load(), 8) << "jobs were still started after the journal failed";
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string integrity;
  sqlite3_exec(
      db, "PRAGMA integrity_check",
      [](void* out, int, char** values, char**) {
        *static_cast<std::string*>(out) += values[0] ? values[0] : "";
        return 0;
      },
      &integrity, nullptr);
  sqlite3_close(db);
  EXPECT_EQ(integrity, "ok");
  int done_before = 0;
  for (const auto& rec : Journal::open(path)->records()) done_before += rec.status == JobStatus::done;
  EXPECT_GE(done_before, 1) << "the jobs done before the disk filled are kept";
  EXPECT_LT(done_before, kJobs);

  runs = 0;
  VirtualRun again(2);
  auto journal = Journal::open(path);
  add_jobs(*again.runner, false);
  again.options.journal = journal.get();
  again.options.resume = true;
  const auto s = again.runner->run(again.options);
  EXPECT_TRUE(s.journal_error.empty()) << s.journal_error;
  EXPECT_EQ(s.exit_code(), 0);
  EXPECT_EQ(s.resumed, done_before);
  EXPECT_EQ(runs.load(), kJobs - done_before);
  int done = 0;
  for (const auto& rec : journal->records()) done += rec.status == JobStatus::done;
  EXPECT_EQ(done, kJobs);
}

// A job a supervising parent recorded `crashed` (DESIGN.md decision 13):
// --resume never runs it nor its dependents (recorded skipped, naming it),
// keeps its row as the parent wrote it, runs the rest, and exits 1.
TEST(JobRunner, ResumeNeverRunsAJobRecordedCrashedAndSkipsItsDependents) {
  packtrain::testing::TempDir dir;
  const auto journal = Journal::open(dir / "journal.sqlite");
  std::atomic<int> runs{0};
  const auto counting = [&runs](const std::string& name) {
    Job job = sleeping_job(name, 1);
    job.run = [&runs, sleep = job.run](JobContext& ctx) {
      ++runs;
      return sleep(ctx);
    };
    return job;
  };
  VirtualRun r(2);
  const auto bad = r.runner->add(counting("bad"));
  Job dependent = counting("after-bad");
  dependent.after = {bad};
  const auto dependent_id = r.runner->add(dependent);
  r.runner->add(counting("good"));
  journal->add_queued(bad, "bad", nlohmann::json::object());
  journal->mark_started(bad, 2, unix_now(), {0}, 0);
  journal->mark_ended(bad, JobStatus::crashed, 2, unix_now(), {{"signal", "SIGSEGV"}, {"crashes", 2}}, "crashed twice");
  r.options.journal = journal.get();
  r.options.resume = true;
  const auto s = r.runner->run(r.options);
  EXPECT_EQ(runs.load(), 1) << "only 'good' runs";
  EXPECT_EQ(s.crashed, 1);
  EXPECT_EQ(s.skipped, 1);
  EXPECT_EQ(s.done, 1);
  EXPECT_EQ(s.exit_code(), 1);
  const auto crashed = journal->find(bad);
  ASSERT_TRUE(crashed);
  EXPECT_EQ(crashed->status, JobStatus::crashed);
  EXPECT_EQ(crashed->attempts, 2);
  EXPECT_EQ(crashed->metrics["signal"], "SIGSEGV");
  const auto skipped = journal->find(dependent_id);
  ASSERT_TRUE(skipped);
  EXPECT_EQ(skipped->status, JobStatus::skipped);
  EXPECT_EQ(skipped->message, "dependency bad crashed");
}

TEST(JobRunner, RefusesAJobNeedingMoreCoresThanTheNodeHas) {
  VirtualRun r(2);
  r.runner->add(sleeping_job("huge", 1, 1, 3));
  const auto what = thrown_error([&] { r.runner->run(r.options); });
  EXPECT_NE(what.find("'huge' needs 3 cores but this node has 2 usable"), std::string::npos) << what;
}

TEST(JobRunner, RefusesAJobNeedingMoreMemoryOrGpusThanTheNodeHas) {
  VirtualRun r(2, 1000);
  auto job = sleeping_job("fat", 1);
  job.memory_mb = 2000;
  r.runner->add(job);
  EXPECT_NE(thrown_error([&] { r.runner->run(r.options); }).find("needs 2000 MiB"), std::string::npos);
  VirtualRun g(2);
  auto gpu_job = sleeping_job("gpu", 1);
  gpu_job.gpus = 1;
  g.runner->add(gpu_job);
  EXPECT_NE(thrown_error([&] { g.runner->run(g.options); }).find("needs 1 GPU(s) but this node has 0"), std::string::npos);
}

TEST(JobRunner, RefusesADependencyCycle) {
  VirtualRun r(2);
  auto a = sleeping_job("a", 1);
  auto b = sleeping_job("b", 1);
  auto c = sleeping_job("c", 1);
  a.after = {c.id()};
  b.after = {a.id()};
  c.after = {b.id()};
  bool ran = false;
  for (auto* j : {&a, &b, &c}) {
    j->run = [&](JobContext&) {
      ran = true;
      return JobOutcome{};
    };
    r.runner->add(*j);
  }
  const auto what = thrown_error([&] { r.runner->run(r.options); });
  EXPECT_NE(what.find("dependency cycle"), std::string::npos) << what;
  EXPECT_FALSE(ran);
}

TEST(JobRunner, RefusesUnknownDependencyAndDuplicateJobs) {
  VirtualRun r(1);
  auto a = sleeping_job("a", 1);
  a.after = {"0123456789abcdef"};
  r.runner->add(a);
  EXPECT_NE(thrown_error([&] { r.runner->run(r.options); }).find("unknown job id 0123456789abcdef"), std::string::npos);
  EXPECT_NE(thrown_error([&] { r.runner->add(sleeping_job("a", 1)); }).find("same spec"), std::string::npos);
}

TEST(JobRunner, MemoryIsNotOvercommitted) {
  VirtualRun r(4, 1000);
  std::atomic<int> in_use{0}, peak{0};
  for (int i = 0; i < 8; ++i) {
    auto job = sleeping_job("m" + std::to_string(i), 1);
    job.memory_mb = 400;
    job.run = [&](JobContext&) {
      const int now = ++in_use;
      int p = peak.load();
      while (now > p && !peak.compare_exchange_weak(p, now)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      --in_use;
      return JobOutcome{};
    };
    r.runner->add(job);
  }
  EXPECT_EQ(r.runner->run(r.options).done, 8);
  EXPECT_EQ(peak.load(), 2);  // 2 x 400 MiB fit in 1000, 3 do not; 4 cores would allow 4
}

TEST(JobRunner, SeedDependsOnTheJobNotOnWhereItRan) {
  VirtualRun r(2);
  std::mutex m;
  std::map<std::string, std::uint64_t> seeds;
  for (int i = 0; i < 6; ++i) {
    auto job = sleeping_job("s" + std::to_string(i), 1);
    job.run = [&, name = job.name](JobContext& ctx) {
      std::lock_guard lock(m);
      seeds[name] = ctx.seed();
      return JobOutcome{};
    };
    r.runner->add(job);
  }
  r.options.base_seed = 42;
  r.runner->run(r.options);
  std::set<std::uint64_t> distinct;
  for (const auto& job : r.runner->jobs()) {
    EXPECT_EQ(seeds[job.name], derive_seed(job.id(), 42));
    distinct.insert(seeds[job.name]);
  }
  EXPECT_EQ(distinct.size(), 6u);
  EXPECT_NE(derive_seed("abc", 1), derive_seed("abc", 2));
}

TEST(JobRunner, JobThreadIsPinnedToItsCoresWithThatManyOpenMpThreads) {
  const auto node = detect_node_resources();
  Executor ex(node.cores);
  JobRunner runner(ex, node);
  std::mutex m;
  std::map<int, std::pair<std::vector<int>, int>> seen;  // cores asked -> (affinity, omp threads)
  for (int k = 1; k <= node.core_count(); ++k) {
    Job job;
    job.name = "pinned" + std::to_string(k);
    job.spec = {{"k", k}};
    job.cores = k;
    job.run = [&, k](JobContext& ctx) {
      cpu_set_t set;
      CPU_ZERO(&set);
      sched_getaffinity(0, sizeof(set), &set);
      std::vector<int> affinity;
      for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) affinity.push_back(c);
      std::lock_guard lock(m);
      seen[k] = {affinity, omp_get_max_threads()};
      EXPECT_EQ(affinity, ctx.cores());
      return JobOutcome{};
    };
    runner.add(job);
  }
  runner.run();
  for (int k = 1; k <= node.core_count(); ++k) {
    EXPECT_EQ(static_cast<int>(seen[k].first.size()), k);
    EXPECT_EQ(seen[k].second, k);
  }
}

TEST(JobRunner, DependentsOfACancelledJobAreSkippedNotLeftWaiting) {
  VirtualRun r(2);
  auto quitter = sleeping_job("quitter", 1);
  quitter.run = [](JobContext&) { return JobOutcome{.status = JobStatus::cancelled, .message = "gave up"}; };
  auto after = sleeping_job("after", 1);
  after.after = {r.runner->add(quitter)};
  r.runner->add(after);
  const auto s = r.runner->run(r.options);  // returns: nothing waits forever
  EXPECT_EQ(s.cancelled, 1);
  EXPECT_EQ(s.skipped, 1);
  EXPECT_EQ(s.jobs[1].status, JobStatus::skipped);
  EXPECT_NE(s.jobs[1].message.find("quitter cancelled"), std::string::npos) << s.jobs[1].message;
}

TEST(JobRunner, RequestStopWakesAJobSleepingOnItsStopToken) {
  VirtualRun r(1);
  Counter started;
  r.runner->add(stops_when_asked("sleeper", started));
  std::thread stopper = stop_once_started(*r.runner, started, 1);
  const auto s = r.runner->run(r.options);
  stopper.join();
  ASSERT_EQ(s.jobs.size(), 1u);
  EXPECT_EQ(s.jobs[0].status, JobStatus::cancelled) << s.jobs[0].message;
  EXPECT_EQ(s.cancelled, 1);
}

TEST(JobRunner, AStopCallbackRegisteredAfterTheStopRunsAtOnce) {
  VirtualRun r(1);
  Counter started, stopped;
  bool ran_at_once = false;
  Job job = sleeping_job("late", 0);
  job.run = [&](JobContext& ctx) {
    started.add(1);
    EXPECT_TRUE(stopped.wait_for(1));
    bool ran = false;
    const std::stop_callback late(ctx.stop_token(), [&] { ran = true; });
    ran_at_once = ran;  // run on this thread, by the registration
    return JobOutcome{.status = JobStatus::cancelled};
  };
  r.runner->add(job);
  std::thread stopper([&] {
    EXPECT_TRUE(started.wait_for(1));
    r.runner->request_stop();
    stopped.add(1);
  });
  const auto s = r.runner->run(r.options);
  stopper.join();
  EXPECT_TRUE(ran_at_once);
  EXPECT_EQ(s.cancelled, 1);
}

TEST(JobRunner, StoppingTheOnlyJobStillReportsAnInterruptedRun) {
  VirtualRun r(1);
  Counter started;
  r.runner->add(stops_when_asked("only", started));
  std::thread stopper = stop_once_started(*r.runner, started, 1);
  const auto s = r.runner->run(r.options);
  stopper.join();
  EXPECT_TRUE(s.interrupted);
  EXPECT_EQ(s.exit_code(), 130);
}

namespace {

// Records every event, and checks each `started` and `finished` against the
// journal as it arrives: the journal write for a change is made before any
// sink hears of it.
struct JournalChecker : EventSink {
  Journal* journal = nullptr;
  std::vector<JobEvent> events;
  std::vector<std::string> mismatches;
  int run_starts = 0, run_ends = 0;
  void on_run_start(const RunStart&) override {
    ++run_starts;
    if (!events.empty()) mismatches.push_back("on_run_start after an event");
  }
  void on_event(const JobEvent& e) override {
    events.push_back(e);
    if (e.kind != EventKind::started && e.kind != EventKind::finished) return;
    const auto row = journal->find(e.job_id);
    const auto expected = e.kind == EventKind::started ? JobStatus::running : JobStatus::done;
    if (!row || row->status != expected) mismatches.push_back(e.name + " " + std::string(to_string(e.kind)));
  }
  void on_run_end(const RunSummary&) override { ++run_ends; }
};

}  // namespace

TEST(JobRunner, JournalAndSinksSeeEveryEventInOrderWhen200JobsEndAtOnce) {
  constexpr int kJobs = 200;
  VirtualRun r(kJobs);  // a core each: every job runs, then ends, at once
  packtrain::testing::TempDir dir;
  auto journal = Journal::open(dir / "journal.sqlite");
  Counter running;
  for (int i = 0; i < kJobs; ++i) {
    Job job = sleeping_job("j" + std::to_string(i), 0);
    job.run = [&](JobContext&) {
      running.add(1);
      EXPECT_TRUE(running.wait_for(kJobs)) << "the jobs did not all run at once";
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the job's work
      return JobOutcome{};
    };
    r.runner->add(job);
  }
  JournalChecker sink;
  sink.journal = journal.get();
  r.options.journal = journal.get();
  r.options.sinks = {&sink};
  const auto s = r.runner->run(r.options);
  EXPECT_EQ(s.done, kJobs);
  // Everything was delivered before run() returned, on_run_end last.
  EXPECT_EQ(sink.run_starts, 1);
  EXPECT_EQ(sink.run_ends, 1);
  EXPECT_TRUE(sink.mismatches.empty()) << sink.mismatches.size() << " out of order, first: " << sink.mismatches[0];
  std::map<std::string, std::vector<EventKind>> kinds;
  for (const auto& e : sink.events) kinds[e.name].push_back(e.kind);
  ASSERT_EQ(kinds.size(), static_cast<std::size_t>(kJobs));
  for (const auto& [name, k] : kinds)
    EXPECT_EQ(k, (std::vector<EventKind>{EventKind::queued, EventKind::started, EventKind::finished})) << name;
  const auto rows = journal->records();
  ASSERT_EQ(rows.size(), static_cast<std::size_t>(kJobs));
  for (const auto& row : rows) {
    EXPECT_EQ(row.status, JobStatus::done) << row.name;
    EXPECT_EQ(row.attempts, 1) << row.name;
  }
}

TEST(JobRunner, ASlowSinkDoesNotDelayPlacement) {
  constexpr int kCores = 4, kJobs = 200;
  VirtualRun r(kCores);
  Counter ran;
  // Slower than all the jobs together: its first call returns only once
  // every job has run. Were placement waiting for it, nothing would run.
  struct SlowSink : EventSink {
    Counter* ran = nullptr;
    int calls = 0;
    bool all_ran_while_it_was_busy = false;
    void on_event(const JobEvent&) override {
      if (calls++ == 0) all_ran_while_it_was_busy = ran->wait_for(kJobs);
    }
  } sink;
  sink.ran = &ran;
  for (int i = 0; i < kJobs; ++i) {
    Job job = sleeping_job("j" + std::to_string(i), 1);
    auto inner = job.run;
    job.run = [&ran, inner](JobContext& ctx) {
      auto outcome = inner(ctx);
      ran.add(1);
      return outcome;
    };
    r.runner->add(job);
  }
  r.options.sinks = {&sink};
  const auto s = r.runner->run(r.options);
  EXPECT_TRUE(sink.all_ran_while_it_was_busy) << "placement waited for the sink";
  EXPECT_EQ(s.done, kJobs);
  EXPECT_EQ(s.peak_cores_in_use, kCores);  // the cores stayed busy
  EXPECT_EQ(sink.calls, 3 * kJobs);        // and the sink heard everything before run() returned
}
