// The resource ledger on its own: pure bookkeeping. No threads, no runner.
#include <packtrain/scheduler/resource_ledger.hpp>

#include <gtest/gtest.h>

#include <vector>

using namespace packtrain;

TEST(ResourceLedger, HoldingAndReleasingTrackCoresGpusMemoryAndThePeak) {
  ResourceLedger ledger(4, 1, 1000);
  ledger.hold(7, {0, 2}, {.cores = 2, .gpus = 1, .memory_mb = 600});
  EXPECT_EQ(ledger.free_cores(), 2);
  EXPECT_EQ(ledger.free_gpus(), 0);
  EXPECT_EQ(ledger.free_memory_mb(), 400u);
  EXPECT_FALSE(ledger.is_free(2));
  EXPECT_TRUE(ledger.is_free(1));
  EXPECT_EQ(ledger.workers_of(7), (std::vector<int>{0, 2}));
  EXPECT_FALSE(ledger.fits({.cores = 1, .memory_mb = 500}));
  EXPECT_TRUE(ledger.fits({.cores = 2, .memory_mb = 400}));
  ledger.release(7);
  EXPECT_EQ(ledger.free_cores(), 4);
  EXPECT_EQ(ledger.free_memory_mb(), 1000u);
  EXPECT_EQ(ledger.peak_cores_in_use(), 2);
}

TEST(ResourceLedger, LentCoresAreInUseUntilTheirLeaseEnds) {
  ResourceLedger ledger(3, 0, 1000);
  ledger.hold(7, {0}, {.cores = 1});
  ledger.open_elastic(7, 1, 3);
  ledger.lend(1, 7);
  ledger.lend(2, 7);
  EXPECT_EQ(ledger.free_cores(), 0);
  EXPECT_EQ(ledger.lent(), 2);
  EXPECT_EQ(ledger.elastic().front().lent, 2);
  ledger.ask_back(2);
  EXPECT_EQ(ledger.asked_back(), 1);
  EXPECT_EQ(ledger.elastic().front().asked_back, 1);
  ledger.end_lease(2);
  EXPECT_EQ(ledger.free_cores(), 1);
  EXPECT_EQ(ledger.asked_back(), 0);
  // Closing: no more cores for the job, and what it has counts as on its way back.
  ledger.close_elastic(7);
  EXPECT_TRUE(ledger.elastic().empty());
  EXPECT_EQ(ledger.asked_back(), 1);
  ledger.end_lease(1);
  ledger.release(7);
  EXPECT_EQ(ledger.free_cores(), 3);
  EXPECT_EQ(ledger.peak_cores_in_use(), 3);
}
