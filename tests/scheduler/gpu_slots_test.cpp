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

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

using namespace packtrain;
using packtrain::testing::Counter;
using packtrain::testing::kPatience;
using packtrain::testing::thrown_error;
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

TEST(GpuLedger, AGpuNamedByThePlacementIsTheOneHeld) {
  ResourceLedger ledger(4, {gpu(0, 1000, 2), gpu(1, 1000, 2)}, 1 << 20);
  EXPECT_EQ(pick_gpu(ledger.gpu_free(), slot(100)), 0);
  ledger.hold(1, {0}, slot(100), /*gpu=*/1);
  EXPECT_EQ(ledger.seat_of(1).gpu, 1);
  EXPECT_EQ(ledger.gpu_memory_in_use_mb(1), 100u);
  EXPECT_EQ(ledger.gpu_jobs(1), 1);
  EXPECT_EQ(ledger.gpu_jobs(0), 0);
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
  EXPECT_NE(thrown_error([&] { choose_gpus(found, {.gpus = -1}, 2000); }).find("GPU 1 (sim) has 1800 MiB free for jobs"),
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
  EXPECT_NE(thrown_error([&] { choose_gpus(found, {.gpus = 1, .slots = 5}, 2000); })
                .find("--gpu-slots 5 at 2000 MiB a job needs 10000 MiB but GPU 0 (sim) has 9000 MiB free"),
            std::string::npos);
}

TEST(ChooseGpus, ImpossibleRequestsNameTheirNumbers) {
  const std::vector<GpuDevice> none;
  EXPECT_NE(thrown_error([&] { choose_gpus(none, {.gpus = 1}); }).find("--gpus 1 asks for more GPUs than the 0"),
            std::string::npos);
  EXPECT_TRUE(choose_gpus(none, {.gpus = -1}).empty());
  EXPECT_TRUE(choose_gpus(none, {}).empty());
  EXPECT_NE(thrown_error([&] { choose_gpus({gpu(0, 1000, 1)}, {.gpus = 1, .slots = 65}); }).find("--gpu-slots must be"),
            std::string::npos);
  EXPECT_NE(thrown_error([&] { choose_gpus({gpu(0, 1000, 1)}, {.gpus = -2}); }).find("--gpus must be 'all' or a count"),
            std::string::npos);
}

TEST(ChooseGpus, GivenSlotsThatExactlyFitAreAccountedAndAGpuOfUnknownMemoryIsNot) {
  // 10000 MiB free: 9000 usable; 3 slots of 3000 fit exactly.
  const auto exact = choose_gpus({gpu(0, 10000, 1)}, {.gpus = 1, .slots = 3, .memory_per_job_mb = 3000});
  ASSERT_EQ(exact.size(), 1u);
  EXPECT_EQ(exact[0].slots, 3);
  EXPECT_EQ(exact[0].memory_mb, 9000u);
  EXPECT_NE(thrown_error([&] { choose_gpus({gpu(0, 10000, 1)}, {.gpus = 1, .slots = 3, .memory_per_job_mb = 3001}); })
                .find("--gpu-slots 3 at 3001 MiB a job needs 9003 MiB"),
            std::string::npos);
  const auto unknown = choose_gpus({gpu(0, 0, 1)}, {.gpus = 1, .slots = 2, .memory_per_job_mb = 3000});
  EXPECT_EQ(unknown[0].slots, 2);
  EXPECT_EQ(unknown[0].memory_mb, 0u);
}

// The runner over simulated GPUs: which GPU and slot each job got, as the
// job saw it (JobContext::gpu), and never more jobs on a GPU than its
// memory holds (two, though it has four slots).
TEST(GpuRunner, JobsRunInSlotsOfTheirGpuWithinItsMemoryAndCpuJobsBeside) {
  VirtualRun r(6);
  give_gpus(r, {gpu(3, 1000, 4), gpu(5, 1000, 4)});  // CUDA ordinals 3 and 5
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
      // The first four wait until four run at once: two GPUs with memory for two each.
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

// A job that runs out of GPU memory beside another: its GPU gives up a
// slot, once, and from then on takes one job at a time.
TEST(GpuRunner, OutOfMemoryBesideAnotherJobRetiresASlotAndLaterJobsRunOneAtATime) {
  VirtualRun r(4);
  give_gpus(r, {gpu(0, 4000, 2)});
  struct Retried : EndMessages {
    Counter count;
    void on_event(const JobEvent& e) override {
      EndMessages::on_event(e);
      if (e.kind == EventKind::retried) count.add(1);
    }
  } sink;
  r.options.sinks = {&sink};
  Counter on_gpu, started;
  std::atomic<bool> retired{false};
  std::atomic<int> most_after = 0;  // the most jobs on the GPU at once, seen by jobs started after the retry
  std::atomic<int> a_attempts{0};
  auto gpu_job = [&](const std::string& name, double cost, std::function<void()> body) {
    auto job = packtrain::testing::sleeping_job(name, 0, cost);
    job.gpus = 1;
    job.run = [&, body](JobContext&) -> JobOutcome {
      const bool after = retired;  // before a (waiting on `started`) can set it
      const int now = on_gpu.add(1);
      if (after) most_after = std::max(most_after.load(), now);
      started.add(1);
      body();
      on_gpu.add(-1);
      return JobOutcome{};
    };
    return job;
  };
  r.runner->add(gpu_job("a", 9, [&] {
    if (a_attempts.fetch_add(1) > 0) return;
    EXPECT_TRUE(started.wait_for(2, kPatience));  // b runs beside it
    on_gpu.add(-1);
    retired = true;
    throw GpuOutOfMemory("CUDA out of memory");
  }));
  // b ends once a's retry is recorded: the slot is retired while b still holds one.
  r.runner->add(gpu_job("b", 8, [&] { EXPECT_TRUE(sink.count.wait_for(1, kPatience)); }));
  r.runner->add(gpu_job("c", 7, [] {}));
  r.runner->add(gpu_job("d", 6, [] {}));
  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(summary.done, 4);
  EXPECT_EQ(summary.gpu_out_of_memory, 1);
  EXPECT_EQ(a_attempts.load(), 2);
  EXPECT_EQ(most_after.load(), 1) << "two jobs on the GPU after its slot was retired";
  EXPECT_EQ(sink.lines, std::vector<std::string>{"retried: out of memory on GPU 0 (slot 0): retried with 1 slot(s) on "
                                                 "GPU 0; CUDA out of memory"});
}

TEST(GpuRunner, OutOfGpuMemoryInTheLastSlotWithoutCpuFallbackFailsTheJobAlone) {
  VirtualRun r(2);
  give_gpus(r, {gpu(0, 4000, 1)});
  EndMessages sink;
  r.options.sinks = {&sink};
  auto big = packtrain::testing::sleeping_job("big", 0, 5);
  big.gpus = 1;
  big.retries = 1;  // spent as on any failure: no slot fewer can help it
  big.run = [](JobContext&) -> JobOutcome { throw GpuOutOfMemory("CUDA out of memory"); };
  r.runner->add(big);
  auto other = packtrain::testing::sleeping_job("other", 0, 1);
  r.runner->add(other);
  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(summary.failed, 1);
  EXPECT_EQ(summary.done, 1);
  EXPECT_EQ(summary.gpu_out_of_memory, 0);
  EXPECT_EQ(sink.lines, (std::vector<std::string>{"retried: CUDA out of memory", "failed: CUDA out of memory"}));
  EXPECT_EQ(summary.jobs[0].attempts, 2);
}

// Alone on its GPU, a slot fewer cannot help: the job goes to its cores.
TEST(GpuRunner, AJobAloneOnItsGpuThatRunsOutOfMemoryRunsOnItsCoresAndSaysWhy) {
  VirtualRun r(2);
  give_gpus(r, {gpu(7, 4000, 3)});
  EndMessages sink;
  r.options.sinks = {&sink};
  std::mutex mutex;
  std::vector<int> attempts_gpu;
  auto job = packtrain::testing::sleeping_job("once", 0, 5);
  job.gpus = 1;
  job.cpu_fallback = true;
  job.run = [&](JobContext& ctx) -> JobOutcome {
    {
      std::lock_guard lock(mutex);
      attempts_gpu.push_back(ctx.gpu());
    }
    if (ctx.gpu() >= 0) throw GpuOutOfMemory("CUDA out of memory\nmore text");
    return JobOutcome{};
  };
  r.runner->add(job);
  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(summary.done, 1);
  EXPECT_EQ(summary.gpu_out_of_memory, 1);
  EXPECT_EQ(attempts_gpu, (std::vector<int>{7, -1}));
  EXPECT_EQ(sink.lines, std::vector<std::string>{"retried: out of memory on GPU 7 (slot 0): retried on its CPU cores; "
                                                 "CUDA out of memory"});
}

TEST(GpuRunner, ImpossibleGpuJobsAreRefusedBeforeTheRun) {
  VirtualRun r(2);
  give_gpus(r, {gpu(0, 1000, 2)});
  auto fat = packtrain::testing::sleeping_job("fat", 0);
  fat.gpus = 1;
  fat.gpu_memory_mb = 1001;
  r.runner->add(fat);
  EXPECT_NE(thrown_error([&] { r.runner->run(r.options); }).find("needs 1001 MiB of GPU memory but this node's GPUs have at most 1000 MiB"),
            std::string::npos);
  VirtualRun two(2);
  give_gpus(two, {gpu(0, 1000, 2)});
  auto pair = packtrain::testing::sleeping_job("pair", 0);
  pair.gpus = 2;
  two.runner->add(pair);
  EXPECT_NE(thrown_error([&] { two.runner->run(two.options); }).find("a job takes 0 or 1"), std::string::npos);
}
