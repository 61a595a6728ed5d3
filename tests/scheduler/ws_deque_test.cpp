#include <packtrain/scheduler/ws_deque.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

using packtrain::WsDeque;

namespace {

// Millions by default; the ThreadSanitizer run sets fewer (it is ~10x slower).
std::int64_t stress_items() {
  if (const char* env = std::getenv("PACKTRAIN_STRESS_ITEMS")) return std::atoll(env);
  return 2'000'000;
}

}  // namespace

TEST(WsDeque, OwnerPopsNewestThiefStealsOldest) {
  WsDeque<int> q(4);
  for (int i = 0; i < 3; ++i) q.push(i);
  EXPECT_EQ(q.steal(), 0);
  EXPECT_EQ(q.pop(), 2);
  EXPECT_EQ(q.pop(), 1);
  EXPECT_FALSE(q.pop().has_value());
  EXPECT_FALSE(q.steal().has_value());
}

TEST(WsDeque, GrowsPastItsInitialCapacityKeepingOrder) {
  WsDeque<int> q(2);
  for (int i = 0; i < 1000; ++i) q.push(i);
  EXPECT_EQ(q.size(), 1000);
  for (int i = 0; i < 500; ++i) EXPECT_EQ(q.steal(), i);
  for (int i = 999; i >= 500; --i) EXPECT_EQ(q.pop(), i);
  EXPECT_TRUE(q.empty());
}

// One owner pushes every item (in bursts, popping some itself), several
// thieves steal concurrently; every item must be consumed exactly once.
TEST(WsDeque, StressEveryItemConsumedExactlyOnce) {
  const std::int64_t n = stress_items();
  constexpr int kThieves = 3;
  WsDeque<std::int64_t> q(16);  // small, so it grows under contention
  auto seen = std::make_unique<std::atomic<int>[]>(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) seen[i].store(0, std::memory_order_relaxed);
  std::atomic<bool> owner_done{false};
  std::atomic<std::int64_t> consumed{0};

  auto consume = [&](std::int64_t item) {
    seen[item].fetch_add(1, std::memory_order_relaxed);
    consumed.fetch_add(1, std::memory_order_relaxed);
  };

  std::vector<std::thread> thieves;
  for (int t = 0; t < kThieves; ++t) {
    thieves.emplace_back([&] {
      while (true) {
        if (auto item = q.steal()) {
          consume(*item);
        } else if (owner_done.load(std::memory_order_acquire) && q.empty()) {
          return;
        } else {
          std::this_thread::yield();
        }
      }
    });
  }

  std::int64_t next = 0;
  while (next < n) {
    const std::int64_t burst = std::min<std::int64_t>(n - next, 1 + (next % 97));
    for (std::int64_t i = 0; i < burst; ++i) q.push(next++);
    // The owner takes about a third back itself, racing the thieves for the last item.
    for (std::int64_t i = 0; i < burst / 3 + 1; ++i)
      if (auto item = q.pop()) consume(*item);
  }
  while (auto item = q.pop()) consume(*item);
  owner_done.store(true, std::memory_order_release);
  for (auto& t : thieves) t.join();

  EXPECT_EQ(consumed.load(), n);
  std::int64_t missing = 0, repeated = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const int c = seen[i].load(std::memory_order_relaxed);
    missing += (c == 0);
    repeated += (c > 1);
  }
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(repeated, 0);
}

// Pointers published by push must carry the pointee's contents to the thief.
TEST(WsDeque, StolenPointersSeeWhatTheOwnerWrote) {
  constexpr int kItems = 100'000;
  WsDeque<std::int64_t*> q(8);
  std::atomic<bool> done{false};
  std::atomic<std::int64_t> sum{0};
  std::thread thief([&] {
    while (!done.load(std::memory_order_acquire) || !q.empty()) {
      if (auto p = q.steal()) {
        sum.fetch_add(**p, std::memory_order_relaxed);
        delete *p;
      }
    }
  });
  for (int i = 0; i < kItems; ++i) q.push(new std::int64_t(i));
  while (auto p = q.pop()) {
    sum.fetch_add(**p, std::memory_order_relaxed);
    delete *p;
  }
  done.store(true, std::memory_order_release);
  thief.join();
  EXPECT_EQ(sum.load(), std::int64_t{kItems} * (kItems - 1) / 2);
}
