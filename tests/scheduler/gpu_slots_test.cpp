// GPU slots and their memory, with simulated GPUs (this build machine has
// none): the ledger's bookkeeping, the placement's choice of GPU, how a
// run's GPUs are sized (choose_gpus), and the runner placing jobs in slots
// and retrying a job whose GPU ran out of memory. What runs on a real GPU
// is tested under `ctest -L gpu` where CUDA LibTorch is found.
#include "runner_fixture.hpp"

#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/placement.hpp>
#include <packtrain/scheduler/resource_ledger.hpp>
#include <packtrain/scheduler/resources.hpp>

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

using namespace packtrain;
using packtrain::testing::Counter;
using packtrain::testing::kPatience;
using packtrain::testing::error_of;
using packtrain::testing::VirtualRun;

namespace {

GpuDevice gpu(int index, std::uint64_t memory_mb, int slots) {
  return {.index = index, .name = "sim", .memory_mb = memory_mb, .slots = slots};
}

Demand slot(std::uint64_t gpu_memory_mb, int cores = 1) {
  return {.cores = cores, .gpus = 1, .gpu_memory_mb = gpu_memory_mb};
}

// `r` over simulated GPUs.
void give_gpus(VirtualRun& r, std::vector<GpuDevice> gpus) {
  r.node.gpus = std::move(gpus);
  r.runner = std::make_unique<JobRunner>(*r.executor, r.node);
}

// The messages of a run's failed and retried events: "failed: ...", "retried: ...".
struct EndMessages : EventSink {
  std::mutex mutex;
  std::vector<std::string> lines;
  void on_event(const JobEvent& e) override {
    if (e.kind != EventKind::failed && e.kind != EventKind::retried) return;
    std::lock_guard lock(mutex);
    lines.push_back(std::string(e.kind == EventKind::failed ? "failed: " : "retried: ") + e.message);
  }
};

}  // namespace

TEST(GpuLedger, SlotsAndDeviceMemoryAreHeldPerGpuAndFreedOnRelease) {
  ResourceLedger ledger(8, {gpu(0, 1000, 2), gpu(1, 1000, 2)}, 1 << 20);
  EXPECT_EQ(ledger.gpu_count(), 2);
  EXPECT_EQ(ledger.free_gpus(), 4);
  // Spread: the GPU with the most free memory (ties: the lower) takes each job.
  ledger.hold(1, {0}, slot(600));
  EXPECT_EQ(ledger.seat_of(1).gpu, 0);
  EXPECT_EQ(ledger.seat_of(1).slot, 0);
  ledger.hold(2, {1}, slot(300));
  EXPECT_EQ(ledger.seat_of(2).gpu, 1);
  ledger.hold(3, {2}, slot(300));
  EXPECT_EQ(ledger.seat_of(3).gpu, 1);  // 700 free there against 400 on GPU 0
  EXPECT_EQ(ledger.seat_of(3).slot, 1);
  EXPECT_EQ(ledger.gpu_memory_in_use_mb(0), 600u);
  EXPECT_EQ(ledger.gpu_memory_in_use_mb(1), 600u);
  // One slot left (GPU 0, 400 MiB free): 500 MiB does not fit although a slot is free.
  EXPECT_EQ(ledger.free_gpus(), 1);
  EXPECT_FALSE(ledger.fits(slot(500)));
  EXPECT_TRUE(ledger.fits(slot(400)));
  EXPECT_TRUE(ledger.fits({.cores = 1}));  // CPU jobs do not care
  ledger.release(1);
  EXPECT_EQ(ledger.gpu_memory_in_use_mb(0), 0u);
  EXPECT_TRUE(ledger.fits(slot(900)));
  EXPECT_FALSE(ledger.fits(slot(1001)));
  // The freed slot number is taken again first.
  ledger.hold(4, {0}, slot(100), /*gpu=*/0);
  EXPECT_EQ(ledger.seat_of(4).slot, 0);
  EXPECT_EQ(ledger.seat_of(2).gpu, 1);
}

TEST(GpuLedger, UnaccountedGpusCountSlotsOnly) {
  ResourceLedger ledger(4, {gpu(0, 0, 2)}, 1 << 20);
  ledger.hold(1, {0}, slot(1 << 30));
  EXPECT_TRUE(ledger.fits(slot(1 << 30)));
  ledger.hold(2, {1}, slot(1 << 30));
  EXPECT_FALSE(ledger.fits(slot(0)));
}

