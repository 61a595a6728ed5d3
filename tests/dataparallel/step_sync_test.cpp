// The torch-free synchronization of data-parallel steps: the reduction tree's
// fixed order, and the hand-out, hand-over and reduction of micro-batches by
// replicas that come and go. Built and run under ThreadSanitizer too
// (tsan.scheduler), where PACKTRAIN_STRESS_ITEMS makes the stress test long.
#include <packtrain/dataparallel/reduction_tree.hpp>
#include <packtrain/dataparallel/step_sync.hpp>
#include <packtrain/scheduler/error.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <numeric>
#include <random>
#include <stop_token>
#include <thread>
#include <vector>

using packtrain::dataparallel::MicroBatch;
using packtrain::dataparallel::ReductionTree;
using packtrain::dataparallel::StepSync;
using namespace std::chrono_literals;

namespace {

// The tree's sum of v[begin, end) written as a recursion: the reference order.
float tree_sum(const std::vector<float>& v, int begin, int end, int span) {
  if (span == 1) return v[static_cast<std::size_t>(begin)];
  const int half = span / 2;
  const int mid = begin + half;
  if (mid >= end) return tree_sum(v, begin, end, half);
  return tree_sum(v, begin, mid, half) + tree_sum(v, mid, end, half);
}

float reference_sum(const std::vector<float>& v) {
  int span = 1;
  while (span < static_cast<int>(v.size())) span *= 2;
  return tree_sum(v, 0, static_cast<int>(v.size()), span);
}

std::int64_t stress_items(std::int64_t fallback) {
  const char* env = std::getenv("PACKTRAIN_STRESS_ITEMS");
  return env ? std::max<std::int64_t>(1, std::atoll(env)) : fallback;
}

}  // namespace

TEST(ReductionTree, TheSumIsTheSameBitsInEveryArrivalOrder) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-20, 20);
  for (int n = 1; n <= 19; ++n) {
    std::vector<float> leaves(static_cast<std::size_t>(n));
    for (auto& x : leaves) x = std::ldexp(mantissa(rng), exponent(rng));  // sums that depend on their order
    const float expected = reference_sum(leaves);
    ReductionTree tree(19);
    std::vector<int> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    for (int trial = 0; trial < 40; ++trial) {
      std::shuffle(order.begin(), order.end(), rng);
      auto buffer = leaves;
      int combines = 0;
      tree.reset(n);
      for (std::size_t k = 0; k < order.size(); ++k) {
        const bool root = tree.arrive(order[k], [&](int left, int right) {
          buffer[static_cast<std::size_t>(left)] += buffer[static_cast<std::size_t>(right)];
          ++combines;
        });
        EXPECT_EQ(root, k + 1 == order.size()) << "n " << n << ": only the last arrival completes the root";
      }
      EXPECT_EQ(combines, n - 1) << "n " << n;
      std::uint32_t got = 0, want = 0;
      std::memcpy(&got, &buffer[0], sizeof got);
      std::memcpy(&want, &expected, sizeof want);
      EXPECT_EQ(got, want) << "n " << n << ", trial " << trial;
    }
  }
}

// A gang's bucket sums the last leaf's path itself (path_to_root): the
// combines arrive() would make, so the same bits for every leaf being last.
TEST(ReductionTree, ThePathToTheRootOfTheLastLeafGivesTheSameBits) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-20, 20);
  for (int n = 1; n <= 19; ++n) {
    std::vector<float> leaves(static_cast<std::size_t>(n));
    for (auto& x : leaves) x = std::ldexp(mantissa(rng), exponent(rng));
    const float expected = reference_sum(leaves);
    ReductionTree tree(19);
    for (int last = 0; last < n; ++last) {
      auto buffer = leaves;
      tree.reset(n);
      const auto add = [&](int left, int right) {
        buffer[static_cast<std::size_t>(left)] += buffer[static_cast<std::size_t>(right)];
      };
      for (int leaf = 0; leaf < n; ++leaf)
        if (leaf != last) {
          EXPECT_FALSE(tree.arrive(leaf, add));
        }
      ReductionTree::path_to_root(last, n, add);
      std::uint32_t got = 0, want = 0;
      std::memcpy(&got, &buffer[0], sizeof got);
      std::memcpy(&want, &expected, sizeof want);
      EXPECT_EQ(got, want) << "n " << n << ", last leaf " << last;
      // arrive() would have made exactly those combines: none is left for it.
      int left_over = 0;
      EXPECT_TRUE(tree.arrive(last, [&](int, int) { ++left_over; }));
      int on_path = 0;
      ReductionTree::path_to_root(last, n, [&](int, int) { ++on_path; });
      EXPECT_EQ(left_over, on_path) << "n " << n << ", last leaf " << last;
    }
  }
}

