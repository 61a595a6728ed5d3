// Elastic jobs: cores lent while idle, taken back for a waiting job.
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/job_runner.hpp>

#include "scheduler/runner_fixture.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <latch>
#include <mutex>
#include <set>
#include <stop_token>
#include <thread>
#include <vector>

using namespace packtrain;
using packtrain::testing::Counter;
using packtrain::testing::sleeping_job;
using packtrain::testing::VirtualRun;
using namespace std::chrono_literals;

namespace {

// Records every event (sinks are called one at a time).
struct Recorder : EventSink {
  std::vector<JobEvent> events;
  void on_event(const JobEvent& e) override { events.push_back(e); }
};

// Threads running at once on the run's cores: jobs' own threads and helpers.
struct Occupancy {
  std::atomic<int> now{0}, peak{0};
  void enter() {
    const int n = now.fetch_add(1) + 1;
    int p = peak.load();
    while (n > p && !peak.compare_exchange_weak(p, n)) {
    }
  }
  void leave() { now.fetch_sub(1); }
};

// An elastic job whose helpers work until asked back; its own thread runs
// `until` and returns. Counts helpers at once and the cores they got.
struct ElasticProbe {
  Counter helpers_now;
  std::atomic<int> helpers_peak{0};
  std::mutex m;
  std::set<int> lent_cores;

  Job job(const std::string& name, int min_cores, int max_cores, Occupancy& occ, std::function<void()> until) {
    Job job;
    job.name = name;
    job.spec = {{"name", name}};
    job.cores = min_cores;
    job.max_cores = max_cores;
    job.cost = 1000;  // starts first
    job.run = [this, &occ, until](JobContext& ctx) {
      occ.enter();
      ctx.lend_cores_to([this, &occ](const CoreLease& lease) {
        occ.enter();
        {
          std::lock_guard lock(m);
          lent_cores.insert(lease.core());
        }
        const int n = helpers_now.add(1);
        int p = helpers_peak.load();
        while (n > p && !helpers_peak.compare_exchange_weak(p, n)) {
        }
        // A helper's work, in steps, until the core is wanted back (Hogwild
        // checks between minibatches). The sleep is a step, not a wait.
        while (!lease.should_return()) std::this_thread::sleep_for(200us);
        helpers_now.add(-1);
        occ.leave();
      });
      until();
      occ.leave();
      return JobOutcome{};
    };
    return job;
  }
};

Job occupying(Job job, Occupancy& occ) {
  auto inner = job.run;
  job.run = [inner, &occ](JobContext& ctx) {
    occ.enter();
    auto out = inner(ctx);
    occ.leave();
    return out;
  };
  return job;
}

}  // namespace

TEST(Elastic, IdleCoresAreLentAndTakenBackForAWaitingJob) {
  constexpr int kCores = 4;
  VirtualRun r(kCores);
  Recorder rec;
  r.options.sinks = {&rec};
  Occupancy occ;
  ElasticProbe probe;
  Counter second_done;
  // At the tail, once `second` is done, every core goes to the elastic job,
  // which then ends.
  bool had_every_core = false;
  r.runner->add(probe.job("elastic", 1, kCores, occ, [&] {
    had_every_core = second_done.wait_for(1) && probe.helpers_now.wait_for(kCores - 1);
  }));
  // `first` ends once the two idle cores are lent to the elastic job...
  Job first = sleeping_job("first", 0, 10);
  first.run = [&](JobContext&) {
    EXPECT_TRUE(probe.helpers_now.wait_for(2)) << "the idle cores were not lent";
    return JobOutcome{};
  };
  const auto first_id = r.runner->add(occupying(first, occ));
  // ... and `second`, which needs two cores, becomes ready: one must come back.
  std::atomic<int> helpers_while_second{-1};
  Job second = sleeping_job("second", 0, 5, 2);
  second.after = {first_id};
  second.run = [&](JobContext& ctx) {
    EXPECT_EQ(ctx.threads(), 2);
    helpers_while_second.store(probe.helpers_now.value());
    second_done.add(1);
    return JobOutcome{};
  };
  r.runner->add(occupying(second, occ));

  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(summary.done, 3);
  EXPECT_LE(occ.peak.load(), kCores) << "more threads ran than there are cores";
  EXPECT_LE(summary.peak_cores_in_use, kCores);
  // `second` got its two cores: the one `first` left and one the elastic job gave back.
  EXPECT_EQ(helpers_while_second.load(), 1);
  // At the tail the elastic job had every core.
  EXPECT_TRUE(had_every_core);
  EXPECT_EQ(probe.helpers_peak.load(), kCores - 1);

  // Every change of the elastic job's cores is an event, and they add up.
  std::vector<int> sizes;
  for (const auto& e : rec.events)
    if (e.kind == EventKind::resized) {
      EXPECT_EQ(e.name, "elastic");
      EXPECT_EQ(e.data.at("cores").get<int>(), static_cast<int>(e.cores.size()));
      sizes.push_back(static_cast<int>(e.cores.size()));
    }
  ASSERT_FALSE(sizes.empty());
  EXPECT_EQ(*std::max_element(sizes.begin(), sizes.end()), kCores);
  EXPECT_EQ(sizes.back(), 1);  // every lent core went back before the end
}

