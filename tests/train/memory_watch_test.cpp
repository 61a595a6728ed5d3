// watch_job_memory: LibTorch's CPU allocations charged to the job of the
// allocating thread, refused past its budget, credited back wherever freed.
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/executor.hpp>
#include <packtrain/scheduler/job_memory.hpp>
#include <packtrain/scheduler/job_runner.hpp>
#include <packtrain/train/memory_watch.hpp>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <thread>
#include <vector>

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

// A sweep of 12 jobs on 2 cores, each with a 64 MiB budget, where one job
// allocates until the watch stops it: that one fails `over memory` (the
// runner's message, whatever the allocation's exception became), the other
// 11 train and are done, and the run exits 1.
TEST(MemoryWatch, AJobThatAllocatesUntilStoppedFailsOverMemoryAndTheOtherElevenAreDone) {
  train::watch_job_memory();
  NodeResources node;
  node.cores = {0, 1};
  node.memory_mb = 1024;
  Executor executor(node.cores, ExecutorOptions{.pin = false});
  JobRunner runner(executor, node);
  for (int j = 0; j < 12; ++j) {
    Job job;
    job.name = "job" + std::to_string(j);
    job.spec = {{"job", j}};
    job.memory_mb = 64;
    if (j == 7) {
      job.run = [](JobContext&) {
        std::vector<torch::Tensor> hoard;
        for (;;) hoard.push_back(torch::ones({1 << 20}));  // 4 MiB at a time, until refused
        return JobOutcome{};
      };
    } else {
      job.run = [](JobContext& ctx) {
        torch::manual_seed(static_cast<std::uint64_t>(ctx.seed() % 1000));
        torch::nn::Linear layer(256, 10);
        torch::optim::SGD sgd(layer->parameters(), 0.1);
        for (int step = 0; step < 20; ++step) {
          sgd.zero_grad();
          layer->forward(torch::randn({1024, 256})).pow(2).mean().backward();  // a 1 MiB batch
          sgd.step();
        }
        return JobOutcome{.metrics = {{"trained", true}}};
      };
    }
    runner.add(std::move(job));
  }
  const auto summary = runner.run(RunOptions{.pin_threads = false});
  EXPECT_EQ(summary.done, 11);
  EXPECT_EQ(summary.failed, 1);
  EXPECT_EQ(summary.exit_code(), 1);
  for (const auto& r : summary.jobs) {
    if (r.name == "job7") {
      EXPECT_EQ(r.status, JobStatus::failed);
      EXPECT_EQ(r.message.rfind("over memory: the job held up to ", 0), 0u) << r.message;
      EXPECT_NE(r.message.find("of its 64 MiB budget and asked for 4.0 MiB more"), std::string::npos) << r.message;
      EXPECT_GT(r.metrics.value("peak_memory_mb", 0.0), 56.0);
      EXPECT_LE(r.metrics.value("peak_memory_mb", 99.0), 64.0);
    } else {
      EXPECT_EQ(r.status, JobStatus::done) << r.name << ": " << r.message;
      EXPECT_GE(r.metrics.value("peak_memory_mb", 0.0), 1.0) << r.name;  // its batch, at least
    }
  }
}
