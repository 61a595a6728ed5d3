#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/work_pool.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

using packtrain::WorkPool;

TEST(WorkPool, OneTakerGetsItsRoundInOrderThenNothing) {
  WorkPool pool(2);
  const int slot = pool.join();
  ASSERT_GE(slot, 0);
  EXPECT_EQ(pool.deal(50), 1);
  for (int i = 0; i < 50; ++i) {
    auto item = pool.take(slot);
    ASSERT_TRUE(item);
    EXPECT_EQ(item->round, 1);
    EXPECT_EQ(item->index, i);
  }
  EXPECT_FALSE(pool.take(slot));
  EXPECT_EQ(pool.deal(3), 2);
  auto item = pool.take(slot);
  ASSERT_TRUE(item);
  EXPECT_EQ(item->round, 2);
  EXPECT_EQ(pool.dealt(), 53);
  EXPECT_EQ(pool.taken(), 51);
}

TEST(WorkPool, SlotsRunOutAndComeBack) {
  WorkPool pool(2);
  const int a = pool.join(), b = pool.join();
  EXPECT_NE(a, b);
  EXPECT_EQ(pool.join(), -1);
  pool.leave(b);
  EXPECT_EQ(pool.join(), b);
}

TEST(WorkPool, AShareLeftUntouchedIsStolenByTheOthers) {
  WorkPool pool(2);
  const int a = pool.join(), b = pool.join();
  pool.deal(10);  // five each
  pool.leave(b);  // b goes before taking any of its five
  std::vector<int> seen(10, 0);
  while (auto item = pool.take(a)) ++seen[static_cast<std::size_t>(item->index)];
  for (int i = 0; i < 10; ++i) EXPECT_EQ(seen[static_cast<std::size_t>(i)], 1) << "item " << i;
}

// The owner of a share is busy (it has not taken since the deal): the other
// taker takes that share too rather than wait for the owner to push it.
TEST(WorkPool, ATakerNeverWaitsForABusyOwnersShare) {
  WorkPool pool(2);
  const int a = pool.join();
  const int b = pool.join();
  ASSERT_GE(b, 0);
  pool.deal(10);  // five each; b never takes
  auto all = std::async(std::launch::async, [&] {
    std::vector<int> seen(10, 0);
    while (auto item = pool.take(a)) ++seen[static_cast<std::size_t>(item->index)];
    return seen;
  });
  if (all.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    std::fprintf(stderr, "WorkPool::take waited 10 s for a share its owner never pushed\n");
    std::abort();  // the taker cannot be stopped or joined
  }
  const auto seen = all.get();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(seen[static_cast<std::size_t>(i)], 1) << "item " << i;
  EXPECT_FALSE(pool.take(b)) << "b's share was taken by a";
  EXPECT_EQ(pool.taken(), 10);
}

TEST(WorkPool, ARoundDealtWithNoTakerGoesToTheFirstToJoin) {
  WorkPool pool(3);
  pool.deal(7);
  const int slot = pool.join();
  int n = 0;
  while (pool.take(slot)) ++n;
  EXPECT_EQ(n, 7);
}

TEST(WorkPool, RefusesBadArguments) {
  EXPECT_THROW(WorkPool(0), packtrain::Error);
  WorkPool pool(1);
  EXPECT_THROW(pool.deal(-1), packtrain::Error);
}

// Takers join and leave at random, also in the middle of rounds, while a
// dealer deals round after round: every item of every round is taken
// exactly once.
TEST(WorkPool, StressEveryItemExactlyOnceWhileTakersComeAndGo) {
  constexpr int kSlots = 6, kTakers = 8, kRounds = 60, kItems = 997;
  WorkPool pool(kSlots);
  std::vector<std::unique_ptr<std::atomic<int>>> seen;
  for (int i = 0; i < kRounds * kItems; ++i) seen.push_back(std::make_unique<std::atomic<int>>(0));
  std::mutex progress_mutex;
  std::condition_variable progressed;
  int processed = 0;  // guarded by progress_mutex
  std::atomic<bool> stop{false};
  std::atomic<long> joins{0};

  std::vector<std::thread> takers;
  for (int t = 0; t < kTakers; ++t) {
    takers.emplace_back([&, t] {
      std::minstd_rand rng(static_cast<unsigned>(t) + 1);
      while (!stop.load()) {
        const int slot = pool.join();
        if (slot < 0) {
          std::this_thread::yield();  // every slot taken: come back (load, not a wait for a result)
          continue;
        }
        joins.fetch_add(1);
        // Take a random number of items (often fewer than a share), then leave.
        const int budget = static_cast<int>(rng() % 300);
        int got = 0;
        for (int k = 0; k < budget; ++k) {
          auto item = pool.take(slot);
          if (!item) break;
          const bool valid = item->round >= 1 && item->round <= kRounds && item->index >= 0 && item->index < kItems;
          EXPECT_TRUE(valid) << "round " << item->round << " index " << item->index;
          if (!valid) continue;
          seen[static_cast<std::size_t>((item->round - 1) * kItems + item->index)]->fetch_add(1);
          ++got;
        }
        pool.leave(slot);
        if (got > 0) {
          {
            std::lock_guard lock(progress_mutex);
            processed += got;
          }
          progressed.notify_all();
        }
      }
    });
  }
  // Waits until `n` items are processed; false after 30 s without them.
  const auto processed_reaches = [&](int n) {
    std::unique_lock lock(progress_mutex);
    return progressed.wait_for(lock, std::chrono::seconds(30), [&] { return processed >= n; });
  };
  bool finished = true;
  for (int r = 0; r < kRounds && finished; ++r) {
    pool.deal(kItems);
    // Half the rounds overlap the next one: deal again before this one ends.
    if (r % 2 == 0) continue;
    finished = processed_reaches((r + 1) * kItems);
  }
  finished = finished && processed_reaches(kRounds * kItems);
  stop.store(true);
  for (auto& t : takers) t.join();

  ASSERT_TRUE(finished) << "items dealt were never taken";
  EXPECT_EQ(processed, kRounds * kItems);
  EXPECT_EQ(pool.taken(), pool.dealt());
  EXPECT_GT(joins.load(), kRounds);  // takers really did come and go
  int wrong = 0;
  for (int i = 0; i < kRounds * kItems; ++i)
    if (seen[static_cast<std::size_t>(i)]->load() != 1) ++wrong;
  EXPECT_EQ(wrong, 0) << "items not taken exactly once";
}
