#pragma once
// A job's memory budget (Job::memory_mb), watched where the job allocates.
//
// Jobs are threads of one process, and cgroup v2's memory controller is a
// domain controller (it cannot hold threads of one process in different
// groups), so a job's memory cannot be fenced by the kernel. Instead, the
// runner gives each job a JobMemory and marks the job's threads with it
// (its own and its lent cores', JobMemoryScope); an allocator that knows
// the mark (LibTorch's CPU allocator, train/memory_watch.hpp) charges every
// allocation to the job of the thread that makes it, and refuses the one
// that would pass the budget, so the job fails ("over memory") long before
// the node's OOM killer would end every job of the process. Memory freed on
// another thread is credited to the job that was charged.
//
//   auto memory = std::make_shared<JobMemory>(/*budget_bytes=*/512 << 20);
//   { JobMemoryScope scope(memory); ... allocations charge `memory` ... }
//   memory->peak();  // the most the job held at once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace packtrain {

class JobMemory {
 public:
  explicit JobMemory(std::uint64_t budget_bytes) : budget_(budget_bytes) {}  // 0: counted, never refused
  // Charges `bytes`; false, charging nothing, when they would pass the
  // budget (and remembers the refusal). Thread-safe.
  bool charge(std::uint64_t bytes);
  void release(std::uint64_t bytes);
  std::uint64_t budget() const { return budget_; }
  std::uint64_t in_use() const { return in_use_.load(std::memory_order_relaxed); }
  std::uint64_t peak() const { return peak_.load(std::memory_order_relaxed); }
  // The largest allocation refused (0: none was).
  std::uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

 private:
  const std::uint64_t budget_;
  std::atomic<std::uint64_t> in_use_{0};
  std::atomic<std::uint64_t> peak_{0};
  std::atomic<std::uint64_t> refused_{0};
};

// The job the calling thread works for; null outside jobs.
const std::shared_ptr<JobMemory>& current_job_memory();

// Marks the calling thread as working for `memory`'s job while it lives
// (the mark it replaces comes back after).
class JobMemoryScope {
 public:
  explicit JobMemoryScope(std::shared_ptr<JobMemory> memory);
  ~JobMemoryScope();
  JobMemoryScope(const JobMemoryScope&) = delete;
  JobMemoryScope& operator=(const JobMemoryScope&) = delete;

 private:
  std::shared_ptr<JobMemory> previous_;
};

}  // namespace packtrain