TEST(ReductionTree, RefusesARoundLargerThanItsLeaves) {
  ReductionTree tree(4);
  EXPECT_THROW(tree.reset(5), std::out_of_range);
  EXPECT_THROW(tree.reset(0), std::out_of_range);
}

TEST(StepSync, ASeatBeyondMaxReplicasIsNotSeated) {
  StepSync sync(2, 4);
  StepSync::Seat a(sync), b(sync);
  {
    StepSync::Seat c(sync);
    EXPECT_FALSE(c.seated());
    EXPECT_EQ(sync.replicas(), 2);
  }
  EXPECT_TRUE(a.seated());
  EXPECT_TRUE(b.seated());
  EXPECT_THROW(StepSync(0, 4), packtrain::Error);
  EXPECT_THROW(StepSync(1, 0), packtrain::Error);
}

// A replica leaves mid-step before starting its share: the leader takes it,
// and each micro-batch is reduced once.
TEST(StepSync, TheLeaderTakesWhatALeavingReplicaLeft) {
  StepSync sync(2, 8);
  StepSync::Seat leader(sync);
  auto helper = std::make_unique<StepSync::Seat>(sync);
  sync.begin_step(8);  // four each
  helper.reset();      // gone before taking any of its four
  std::vector<int> seen(8, 0);
  int roots = 0;
  for (;;) {
    while (auto mb = sync.take(leader)) {
      ++seen[static_cast<std::size_t>(mb->index)];
      roots += sync.finish(*mb, [](int, int) {}) ? 1 : 0;
    }
    const auto wake = sync.wait_for_step();
    ASSERT_NE(wake, StepSync::Wake::failed);
    if (wake == StepSync::Wake::reduced) break;
  }
  EXPECT_EQ(roots, 1);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(seen[static_cast<std::size_t>(i)], 1) << "micro-batch " << i;
}

// Fewer micro-batches than replicas: the replicas dealt nothing find
// nothing, and the one micro-batch is taken once (the work pool once dealt
// empty shares, from which its take decremented to negative indices).
TEST(StepSync, AStepOfFewerMicroBatchesThanReplicasIsTakenOnce) {
  StepSync sync(3, 4);
  StepSync::Seat a(sync), b(sync), c(sync);
  for (int round = 0; round < 20; ++round) {
    sync.begin_step(1);
    const StepSync::Seat* seats[] = {&a, &b, &c};
    int taken = 0;
    for (int i = 0; i < 3; ++i) {
      // Round-robin start, so each seat is first in some rounds.
      while (auto mb = sync.take(*seats[(i + round) % 3])) {
        EXPECT_EQ(mb->index, 0);
        ++taken;
        sync.finish(*mb, [](int, int) {});
      }
    }
    EXPECT_EQ(taken, 1) << "round " << round;
    ASSERT_EQ(sync.wait_for_step(), StepSync::Wake::reduced);
  }
}

