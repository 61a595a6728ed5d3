#include <packtrain/scheduler/job_memory.hpp>

#include <utility>

namespace packtrain {

namespace {
thread_local std::shared_ptr<JobMemory> t_current;
}  // namespace

bool JobMemory::charge(std::uint64_t bytes) {
  std::uint64_t now = in_use_.load(std::memory_order_relaxed);
  do {
    if (budget_ > 0 && now + bytes > budget_) {
      std::uint64_t largest = refused_.load(std::memory_order_relaxed);
      while (bytes > largest && !refused_.compare_exchange_weak(largest, bytes, std::memory_order_relaxed)) {
      }
      return false;
    }
  } while (!in_use_.compare_exchange_weak(now, now + bytes, std::memory_order_relaxed));
  const std::uint64_t held = now + bytes;
  std::uint64_t peak = peak_.load(std::memory_order_relaxed);
  while (held > peak && !peak_.compare_exchange_weak(peak, held, std::memory_order_relaxed)) {
  }
  return true;
}

void JobMemory::release(std::uint64_t bytes) { in_use_.fetch_sub(bytes, std::memory_order_relaxed); }

const std::shared_ptr<JobMemory>& current_job_memory() { return t_current; }

JobMemoryScope::JobMemoryScope(std::shared_ptr<JobMemory> memory) : previous_(std::exchange(t_current, std::move(memory))) {}

JobMemoryScope::~JobMemoryScope() { t_current = std::move(previous_); }

}  // namespace packtrain
