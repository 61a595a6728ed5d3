#pragma once
// Builds runners over virtual cores for the scheduler tests.
#include <packtrain/scheduler/job_runner.hpp>

#include <chrono>
#include <memory>
#include <numeric>
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

}  // namespace packtrain::testing