TEST(Elastic, NothingIsLentWhileAJobThatFitsWaits) {
  constexpr int kShort = 10;
  VirtualRun r(2);
  Occupancy occ;
  ElasticProbe probe;
  Counter shorts_done;
  bool lent_at_the_tail = false;
  r.runner->add(probe.job("elastic", 1, 2, occ, [&] {
    lent_at_the_tail = shorts_done.wait_for(kShort) && probe.helpers_now.wait_for(1);
  }));
  // Ten short one-core jobs: the second core runs them one after the other,
  // and is lent only once they are all done.
  std::atomic<int> lent_during{0};
  for (int i = 0; i < kShort; ++i) {
    Job job = sleeping_job("short" + std::to_string(i), 0, 1);
    job.run = [&](JobContext&) {
      std::this_thread::sleep_for(5ms);  // the job's work, not a wait
      lent_during.fetch_add(probe.helpers_now.value());
      shorts_done.add(1);
      return JobOutcome{};
    };
    r.runner->add(occupying(job, occ));
  }
  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(summary.done, kShort + 1);
  EXPECT_EQ(lent_during.load(), 0);
  EXPECT_TRUE(lent_at_the_tail);
  EXPECT_EQ(probe.helpers_peak.load(), 1);
  EXPECT_LE(occ.peak.load(), 2);
}

TEST(Elastic, AJobsOwnCoresRunItsHelperUntilItEnds) {
  VirtualRun r(3);
  std::mutex m;
  std::vector<int> helper_cores;
  std::vector<int> job_cores;
  Counter helping, returned;
  Job job = sleeping_job("wide", 0, 1, 3);  // three cores, not elastic
  job.run = [&](JobContext& ctx) {
    job_cores = ctx.cores();
    ctx.lend_cores_to([&](const CoreLease& lease) {
      {
        std::lock_guard lock(m);
        helper_cores.push_back(lease.core());
      }
      helping.add(1);
      while (!lease.should_return()) std::this_thread::sleep_for(200us);  // a step of work
      returned.add(1);
    });
    EXPECT_TRUE(helping.wait_for(2)) << "the job's own cores did not run its helper";
    return JobOutcome{};
  };
  r.runner->add(job);
  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(summary.done, 1);
  // The runner waited for both helpers before it recorded the job's end.
  EXPECT_EQ(returned.value(), 2);
  std::sort(helper_cores.begin(), helper_cores.end());
  ASSERT_EQ(job_cores.size(), 3u);
  std::vector<int> others(job_cores.begin() + 1, job_cores.end());
  std::sort(others.begin(), others.end());
  EXPECT_EQ(helper_cores, others);
}

TEST(Elastic, AHelperThatThrowsFailsTheJob) {
  VirtualRun r(2);
  Counter helper_called;
  Job job = sleeping_job("elastic", 0, 1);
  job.max_cores = 2;
  job.run = [&](JobContext& ctx) {
    ctx.lend_cores_to([&](const CoreLease&) {
      helper_called.add(1);
      throw std::runtime_error("helper broke");
    });
    EXPECT_TRUE(helper_called.wait_for(1)) << "the idle core was not lent";
    return JobOutcome{};
  };
  r.runner->add(job);
  const auto summary = r.runner->run(r.options);
  ASSERT_EQ(summary.failed, 1);
  EXPECT_NE(summary.jobs[0].message.find("helper broke"), std::string::npos) << summary.jobs[0].message;
}

