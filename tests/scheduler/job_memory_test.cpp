// JobMemory: a job's budget, charged by its threads' allocations.
#include <packtrain/scheduler/job_memory.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

using namespace packtrain;

TEST(JobMemory, ChargesUpToTheBudgetRefusesWhatWouldPassItAndKeepsThePeak) {
  JobMemory memory(100);
  EXPECT_TRUE(memory.charge(60));
  EXPECT_TRUE(memory.charge(40));  // exactly the budget
  EXPECT_FALSE(memory.charge(1));
  EXPECT_EQ(memory.in_use(), 100u);  // the refused byte was not charged
  EXPECT_EQ(memory.refused(), 1u);
  memory.release(70);
  EXPECT_TRUE(memory.charge(50));
  EXPECT_FALSE(memory.charge(30));
  EXPECT_EQ(memory.refused(), 30u);  // the largest refusal
  EXPECT_EQ(memory.in_use(), 80u);
  EXPECT_EQ(memory.peak(), 100u);
}

TEST(JobMemory, NoBudgetCountsAndNeverRefuses) {
  JobMemory memory(0);
  EXPECT_TRUE(memory.charge(std::uint64_t{1} << 50));
  EXPECT_EQ(memory.refused(), 0u);
  EXPECT_EQ(memory.peak(), std::uint64_t{1} << 50);
}

TEST(JobMemory, AScopeMarksItsThreadOnlyAndRestoresTheMarkBefore) {
  auto outer = std::make_shared<JobMemory>(0), inner = std::make_shared<JobMemory>(0);
  EXPECT_EQ(current_job_memory(), nullptr);
  {
    JobMemoryScope a(outer);
    EXPECT_EQ(current_job_memory(), outer);
    {
      JobMemoryScope b(inner);
      EXPECT_EQ(current_job_memory(), inner);
      std::thread([] { EXPECT_EQ(current_job_memory(), nullptr); }).join();
    }
    EXPECT_EQ(current_job_memory(), outer);
  }
  EXPECT_EQ(current_job_memory(), nullptr);
}

// Threads charge and release at once (ThreadSanitizer runs it too): the
// budget is never passed, and every byte charged comes back.
TEST(JobMemory, ConcurrentChargesNeverPassTheBudgetAndAllComeBack) {
  constexpr std::uint64_t kBudget = 200;  // below 4 threads x 97 bytes: some charges are refused
  JobMemory memory(kBudget);
  std::atomic<std::uint64_t> granted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        const std::uint64_t bytes = 1 + static_cast<std::uint64_t>((i * 7 + t * 13) % 97);
        if (memory.charge(bytes)) {
          EXPECT_LE(memory.in_use(), kBudget);
          granted.fetch_add(1);
          memory.release(bytes);
        } else {
          refused.fetch_add(1);
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(memory.in_use(), 0u);
  EXPECT_LE(memory.peak(), kBudget);
  EXPECT_EQ(granted.load() + refused.load(), 80000u);
}