TEST(GpuLedger, ARetiredSlotIsTakenOnlyOnceItsJobEndsAndTheLastSlotStays) {
  ResourceLedger ledger(4, {gpu(0, 1000, 2)}, 1 << 20);
  ledger.hold(1, {0}, slot(100));
  ledger.hold(2, {1}, slot(100));
  EXPECT_TRUE(ledger.retire_slot(0));
  EXPECT_EQ(ledger.gpu_slots(0), 1);
  EXPECT_EQ(ledger.free_gpus(), 0);
  ledger.release(1);
  EXPECT_EQ(ledger.free_gpus(), 0) << "two jobs in one slot's GPU";
  ledger.release(2);
  EXPECT_EQ(ledger.free_gpus(), 1);
  EXPECT_FALSE(ledger.retire_slot(0));
  EXPECT_EQ(ledger.gpu_slots(0), 1);
}

TEST(GpuPlacement, JobsGoToTheGpuWithTheMostFreeMemoryAndWaitWhenNoneFits) {
  ResourceLedger ledger(8, {gpu(0, 1000, 4), gpu(1, 2000, 4)}, 1 << 20);
  const std::vector<ReadyJob> ready = {
      {.job = 0, .demand = slot(1500), .cost = 9},  // only GPU 1 has the memory
      {.job = 1, .demand = slot(600), .cost = 8},   // GPU 0 (1000 free) beats GPU 1 (500 left)
      {.job = 2, .demand = slot(600), .cost = 7},   // 400 and 500 left: waits
      {.job = 3, .demand = slot(400), .cost = 6},   // GPU 1 (500 free)
      {.job = 4, .demand = {.cores = 1}, .cost = 5},
  };
  const auto decisions = place(ledger, ready);
  std::map<int, int> gpu_of;
  for (const auto& d : decisions) gpu_of[d.job] = d.gpu;
  EXPECT_EQ(gpu_of, (std::map<int, int>{{0, 1}, {1, 0}, {3, 1}, {4, -1}}));
  // Carried out in the ledger, the decisions fit exactly.
  for (const auto& d : decisions) ledger.hold(d.job, d.workers, ready[d.job].demand, d.gpu);
  EXPECT_EQ(ledger.gpu_memory_in_use_mb(0), 600u);
  EXPECT_EQ(ledger.gpu_memory_in_use_mb(1), 1900u);
}

TEST(GpuPlacement, MixedPlacementAccountsTheSlotsMemory) {
  ResourceLedger ledger(1, {gpu(0, 1000, 4)}, 1 << 20);
  // Both would rather be on the GPU; the second's memory does not fit beside the first, so it takes the core.
  const std::vector<ReadyChoice> ready = {
      {.job = 0, .cost = 9, .cpu = {.cores = 1}, .cpu_seconds = 90, .gpu_seconds = 9, .gpu_memory_mb = 700},
      {.job = 1, .cost = 8, .cpu = {.cores = 1}, .cpu_seconds = 10, .gpu_seconds = 8, .gpu_memory_mb = 700},
  };
  const auto decisions = place_mixed(ledger, ready, {});
  ASSERT_EQ(decisions.size(), 2u);
  EXPECT_TRUE(decisions[0].gpu);
  EXPECT_EQ(decisions[0].device, 0);
  EXPECT_FALSE(decisions[1].gpu);
  EXPECT_EQ(decisions[1].workers, std::vector<int>{0});
}