TEST(Elastic, AHelperThatReturnsByItselfIsNotLentAnotherCore) {
  VirtualRun r(2);
  Counter calls;
  Job job = sleeping_job("elastic", 0, 1);
  job.max_cores = 2;
  job.run = [&](JobContext& ctx) {
    ctx.lend_cores_to([&](const CoreLease&) { calls.add(1); });  // returns at once, unasked
    EXPECT_TRUE(calls.wait_for(1)) << "the idle core was not lent";
    // Lending the idle core again would call the helper again at once (it
    // did, hundreds of times a run); give it a moment to show it does not.
    EXPECT_FALSE(calls.wait_for(2, std::chrono::milliseconds(300))) << "lent again after its helper returned";
    return JobOutcome{};
  };
  r.runner->add(job);
  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(summary.done, 1);
  EXPECT_EQ(calls.value(), 1);
}

// A helper that sleeps until its core is wanted back, with no polling: the
// runner's ask (here at the job's end) wakes it through the lease's token.
TEST(Elastic, AHelperSleepingUntilAskedBackIsWokenByTheAsk) {
  VirtualRun r(2);
  Counter sleeping;
  std::atomic<bool> woken_in_time{false};
  Job job = sleeping_job("elastic", 0, 1);
  job.max_cores = 2;
  job.run = [&](JobContext& ctx) {
    ctx.lend_cores_to([&](const CoreLease& lease) {
      std::mutex m;
      std::condition_variable asked;
      const std::stop_callback wake(lease.return_token(), [&] {
        std::lock_guard lock(m);
        asked.notify_all();
      });
      std::unique_lock lock(m);
      sleeping.add(1);
      // The deadline only turns a lost wakeup into a failure instead of a hang.
      const auto deadline = std::chrono::steady_clock::now() + packtrain::testing::kPatience;
      woken_in_time = asked.wait_until(lock, deadline, [&] { return lease.should_return(); }) &&
                      std::chrono::steady_clock::now() < deadline;
    });
    EXPECT_TRUE(sleeping.wait_for(1)) << "the idle core was not lent";
    return JobOutcome{};  // the lease is asked back now
  };
  r.runner->add(job);
  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(summary.done, 1);
  EXPECT_TRUE(woken_in_time.load()) << "the ask did not wake the sleeping helper";
}

TEST(CoreLease, ACallbackRunsOnceOnTheAskingThreadOrAtOnceWhenRegisteredAfterTheAsk) {
  CoreLease lease(3);
  int removed = 0, before = 0, after = 0;
  {
    const std::stop_callback gone(lease.return_token(), [&] { ++removed; });
  }
  {
    const std::stop_callback count(lease.return_token(), [&] { ++before; });
    EXPECT_EQ(before, 0);
    EXPECT_FALSE(lease.should_return());
    lease.ask_to_return();
    EXPECT_EQ(before, 1);  // during the ask, on this thread
    lease.ask_to_return();
    EXPECT_EQ(before, 1);  // once
  }
  const std::stop_callback late(lease.return_token(), [&] { ++after; });
  EXPECT_EQ(after, 1);
  EXPECT_EQ(removed, 0) << "a callback gone before the ask ran";
  EXPECT_TRUE(lease.should_return());
}

// Registration racing the ask: whichever comes first, the callback runs
// exactly once and has run when both are over.
TEST(CoreLease, ACallbackRegisteredWhileTheLeaseIsAskedBackRunsExactlyOnce) {
  constexpr int kRounds = 500;
  for (int round = 0; round < kRounds; ++round) {
    CoreLease lease(0);
    std::atomic<int> runs{0};
    std::latch go(2);
    std::thread asker([&] {
      go.arrive_and_wait();
      lease.ask_to_return();
    });
    go.arrive_and_wait();
    const std::stop_callback count(lease.return_token(), [&] { runs.fetch_add(1); });
    asker.join();
    ASSERT_EQ(runs.load(), 1) << "round " << round;
  }
}

TEST(Elastic, RefusesImpossibleLimits) {
  {
    VirtualRun r(2);
    Job job = sleeping_job("backwards", 0, 1, 2);
    job.max_cores = 1;
    r.runner->add(job);
    EXPECT_THROW(r.runner->run(r.options), Error);
  }
  {
    VirtualRun r(2);
    Job job = sleeping_job("greedy", 0);
    job.max_cores = 3;
    r.runner->add(job);
    try {
      r.runner->run(r.options);
      FAIL() << "a job asking for more cores than the node has ran";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("up to 3 cores"), std::string::npos) << e.what();
    }
  }
}
