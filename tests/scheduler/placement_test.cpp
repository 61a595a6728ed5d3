// The placement policy as the pure function it is: a ledger and ready jobs
// in, decisions out. No threads, no runner.
#include <packtrain/scheduler/placement.hpp>

#include <gtest/gtest.h>

#include <vector>

using namespace packtrain;

namespace {

using Kind = Decision::Kind;

ReadyJob ready(int job, double cost, int cores = 1, std::uint64_t memory_mb = 0, int gpus = 0) {
  return {.job = job, .demand = {.cores = cores, .gpus = gpus, .memory_mb = memory_mb}, .cost = cost};
}

Decision start(int job, std::vector<int> workers, int gpu = -1) {
  return {.kind = Kind::start, .job = job, .workers = workers, .gpu = gpu};
}
Decision lend(int job, int worker) { return {.kind = Kind::lend, .job = job, .workers = {worker}}; }
Decision ask_back(int job, int worker) { return {.kind = Kind::ask_back, .job = job, .workers = {worker}}; }

// Jobs 100+ are the ones already running in these ledgers.
constexpr int kElastic = 100, kOther = 101, kSecondElastic = 102;

// Elastic `job` runs on `worker` (one core of its own, up to `max_cores`),
// with the cores of `lent` lent to it, oldest first.
void run_elastic(ResourceLedger& ledger, int job, int worker, int max_cores, const std::vector<int>& lent = {}) {
  ledger.hold(job, {worker}, {.cores = 1});
  ledger.open_elastic(job, 1, max_cores);
  for (int w : lent) ledger.lend(w, job);
}

}  // namespace

TEST(Placement, LongestReadyJobStartsFirst) {
  ResourceLedger ledger(1, 0, 1000);
  EXPECT_EQ(place(ledger, {ready(0, 3), ready(1, 9), ready(2, 1), ready(3, 7)}),
            (std::vector<Decision>{start(1, {0})}));
}

TEST(Placement, EveryCoreTakesAReadyJobLongestFirst) {
  ResourceLedger ledger(3, 0, 1000);
  EXPECT_EQ(place(ledger, {ready(0, 3), ready(1, 9), ready(2, 1), ready(3, 7), ready(4, 5)}),
            (std::vector<Decision>{start(1, {0}), start(3, {1}), start(4, {2})}));
}

TEST(Placement, EqualEstimatesStartInTheOrderTheJobsWereAdded) {
  ResourceLedger ledger(2, 0, 1000);
  EXPECT_EQ(place(ledger, {ready(5, 1), ready(2, 1), ready(9, 1)}),
            (std::vector<Decision>{start(2, {0}), start(5, {1})}));
}

TEST(Placement, AnIdleCoreTakesAShorterJobWhenTheLongestDoesNotFit) {
  ResourceLedger ledger(2, 0, 1000);
  ledger.hold(kOther, {0}, {.cores = 1});
  // `wide` needs both cores; the short job fits the idle one now: work-conserving.
  EXPECT_EQ(place(ledger, {ready(0, 9, 2), ready(1, 1)}), (std::vector<Decision>{start(1, {1})}));
}

TEST(Placement, AMultiCoreJobGetsTheLowestFreeWorkers) {
  ResourceLedger ledger(5, 0, 1000);
  ledger.hold(kOther, {1}, {.cores = 1});
  EXPECT_EQ(place(ledger, {ready(0, 2, 3), ready(1, 1, 1)}),
            (std::vector<Decision>{start(0, {0, 2, 3}), start(1, {4})}));
}

TEST(Placement, MemoryAndGpusBoundWhatStarts) {
  ResourceLedger ledger(4, 1, 1000);
  EXPECT_EQ(place(ledger, {ready(0, 4, 1, 400), ready(1, 3, 1, 400), ready(2, 2, 1, 400), ready(3, 1, 1, 0, 1)}),
            (std::vector<Decision>{start(0, {0}), start(1, {1}), start(3, {2}, /*gpu=*/0)}));
}