TEST(ChooseGpus, SlotsComeFromFreeMemoryAndTheJobsSizeUpToTheMost) {
  const std::vector<GpuDevice> found = {gpu(0, 10000, 1), gpu(1, 2000, 1)};
  // 9000 usable / 2000 a job: 4 slots; 1800 / 2000: none fit, an error.
  EXPECT_NE(error_of([&] { choose_gpus(found, {.gpus = -1}, 2000); }).find("GPU 1 (sim) has 1800 MiB free for jobs"),
            std::string::npos);
  auto one = choose_gpus(found, {.gpus = 1}, 2000);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].slots, 4);
  EXPECT_EQ(one[0].memory_mb, 9000u);
  // --gpu-memory-per-job wins over the footprint; never more than kMostGpuSlots.
  EXPECT_EQ(choose_gpus(found, {.gpus = 1, .memory_per_job_mb = 100}, 2000)[0].slots, kMostGpuSlots);
  // Nothing known of the job's size: one slot, memory not accounted.
  const auto unknown = choose_gpus(found, {.gpus = -1});
  ASSERT_EQ(unknown.size(), 2u);
  EXPECT_EQ(unknown[1].slots, 1);
  EXPECT_EQ(unknown[1].memory_mb, 0u);
  // Given slots are kept, unless their jobs cannot fit.
  EXPECT_EQ(choose_gpus(found, {.gpus = -1, .slots = 3})[1].slots, 3);
  EXPECT_NE(error_of([&] { choose_gpus(found, {.gpus = 1, .slots = 5}, 2000); })
                .find("--gpu-slots 5 at 2000 MiB a job needs 10000 MiB but GPU 0 (sim) has 9000 MiB free"),
            std::string::npos);
}

TEST(ChooseGpus, ImpossibleRequestsNameTheirNumbers) {
  const std::vector<GpuDevice> none;
  EXPECT_NE(error_of([&] { choose_gpus(none, {.gpus = 1}); }).find("--gpus 1 asks for more GPUs than the 0"),
            std::string::npos);
  EXPECT_TRUE(choose_gpus(none, {.gpus = -1}).empty());
  EXPECT_TRUE(choose_gpus(none, {}).empty());
  EXPECT_NE(error_of([&] { choose_gpus({gpu(0, 1000, 1)}, {.gpus = 1, .slots = 65}); }).find("--gpu-slots must be"),
            std::string::npos);
}

// The runner over simulated GPUs: which GPU and slot each job got, as the
// job saw it (JobContext::gpu), and never more jobs on a GPU than its slots.
TEST(GpuRunner, JobsRunInSlotsOfTheirGpuWithinItsMemoryAndCpuJobsBeside) {
  VirtualRun r(6);
  give_gpus(r, {gpu(3, 1000, 2), gpu(5, 1000, 2)});  // CUDA ordinals 3 and 5
  std::mutex mutex;
  std::map<std::string, std::pair<int, int>> seen;  // job -> (gpu, slot)
  std::map<int, std::set<int>> slots_in_use;        // gpu -> slots now
  bool overlap = false;
  Counter running;
  for (int i = 0; i < 8; ++i) {
    auto job = packtrain::testing::sleeping_job("gpu-" + std::to_string(i), 0, 10 - i);
    job.gpus = 1;
    job.gpu_memory_mb = 450;  // two fit a GPU
    job.run = [&, name = job.name](JobContext& ctx) {
      {
        std::lock_guard lock(mutex);
        seen[name] = {ctx.gpu(), ctx.gpu_slot()};
        overlap = overlap || !slots_in_use[ctx.gpu()].insert(ctx.gpu_slot()).second ||
                  slots_in_use[ctx.gpu()].size() > 2;
      }
      // The first four wait until four run at once: two GPUs of two slots each.
      if (running.add(1) <= 4) {
        EXPECT_TRUE(running.wait_for(4, kPatience));
      }
      {
        std::lock_guard lock(mutex);
        slots_in_use[ctx.gpu()].erase(ctx.gpu_slot());
      }
      return JobOutcome{};
    };
    r.runner->add(job);
  }
  auto cpu = packtrain::testing::sleeping_job("cpu", 0, 1);
  bool cpu_had_no_gpu = false;
  cpu.run = [&](JobContext& ctx) {
    cpu_had_no_gpu = ctx.gpu() == -1 && ctx.gpu_slot() == -1;
    return JobOutcome{};
  };
  r.runner->add(cpu);
  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(summary.done, 9);
  EXPECT_FALSE(overlap);
  EXPECT_TRUE(cpu_had_no_gpu);
  ASSERT_EQ(seen.size(), 8u);
  std::set<int> gpus;
  for (const auto& [name, s] : seen) {
    gpus.insert(s.first);
    EXPECT_TRUE(s.second == 0 || s.second == 1) << name;
  }
  EXPECT_EQ(gpus, (std::set<int>{3, 5}));
}

