#include <packtrain/train/memory_watch.hpp>

#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/job_memory.hpp>

#include <c10/core/CPUAllocator.h>

#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace packtrain::train {

namespace {

// What each charged block owes, by address, in shards (a lock each).
class Charges {
 public:
  void add(void* p, std::shared_ptr<JobMemory> job, std::uint64_t bytes) {
    auto& s = shard(p);
    const std::lock_guard lock(s.mutex);
    s.owed.emplace(p, Owed{std::move(job), bytes});
  }
  void settle(void* p) {
    std::shared_ptr<JobMemory> job;
    std::uint64_t bytes = 0;
    {
      auto& s = shard(p);
      const std::lock_guard lock(s.mutex);
      const auto it = s.owed.find(p);
      if (it == s.owed.end()) return;  // allocated outside any job
      job = std::move(it->second.job);
      bytes = it->second.bytes;
      s.owed.erase(it);
    }
    job->release(bytes);
  }

 private:
  struct Owed {
    std::shared_ptr<JobMemory> job;
    std::uint64_t bytes = 0;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<void*, Owed> owed;
  };
  static constexpr std::size_t kShards = 16;
  Shard& shard(void* p) { return shards_[(std::hash<void*>{}(p) >> 6) % kShards]; }
  std::array<Shard, kShards> shards_;
};

// Static lifetime (the allocator outlives every tensor): never destroyed.
Charges& charges() {
  static auto* c = new Charges;
  return *c;
}

c10::Allocator* g_inner = nullptr;
c10::DeleterFnPtr g_inner_delete = nullptr;

void delete_watched(void* p) {
  charges().settle(p);
  g_inner_delete(p);
}

// The same blocks as the wrapped allocator (its context is its data, so
// the raw interface stays), each charged to the job of the allocating thread.
class WatchedCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(std::size_t n) const override {
    const auto& job = current_job_memory();
    if (job && n > 0 && !job->charge(n)) {
      constexpr double kMiB = 1024.0 * 1024.0;
      throw Error("over memory: an allocation of " + std::to_string(static_cast<double>(n) / kMiB) +
                  " MiB would pass the job's budget of " + std::to_string(job->budget() >> 20) + " MiB");
    }
    c10::DataPtr block;
    try {
      block = g_inner->allocate(n);
    } catch (...) {
      if (job && n > 0) job->release(n);
      throw;
    }
    void* data = block.get();
    if (block.get_context() != data) {  // the block frees itself; the charge goes back
      if (job && n > 0) job->release(n);
      throw Error("the CPU allocator's blocks are not their own contexts: the memory watch cannot wrap it");
    }
    if (job && n > 0 && data != nullptr) {
      try {
        charges().add(data, job, n);
      } catch (...) {
        job->release(n);
        throw;  // the block frees itself
      }
    }
    block.release_context();
    return {data, data, &delete_watched, block.device()};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &delete_watched; }
};

}  // namespace

void watch_job_memory() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_inner = c10::GetCPUAllocator();
    g_inner_delete = g_inner->raw_deleter();
    PACKTRAIN_CHECK(g_inner_delete != nullptr, "the CPU allocator has no raw deleter to wrap");
    static WatchedCpuAllocator watched;
    c10::SetCPUAllocator(&watched, /*priority=*/std::numeric_limits<std::uint8_t>::max());
  });
}

}  // namespace packtrain::train