TEST(Placement, NothingIsDecidedWhenNothingFitsAndNothingIsLent) {
  ResourceLedger ledger(2, 0, 1000);
  ledger.hold(kOther, {0}, {.cores = 1});
  EXPECT_TRUE(place(ledger, {ready(0, 1, 2)}).empty());
  EXPECT_TRUE(place(ledger, {}).empty());
}

TEST(Placement, IdleCoresAreLentToTheElasticJobWithTheFewestCores) {
  ResourceLedger ledger(5, 0, 1000);
  run_elastic(ledger, kElastic, 0, 5);
  run_elastic(ledger, kSecondElastic, 1, 2);
  // Both have one core: the first registered gets core 2; then the second
  // gets core 3 and is at its maximum, so core 4 goes to the first.
  EXPECT_EQ(place(ledger, {}),
            (std::vector<Decision>{lend(kElastic, 2), lend(kSecondElastic, 3), lend(kElastic, 4)}));
}

TEST(Placement, NothingIsLentWhileAReadyJobFits) {
  ResourceLedger ledger(3, 0, 1000);
  run_elastic(ledger, kElastic, 0, 3);
  // The ready job takes one idle core; only the other is lent.
  EXPECT_EQ(place(ledger, {ready(0, 1)}), (std::vector<Decision>{start(0, {1}), lend(kElastic, 2)}));
}

TEST(Placement, LentCoresAreAskedBackNewestFirstForAWaitingJob) {
  ResourceLedger ledger(4, 0, 1000);
  run_elastic(ledger, kElastic, 0, 4, {1, 2});
  // Core 3 is free, but the three-core job needs two more: the two newest
  // leases are asked back, and core 3 is not lent meanwhile.
  EXPECT_EQ(place(ledger, {ready(0, 5, 3)}), (std::vector<Decision>{ask_back(kElastic, 2), ask_back(kElastic, 1)}));
}

TEST(Placement, LeasesAskedBackAlreadyAreNotAskedTwice) {
  ResourceLedger ledger(4, 0, 1000);
  run_elastic(ledger, kElastic, 0, 4, {1, 2, 3});
  ledger.ask_back(3);
  // A two-core job: one lease on its way back, one more is asked for.
  EXPECT_EQ(place(ledger, {ready(0, 5, 2)}), (std::vector<Decision>{ask_back(kElastic, 2)}));
  ledger.ask_back(2);
  EXPECT_TRUE(place(ledger, {ready(0, 5, 2)}).empty());
}

TEST(Placement, CoresAreAskedBackFromTheJobWithTheMostLent) {
  ResourceLedger ledger(6, 0, 1000);
  run_elastic(ledger, kElastic, 0, 6, {2});
  run_elastic(ledger, kSecondElastic, 1, 6, {3, 4, 5});
  EXPECT_EQ(place(ledger, {ready(0, 5, 3)}),
            (std::vector<Decision>{ask_back(kSecondElastic, 5), ask_back(kSecondElastic, 4),
                                   ask_back(kElastic, 2)}));
}

TEST(Placement, AJobThatCannotFitEvenWithLentCoresDoesNotStopLending) {
  ResourceLedger ledger(3, 0, 1000);
  run_elastic(ledger, kElastic, 0, 3);
  ledger.hold(kOther, {1}, {.cores = 1, .memory_mb = 900});
  // The waiting job needs more memory than is left: lending goes on.
  EXPECT_EQ(place(ledger, {ready(0, 5, 1, 500)}), (std::vector<Decision>{lend(kElastic, 2)}));
}

TEST(Placement, AnEndingElasticJobGetsNoCoresAndItsLeasesCountAsReturning) {
  ResourceLedger ledger(3, 0, 1000);
  run_elastic(ledger, kElastic, 0, 3, {1});
  ledger.close_elastic(kElastic);
  // Core 2 stays idle (no one to lend it to); the two-core job waits for
  // the lease on its way back instead of asking again.
  EXPECT_TRUE(place(ledger, {ready(0, 5, 2)}).empty());
  EXPECT_TRUE(place(ledger, {}).empty());
}

