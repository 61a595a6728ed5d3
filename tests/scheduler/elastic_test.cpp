// Elastic jobs: cores lent while idle, taken back for a waiting job.
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/job_runner.hpp>

#include "scheduler/runner_fixture.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

using namespace packtrain;
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

// An elastic job whose helpers idle until asked back; its own thread waits
// until `until` is true. Counts helpers at once and the cores they got.
struct ElasticProbe {
  std::atomic<int> helpers_now{0}, helpers_peak{0};
  std::atomic<bool> until{false};
  std::mutex m;
  std::set<int> lent_cores;

  Job job(const std::string& name, int min_cores, int max_cores, Occupancy& occ) {
    Job job;
    job.name = name;
    job.spec = {{"name", name}};
    job.cores = min_cores;
    job.max_cores = max_cores;
    job.cost = 1000;  // starts first
    job.run = [this, &occ](JobContext& ctx) {
      occ.enter();
      ctx.lend_cores_to([this, &occ](const CoreLease& lease) {
        occ.enter();
        {
          std::lock_guard lock(m);
          lent_cores.insert(lease.core());
        }
        const int n = helpers_now.fetch_add(1) + 1;
        int p = helpers_peak.load();
        while (n > p && !helpers_peak.compare_exchange_weak(p, n)) {
        }
        while (!lease.should_return()) std::this_thread::sleep_for(1ms);
        helpers_now.fetch_sub(1);
        occ.leave();
      });
      while (!until.load()) std::this_thread::sleep_for(1ms);
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
  r.runner->add(probe.job("elastic", 1, kCores, occ));
  const auto first = r.runner->add(occupying(sleeping_job("first", 80, 10), occ));
  // `second` needs two cores and becomes ready when `first` ends, while two
  // of the idle cores are lent to the elastic job: one must come back.
  std::atomic<int> helpers_while_second{-1};
  std::thread closer;
  Job second = sleeping_job("second", 0, 5, 2);
  second.after = {first};
  second.run = [&](JobContext& ctx) {
    EXPECT_EQ(ctx.threads(), 2);
    helpers_while_second.store(probe.helpers_now.load());
    std::this_thread::sleep_for(30ms);
    // Once it ends, the tail: every other core goes to the elastic job,
    // which then ends.
    closer = std::thread([&] {
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (probe.helpers_now.load() < kCores - 1 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
      probe.until.store(true);
    });
    return JobOutcome{};
  };
  r.runner->add(occupying(second, occ));

  const auto summary = r.runner->run(r.options);
  closer.join();
  EXPECT_EQ(summary.done, 3);
  EXPECT_LE(occ.peak.load(), kCores) << "more threads ran than there are cores";
  EXPECT_LE(summary.peak_cores_in_use, kCores);
  // `second` got its two cores: the one `first` left and one the elastic job gave back.
  EXPECT_EQ(helpers_while_second.load(), 1);
  // At the tail the elastic job had every core.
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
  VirtualRun r(2);
  Occupancy occ;
  ElasticProbe probe;
  r.runner->add(probe.job("elastic", 1, 2, occ));
  // Ten short one-core jobs: the second core runs them one after the other,
  // and is lent only once they are all done.
  std::atomic<int> lent_during{0};
  std::atomic<int> left{10};
  for (int i = 0; i < 10; ++i) {
    Job job = sleeping_job("short" + std::to_string(i), 0, 1);
    job.run = [&](JobContext&) {
      std::this_thread::sleep_for(5ms);
      lent_during.fetch_add(probe.helpers_now.load());
      if (left.fetch_sub(1) == 1) {
        // The last one: give the lender a moment, then let the elastic job end.
        std::thread([&] {
          std::this_thread::sleep_for(50ms);
          probe.until.store(true);
        }).detach();
      }
      return JobOutcome{};
    };
    r.runner->add(occupying(job, occ));
  }
  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(summary.done, 11);
  EXPECT_EQ(lent_during.load(), 0);
  EXPECT_EQ(probe.helpers_peak.load(), 1);  // lent at the tail
  EXPECT_LE(occ.peak.load(), 2);
}

TEST(Elastic, AJobsOwnCoresRunItsHelperUntilItEnds) {
  VirtualRun r(3);
  std::mutex m;
  std::vector<int> helper_cores;
  std::vector<int> job_cores;
  std::atomic<int> returned{0};
  Job job = sleeping_job("wide", 0, 1, 3);  // three cores, not elastic
  job.run = [&](JobContext& ctx) {
    job_cores = ctx.cores();
    ctx.lend_cores_to([&](const CoreLease& lease) {
      {
        std::lock_guard lock(m);
        helper_cores.push_back(lease.core());
      }
      while (!lease.should_return()) std::this_thread::sleep_for(1ms);
      returned.fetch_add(1);
    });
    std::this_thread::sleep_for(50ms);
    return JobOutcome{};
  };
  r.runner->add(job);
  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(summary.done, 1);
  // The runner waited for both helpers before it recorded the job's end.
  EXPECT_EQ(returned.load(), 2);
  std::sort(helper_cores.begin(), helper_cores.end());
  ASSERT_EQ(job_cores.size(), 3u);
  std::vector<int> others(job_cores.begin() + 1, job_cores.end());
  std::sort(others.begin(), others.end());
  EXPECT_EQ(helper_cores, others);
}

TEST(Elastic, AHelperThatThrowsFailsTheJob) {
  VirtualRun r(2);
  Job job = sleeping_job("elastic", 0, 1);
  job.max_cores = 2;
  job.run = [](JobContext& ctx) {
    ctx.lend_cores_to([](const CoreLease&) { throw std::runtime_error("helper broke"); });
    std::this_thread::sleep_for(50ms);
    return JobOutcome{};
  };
  r.runner->add(job);
  const auto summary = r.runner->run(r.options);
  ASSERT_EQ(summary.failed, 1);
  EXPECT_NE(summary.jobs[0].message.find("helper broke"), std::string::npos) << summary.jobs[0].message;
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
