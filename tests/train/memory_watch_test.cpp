// watch_job_memory: LibTorch's CPU allocations charged to the job of the
// allocating thread, refused past its budget, credited back wherever freed.
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/job_memory.hpp>
#include <packtrain/train/memory_watch.hpp>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <thread>

using namespace packtrain;

TEST(MemoryWatch, TensorsAreChargedToTheJobOfTheirThreadAndCreditedBackWhereverFreed) {
  train::watch_job_memory();
  auto job = std::make_shared<JobMemory>(0);
  torch::Tensor held;
  {
    JobMemoryScope scope(job);
    held = torch::zeros({1 << 20});  // 4 MiB of floats
  }
  EXPECT_GE(job->in_use(), 4u << 20);
  const auto outside = torch::zeros({1 << 20});  // no job: not charged
  EXPECT_LT(job->in_use(), 5u << 20);
  std::thread([t = std::move(held)]() mutable { t = torch::Tensor(); }).join();  // freed on another thread
  EXPECT_EQ(job->in_use(), 0u);
  EXPECT_GE(job->peak(), 4u << 20);
}

TEST(MemoryWatch, AnAllocationPastTheBudgetThrowsOverMemoryAndChargesNothing) {
  train::watch_job_memory();
  auto job = std::make_shared<JobMemory>(std::uint64_t{8} << 20);  // 8 MiB
  JobMemoryScope scope(job);
  const auto kept = torch::ones({1 << 20});  // 4 MiB
  try {
    const auto more = torch::ones({2 << 20});  // 8 MiB more
    FAIL() << "allocated past the budget";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("over memory"), std::string::npos) << e.what();
  }
  EXPECT_EQ(job->refused(), std::uint64_t{8} << 20);
  EXPECT_LT(job->in_use(), std::uint64_t{5} << 20);
  // Training goes on below the budget: a small model's step.
  torch::nn::Linear layer(64, 10);
  auto loss = layer->forward(torch::randn({32, 64})).sum();
  loss.backward();
  EXPECT_TRUE(layer->weight.grad().defined());
}