// --- mixed CPU/GPU placement: where each job is expected to finish first ---

namespace {

ReadyChoice choice(int job, double cpu_seconds, double gpu_seconds, int cores = 1) {
  return {.job = job, .cost = std::max(cpu_seconds, gpu_seconds), .cpu = {.cores = cores},
          .cpu_seconds = cpu_seconds, .gpu_seconds = gpu_seconds};
}
MixedDecision on_gpu(int job, int device = 0) { return {.job = job, .gpu = true, .device = device}; }
MixedDecision on_cpu(int job, std::vector<int> workers) { return {.job = job, .gpu = false, .workers = workers}; }

}  // namespace

TEST(MixedPlacement, AJobFasterOnAFreeGpuSlotGoesThereAndTheNextWhereItFinishesFirst) {
  ResourceLedger ledger(2, 1, 1000);  // 2 cores, 1 GPU slot
  // Job 1 after job 0's 5 s in the slot: 5 + 26 = 31 > 30 on a core: the core.
  EXPECT_EQ(place_mixed(ledger, {choice(0, 40, 5), choice(1, 30, 26)}, {}),
            (std::vector<MixedDecision>{on_gpu(0), on_cpu(1, {0})}));
  // 5 + 6 = 11 < 30: it waits for the slot.
  EXPECT_EQ(place_mixed(ledger, {choice(0, 40, 5), choice(1, 30, 6)}, {}), (std::vector<MixedDecision>{on_gpu(0)}));
}

TEST(MixedPlacement, ABusySlotIsWaitedForOnlyWhenThatStillFinishesFirst) {
  ResourceLedger ledger(1, 1, 1000);
  ledger.hold(kOther, {}, {.cores = 0, .gpus = 1});  // the slot is busy for 3 more seconds
  // 3 + 5 on the GPU beats 40 on the core: job 0 waits; the short CPU-only job takes the core.
  EXPECT_EQ(place_mixed(ledger, {choice(0, 40, 5), choice(1, 2, 0)}, {.gpu_slot_free_in = 3}),
            (std::vector<MixedDecision>{on_cpu(1, {0})}));
  // Busy for 50 more seconds: the core now is sooner.
  EXPECT_EQ(place_mixed(ledger, {choice(0, 40, 5)}, {.gpu_slot_free_in = 50}),
            (std::vector<MixedDecision>{on_cpu(0, {0})}));
}

TEST(MixedPlacement, JobsWaitingForTheSameSlotQueueBehindEachOther) {
  ResourceLedger ledger(1, 1, 1000);
  ledger.hold(kOther, {}, {.cores = 0, .gpus = 1});
  // Job 0 waits for the slot (2 + 10 < 30); job 1 would wait 2 + 10 + 10 = 22
  // there against 25 on the free core... it waits too; job 2 (3 s on CPU) runs now.
  EXPECT_EQ(place_mixed(ledger, {choice(0, 30, 10), choice(1, 25, 10), choice(2, 3, 0)}, {.gpu_slot_free_in = 2}),
            (std::vector<MixedDecision>{on_cpu(2, {0})}));
  // Job 1 on a slower GPU (16 s): 2 + 10 + 16 = 28 > 25: the core.
  EXPECT_EQ(place_mixed(ledger, {choice(0, 30, 10), choice(1, 25, 16)}, {.gpu_slot_free_in = 2}),
            (std::vector<MixedDecision>{on_cpu(1, {0})}));
}

TEST(MixedPlacement, CpuOnlyAndGpuOnlyJobsStayOnTheirDevice) {
  ResourceLedger ledger(1, 1, 1000);
  EXPECT_EQ(place_mixed(ledger, {choice(0, 5, 0), choice(1, 0, 50)}, {}),
            (std::vector<MixedDecision>{on_gpu(1), on_cpu(0, {0})}));
}
