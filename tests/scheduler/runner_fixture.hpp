#pragma once
// Builds runners over virtual cores for the scheduler tests, and the
// counters their jobs wait on (never a sleep: STYLE.md, "Tests").
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/job_runner.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>

namespace packtrain::testing {

// A node of `cores` virtual cores (ids 0..n-1) with `memory_mb` of memory.
inline NodeResources virtual_node(int cores, std::uint64_t memory_mb = 1 << 20) {
  NodeResources node;
  node.cores.resize(cores);
  std::iota(node.cores.begin(), node.cores.end(), 0);
  node.memory_mb = memory_mb;
  return node;
}

// The message of the packtrain::Error `fn` throws; empty when it throws none.
inline std::string thrown_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// An executor (unpinned, so virtual cores work on any machine) and a runner.
struct VirtualRun {
  explicit VirtualRun(int cores, std::uint64_t memory_mb = 1 << 20)
      : node(virtual_node(cores, memory_mb)),
        executor(std::make_unique<Executor>(node.cores, ExecutorOptions{.pin = false})),
        runner(std::make_unique<JobRunner>(*executor, node)) {}
  NodeResources node;
  std::unique_ptr<Executor> executor;
  std::unique_ptr<JobRunner> runner;
  RunOptions options{.pin_threads = false};
};

// How long a test waits for something that should happen at once: long
// enough for a machine loaded by two builds, short enough to fail a hang.
inline constexpr std::chrono::seconds kPatience{20};

// A count that threads raise and lower, and others wait on.
//
//   Counter running;
//   ... in a job: running.add(1);
//   ASSERT_TRUE(running.wait_for(4)) << "never 4 at once";
class Counter {
 public:
  // Returns the new count.
  int add(int n = 1) {
    int now;
    {
      std::lock_guard lock(mutex_);
      now = value_ += n;
    }
    changed_.notify_all();
    return now;
  }
  int value() const {
    std::lock_guard lock(mutex_);
    return value_;
  }
  // True once the count is at least `target`; false if kPatience passed first.
  bool wait_for(int target, std::chrono::milliseconds patience = kPatience) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, patience, [&] { return value_ >= target; });
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  int value_ = 0;
};

// A job that sleeps `ms` milliseconds.
inline Job sleeping_job(const std::string& name, int ms, double cost = 1.0, int cores = 1) {
  Job job;
  job.name = name;
  job.spec = {{"name", name}};
  job.cost = cost;
  job.cores = cores;
  job.run = [ms](JobContext&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return JobOutcome{};
  };
  return job;
}

// An elastic job of 2 cores (its second core runs its helper from the
// start), placed first, beside two jobs of 20 ms on 3 virtual cores: the
// job's record and how many of the two others finished. A run that has not
// ended within 60 s aborts the test binary (a hung run cannot be stopped or
// joined), saying `hang`.
struct BesideTwoOthers {
  std::size_t jobs = 0;  // records in the run's summary
  JobRecord job;
  int others_done = 0;
};
inline BesideTwoOthers run_beside_two_others(const std::string& name, std::function<JobOutcome(JobContext&)> run,
                                             const char* hang) {
  VirtualRun r(3);
  Job job;
  job.name = name;
  job.spec = {{"name", name}};
  job.cores = 2;
  job.max_cores = 2;
  job.cost = 100;
  job.run = std::move(run);
  r.runner->add(job);
  r.runner->add(sleeping_job("other-1", 20));
  r.runner->add(sleeping_job("other-2", 20));
  auto running = std::async(std::launch::async, [&] { return r.runner->run(r.options); });
  if (running.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    std::fprintf(stderr, "the run did not end within 60 s: %s\n", hang);
    std::abort();
  }
  BesideTwoOthers out;
  const auto summary = running.get();
  out.jobs = summary.jobs.size();
  for (const auto& record : summary.jobs) {
    if (record.name == name) out.job = record;
    else out.others_done += record.status == JobStatus::done ? 1 : 0;
  }
  return out;
}

}  // namespace packtrain::testing