TEST(GpuRunner, OutOfGpuMemoryRetriesWithASlotFewerThenOnTheCpuAndRecordsWhy) {
  VirtualRun r(4);
  give_gpus(r, {gpu(0, 4000, 2)});
  std::mutex mutex;
  std::vector<std::pair<int, int>> attempts;  // (gpu, slot) of each attempt of "big"
  auto big = packtrain::testing::sleeping_job("big", 0, 5);
  big.gpus = 1;
  big.gpu_memory_mb = 1000;
  big.cpu_fallback = true;
  big.run = [&](JobContext& ctx) -> JobOutcome {
    {
      std::lock_guard lock(mutex);
      attempts.emplace_back(ctx.gpu(), ctx.gpu_slot());
    }
    if (ctx.gpu() >= 0) throw GpuOutOfMemory("CUDA out of memory: tried to allocate 2.00 GiB");
    return JobOutcome{};
  };
  r.runner->add(big);
  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(summary.done, 1);
  EXPECT_EQ(summary.failed, 0);
  EXPECT_EQ(summary.gpu_out_of_memory, 2);
  EXPECT_EQ(summary.retried, 2);
  // Two slots, then one (retired), then the CPU: three attempts, the last without a GPU.
  ASSERT_EQ(attempts.size(), 3u);
  EXPECT_EQ(attempts[0].first, 0);
  EXPECT_EQ(attempts[1].first, 0);
  EXPECT_EQ(attempts[2].first, -1);
  EXPECT_EQ(summary.jobs[0].attempts, 3);
}

TEST(GpuRunner, OutOfGpuMemoryInTheLastSlotWithoutCpuFallbackFailsTheJobAlone) {
  VirtualRun r(2);
  give_gpus(r, {gpu(0, 4000, 1)});
  EndMessages sink;
  r.options.sinks = {&sink};
  auto big = packtrain::testing::sleeping_job("big", 0, 5);
  big.gpus = 1;
  big.run = [](JobContext&) -> JobOutcome { throw GpuOutOfMemory("CUDA out of memory"); };
  r.runner->add(big);
  auto other = packtrain::testing::sleeping_job("other", 0, 1);
  r.runner->add(other);
  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(summary.failed, 1);
  EXPECT_EQ(summary.done, 1);
  EXPECT_EQ(summary.gpu_out_of_memory, 0);
  EXPECT_EQ(sink.lines, std::vector<std::string>{"failed: CUDA out of memory"});
}

TEST(GpuRunner, AnOutOfMemoryRetryIsRecordedInTheAttemptsMessage) {
  VirtualRun r(2);
  give_gpus(r, {gpu(7, 4000, 3)});
  EndMessages sink;
  r.options.sinks = {&sink};
  std::atomic<int> calls{0};
  auto job = packtrain::testing::sleeping_job("once", 0, 5);
  job.gpus = 1;
  job.run = [&](JobContext&) -> JobOutcome {
    if (calls.fetch_add(1) == 0) throw GpuOutOfMemory("CUDA out of memory\nmore text");
    return JobOutcome{};
  };
  r.runner->add(job);
  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(summary.done, 1);
  EXPECT_EQ(sink.lines, std::vector<std::string>{"retried: out of memory on GPU 7 (slot 0): retried with 2 slot(s) on "
                                                 "GPU 7; CUDA out of memory"});
}

TEST(GpuRunner, ImpossibleGpuJobsAreRefusedBeforeTheRun) {
  VirtualRun r(2);
  give_gpus(r, {gpu(0, 1000, 2)});
  auto fat = packtrain::testing::sleeping_job("fat", 0);
  fat.gpus = 1;
  fat.gpu_memory_mb = 1001;
  r.runner->add(fat);
  EXPECT_NE(error_of([&] { r.runner->run(r.options); }).find("needs 1001 MiB of GPU memory but this node's GPUs have at most 1000 MiB"),
            std::string::npos);
  VirtualRun two(2);
  give_gpus(two, {gpu(0, 1000, 2)});
  auto pair = packtrain::testing::sleeping_job("pair", 0);
  pair.gpus = 2;
  two.runner->add(pair);
  EXPECT_NE(error_of([&] { two.runner->run(two.options); }).find("a job takes 0 or 1"), std::string::npos);
}