TEST(StepSync, AFailureWakesTheWaitingLeaderWithItsMessage) {
  StepSync sync(2, 4);
  StepSync::Seat leader(sync);
  StepSync::Seat helper(sync);
  sync.begin_step(4);
  // The leader takes two and waits for the helper's two.
  for (int i = 0; i < 2; ++i) {
    auto mb = sync.take(leader);
    ASSERT_TRUE(mb);
    sync.finish(*mb, [](int, int) {});
  }
  // The helper takes both of its own and finishes one; the leader has
  // nothing to take and waits for the other.
  auto first = sync.take(helper), second = sync.take(helper);
  ASSERT_TRUE(first && second);
  sync.finish(*second, [](int, int) {});
  auto waited = std::async(std::launch::async, [&] { return sync.wait_for_step(); });
  sync.fail("boom\nsecond line");  // the helper's micro-batch threw
  ASSERT_EQ(waited.wait_for(20s), std::future_status::ready) << "the leader was not woken";
  EXPECT_EQ(waited.get(), StepSync::Wake::failed);
  EXPECT_EQ(sync.failure(), "boom");
  EXPECT_FALSE(sync.take(helper)) << "nothing is taken after a failure";
}

// A failed step's leader unwinds (and frees what the micro-batches read)
// only once no other replica still computes one it took.
TEST(StepSync, AfterAFailureTheLeaderWaitsForTheMicroBatchesOthersStillCompute) {
  StepSync sync(3, 4);
  StepSync::Seat leader(sync), a(sync), b(sync);
  sync.begin_step(2);
  auto x = sync.take(a), y = sync.take(b);
  ASSERT_TRUE(x && y);
  sync.fail("boom");  // b's micro-batch threw; a still computes x
  auto waited = std::async(std::launch::async, [&] { return sync.wait_for_step(); });
  auto quiet = std::async(std::launch::async, [&] { sync.wait_until_none_in_hand(); });
  // A negative check: neither may return while x is in a's hands.
  EXPECT_EQ(waited.wait_for(100ms), std::future_status::timeout) << "the leader did not wait for x";
  EXPECT_EQ(quiet.wait_for(0ms), std::future_status::timeout);
  EXPECT_FALSE(sync.take(leader)) << "nothing is taken after a failure";
  sync.finish(*x, [](int, int) {});
  ASSERT_EQ(waited.wait_for(20s), std::future_status::ready) << "the leader was not woken when x was done";
  EXPECT_EQ(waited.get(), StepSync::Wake::failed);
  ASSERT_EQ(quiet.wait_for(20s), std::future_status::ready);
}

TEST(StepSync, AHelperSleepingForWorkWakesWhenAskedToLeave) {
  StepSync sync(2, 2);
  StepSync::Seat leader(sync), helper(sync);
  std::stop_source lease;
  auto waited = std::async(std::launch::async, [&] { sync.wait_for_work(lease.get_token()); });
  lease.request_stop();
  EXPECT_EQ(waited.wait_for(20s), std::future_status::ready) << "the ask did not wake the helper";
  sync.end();
  sync.wait_for_work(lease.get_token());  // asked already: returns at once, also after the end
}

TEST(StepSync, PeakAndPresenceCountSeatedReplicas) {
  StepSync sync(3, 2);
  StepSync::Seat a(sync);
  {
    StepSync::Seat b(sync), c(sync);
    EXPECT_EQ(sync.replicas(), 3);
  }
  EXPECT_EQ(sync.take_peak(), 3);
  EXPECT_EQ(sync.take_peak(), 1);
  EXPECT_GE(sync.replica_seconds(), 0.0);
}

// The gold-set stress test (STYLE.md, "Concurrency"): a leader runs steps of
// random sizes while helpers join, take, and leave at random moments (mid-
// step too, leaving dealt shares behind). Every micro-batch of every step is
// computed exactly once, its value reaches the root exactly once, and the
// root's sum is the tree's. The values and counts are plain memory: under
// ThreadSanitizer, any hand-over without happens-before is reported.
TEST(StepSync, EveryMicroBatchIsReducedExactlyOncePerStepWhileReplicasComeAndGo) {
  constexpr int kMaxMicroBatches = 13;
  constexpr int kHelpers = 3;
  const std::int64_t steps = std::max<std::int64_t>(200, stress_items(40000) / 8);
  StepSync sync(kHelpers + 1, kMaxMicroBatches);
  std::vector<std::int64_t> value(kMaxMicroBatches, 0);
  std::vector<int> hits(kMaxMicroBatches, 0);
  const auto combine = [&](int left, int right) {
    value[static_cast<std::size_t>(left)] += value[static_cast<std::size_t>(right)];
  };
  const auto compute = [&](const MicroBatch& mb) {
    ++hits[static_cast<std::size_t>(mb.index)];
    value[static_cast<std::size_t>(mb.index)] = mb.step * 1000 + mb.index;
    sync.finish(mb, combine);
  };
  std::atomic<bool> done{false};
  std::atomic<std::int64_t> helper_items{0}, visits{0};
  std::vector<std::thread> helpers;
  // Helpers leave a visit by their own count; these are asked at the end,
  // as a runner asks its leases (a helper sleeps until then after end()).
  std::vector<std::stop_source> leave(kHelpers);
  for (int h = 0; h < kHelpers; ++h) {
    helpers.emplace_back([&, h] {
      std::minstd_rand rng(static_cast<unsigned>(h) * 31u + 5u);
      while (!done.load(std::memory_order_relaxed)) {
        StepSync::Seat seat(sync);  // leaves at the end of each visit, whatever it holds dealt
        visits.fetch_add(1, std::memory_order_relaxed);
        const int items = static_cast<int>(rng() % 6);
        for (int i = 0; i < items && !done.load(std::memory_order_relaxed);) {
          if (auto mb = sync.take(seat)) {
            compute(*mb);
            helper_items.fetch_add(1, std::memory_order_relaxed);
            ++i;
          } else {
            sync.wait_for_work(leave[static_cast<std::size_t>(h)].get_token());
          }
        }
      }
    });
  }
  // The steps start once every helper has come once: on a loaded machine
  // the leader could otherwise finish them all before a helper thread ran.
  while (visits.load(std::memory_order_relaxed) < kHelpers) std::this_thread::yield();
  std::minstd_rand rng(3);
  StepSync::Seat leader(sync);
  std::int64_t mismatched = 0, not_once = 0;
  // The leader may take every micro-batch itself (wait_for_step says `work`
  // while any is untaken), so on a loaded machine the helpers could miss all
  // `steps`: the steps go on until they have taken some and come back at
  // least once, the leader leaving those steps to them, up to a deadline the
  // asserts below catch.
  const auto helpers_took_part = [&] {
    return helper_items.load(std::memory_order_relaxed) > 0 && visits.load(std::memory_order_relaxed) > kHelpers;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (std::int64_t s = 0; s < steps || (!helpers_took_part() && std::chrono::steady_clock::now() < deadline); ++s) {
    const bool leave_to_helpers = s >= steps;
    const int m = 1 + static_cast<int>(rng() % kMaxMicroBatches);
    std::fill(hits.begin(), hits.end(), 0);
    const auto step = sync.begin_step(m);
    // The leader computes only some of what it is dealt, so the helpers do most.
    for (;;) {
      if (!leave_to_helpers && rng() % 2 == 0) {
        if (auto mb = sync.take(leader)) {
          compute(*mb);
          continue;
        }
      }
      const auto wake = sync.wait_for_step();
      ASSERT_NE(wake, StepSync::Wake::failed);
      if (wake == StepSync::Wake::reduced) break;
      if (leave_to_helpers) {
        std::this_thread::yield();
      } else if (auto mb = sync.take(leader)) {
        compute(*mb);  // what a leaving helper left
      }
    }
    std::int64_t expected = 0;
    for (int j = 0; j < m; ++j) {
      expected += step * 1000 + j;
      if (hits[static_cast<std::size_t>(j)] != 1) ++not_once;
    }
    if (value[0] != expected) ++mismatched;
  }
  done.store(true);
  sync.end();
  for (auto& l : leave) l.request_stop();
  for (auto& t : helpers) t.join();
  EXPECT_EQ(not_once, 0) << "micro-batches computed 0 or 2+ times";
  EXPECT_EQ(mismatched, 0) << "steps whose root is not the sum of their micro-batches";
  EXPECT_GT(helper_items.load(), 0);
  EXPECT_GT(visits.load(), kHelpers) << "helpers did not come and go";
}
