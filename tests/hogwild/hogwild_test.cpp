// Hogwild: shared storage, separate gradients, workers that come and go.
#include <packtrain/hogwild/hogwild.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/job_runner.hpp>

#include "scheduler/runner_fixture.hpp"

#include <gtest/gtest.h>
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <latch>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include <sys/syscall.h>
#include <unistd.h>

using namespace packtrain;
using namespace packtrain::hogwild;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<const data::DatasetSplit> fashion() { return data::shared_dataset("fashion-mnist"); }

models::ModelOptions shape_of(const data::DatasetSplit& d, std::uint64_t seed) {
  return {.channels = d.channels, .height = d.height, .width = d.width, .classes = d.classes, .seed = seed};
}

pid_t this_thread_id() { return static_cast<pid_t>(syscall(SYS_gettid)); }

// Whether thread `tid` of this process sleeps (state S: blocked, here on a
// condition) within kPatience. Read from /proc: a worker's waits have no
// hook of their own to say that it reached them.
bool sleeps_soon(pid_t tid) {
  const auto deadline = std::chrono::steady_clock::now() + packtrain::testing::kPatience;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/stat");
    const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto end_of_name = stat.rfind(')');
    if (end_of_name != std::string::npos && end_of_name + 2 < stat.size() && stat[end_of_name + 2] == 'S') return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

}  // namespace

TEST(Hogwild, AWeightWrittenByOneWorkerIsReadByTheOthers) {
  const auto data = fashion();
  auto shared = models::make_model("mlp", shape_of(*data, 3));
  auto a = make_replica("mlp", shape_of(*data, 4), *shared);
  auto b = make_replica("mlp", shape_of(*data, 5), *shared);
  auto pa = a->parameters(), pb = b->parameters(), ps = shared->parameters();
  ASSERT_EQ(pa.size(), ps.size());
  for (std::size_t i = 0; i < ps.size(); ++i) {
    // One storage: the replicas' own seeds did not matter.
    EXPECT_EQ(pa[i].data_ptr(), ps[i].data_ptr());
    EXPECT_EQ(pb[i].data_ptr(), ps[i].data_ptr());
  }
  {
    torch::NoGradGuard no_grad;
    pa[0].index_put_({0, 0}, 42.0);
  }
  EXPECT_EQ(pb[0].index({0, 0}).item<float>(), 42.0f);
  EXPECT_EQ(ps[0].index({0, 0}).item<float>(), 42.0f);
  // And the same input gives the same output through either.
  const auto x = data->test.images.slice(0, 0, 8);
  EXPECT_TRUE(torch::equal(a->forward(x), b->forward(x)));
}

TEST(Hogwild, EachWorkerHasItsOwnGradients) {
  const auto data = fashion();
  auto shared = models::make_model("mlp", shape_of(*data, 3));
  auto a = make_replica("mlp", shape_of(*data, 3), *shared);
  auto b = make_replica("mlp", shape_of(*data, 3), *shared);
  const auto x = data->train.images.slice(0, 0, 16);
  const auto y = data->train.labels.slice(0, 0, 16);
  torch::nn::functional::cross_entropy(a->forward(x), y).backward();
  for (auto& p : a->parameters()) EXPECT_TRUE(p.grad().defined());
  for (auto& p : b->parameters()) EXPECT_FALSE(p.grad().defined()) << "b got a's gradient";
  for (auto& p : shared->parameters()) EXPECT_FALSE(p.grad().defined()) << "the shared model got a's gradient";
  // b's own backward on other samples: a's gradients do not move.
  const auto a_grad = a->parameters()[0].grad().clone();
  torch::nn::functional::cross_entropy(b->forward(data->train.images.slice(0, 16, 32)),
                                       data->train.labels.slice(0, 16, 32))
      .backward();
  EXPECT_TRUE(torch::equal(a->parameters()[0].grad(), a_grad));
  EXPECT_FALSE(torch::equal(b->parameters()[0].grad(), a_grad));
}

TEST(Hogwild, RefusesAReplicaOfAnotherModel) {
  const auto data = fashion();
  auto shared = models::make_model("mlp", shape_of(*data, 3));
  EXPECT_THROW(make_replica("lenet5", shape_of(*data, 3), *shared), Error);
}

// Workers join and are asked back in the middle of epochs, again and again:
// every minibatch of every epoch is trained on exactly once.
TEST(Hogwild, GrowingAndShrinkingMidEpochLosesNoMinibatchAndRepeatsNone) {
  constexpr int kEpochs = 3;
  auto trainer = std::make_shared<HogwildTrainer>(
      fashion(), HogwildOptions().model("mlp").epochs(kEpochs).batch_size(16).limit(4000).max_workers(4));
  std::atomic<bool> done{false};
  std::atomic<int> visits{0}, left_mid_epoch{0};
  std::vector<std::thread> helpers;
  for (int h = 0; h < 3; ++h) {
    helpers.emplace_back([&, h] {
      std::minstd_rand rng(static_cast<unsigned>(h) + 11);
      while (!done.load()) {
        CoreLease lease(h);
        std::thread asker([&] {
          std::this_thread::sleep_for(std::chrono::milliseconds(2 + rng() % 25));
          lease.ask_to_return();
        });
        trainer->help(lease);
        asker.join();
        visits.fetch_add(1);
        if (!done.load()) left_mid_epoch.fetch_add(1);
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 5));
      }
    });
  }
  const auto result = trainer->run();
  done.store(true);
  for (auto& t : helpers) t.join();

  ASSERT_EQ(result.status, JobStatus::done);
  ASSERT_EQ(result.epochs.size(), static_cast<std::size_t>(kEpochs));
  for (const auto& e : result.epochs) {
    EXPECT_EQ(e.minibatches, 250) << "epoch " << e.epoch;  // 4000 / 16
    EXPECT_EQ(e.not_once, 0) << "epoch " << e.epoch << ": minibatches lost or repeated";
    EXPECT_EQ(e.samples, 4000);
  }
  EXPECT_GE(result.peak_workers, 2);
  EXPECT_GT(left_mid_epoch.load(), kEpochs) << "workers did not come and go during the epochs";
  EXPECT_GT(result.test_top1, 0.5);  // it learned something all the same
}

TEST(Hogwild, AnElasticJobGetsTheCoresTheOtherJobsLeave) {
  // Two virtual cores: a 150 ms job holds one, then the Hogwild job gets both.
  packtrain::testing::VirtualRun r(2);
  auto job = make_hogwild_job(fashion(), HogwildOptions().model("mlp").epochs(4).batch_size(32).limit(6000), 1, 2);
  job.cost = 1;  // the sleeping job starts first either way
  r.runner->add(job);
  r.runner->add(packtrain::testing::sleeping_job("other", 150, 100));
  struct Sizes : EventSink {
    std::vector<int> sizes;
    void on_event(const JobEvent& e) override {
      if (e.kind == EventKind::resized) sizes.push_back(static_cast<int>(e.cores.size()));
    }
  } sizes;
  r.options.sinks = {&sizes};
  const auto summary = r.runner->run(r.options);
  ASSERT_EQ(summary.done, 2) << summary.jobs[0].message;
  const auto& m = summary.jobs[0].metrics;
  EXPECT_EQ(m.at("peak_workers").get<int>(), 2);
  EXPECT_EQ(m.at("minibatches_not_once").get<int>(), 0);
  EXPECT_EQ(m.at("epochs_completed").get<int>(), 4);
  ASSERT_FALSE(sizes.sizes.empty());
  EXPECT_EQ(sizes.sizes.front(), 2);  // lent once the other job ended
  EXPECT_EQ(sizes.sizes.back(), 1);   // and given back at the end
}

// A helper whose minibatches throw (autograd is off on its thread only, so
// its backward() fails) used to keep its work-pool slot, and the job's own
// thread waited for that slot's minibatches forever. Now the job ends
// failed with the helper's message within a second, and the other jobs of
// the run finish.
TEST(Hogwild, AHelperThatThrowsFailsItsJobWithItsMessageAndTheOthersFinish) {
  const auto data = fashion();
  const auto r = packtrain::testing::run_beside_two_others(
      "hogwild-with-a-throwing-helper",
      [data](JobContext& ctx) {
        // 50 epochs: were the failure not seen, the job would run for minutes.
        auto trainer = std::make_shared<HogwildTrainer>(
            data, HogwildOptions().model("mlp").epochs(50).batch_size(16).limit(4000).max_workers(ctx.max_cores()));
        ctx.lend_cores_to([trainer](const CoreLease& lease) {
          torch::NoGradGuard no_grad;
          trainer->help(lease);
        });
        const auto result = trainer->run(&ctx);
        return JobOutcome{.status = result.status, .metrics = result.metrics()};
      },
      "the throwing helper hung its job");
  ASSERT_EQ(r.jobs, 3u);
  EXPECT_EQ(r.job.status, JobStatus::failed);
  EXPECT_NE(r.job.message.find("does not require grad"), std::string::npos) << r.job.message;
  EXPECT_LT(r.job.seconds(), 1.0) << "the job took " << r.job.seconds() << " s to fail";
  EXPECT_EQ(r.others_done, 2);
}

TEST(Hogwild, AHelperAskedBackWhileWaitingForTheNextRoundReturnsAtOnce) {
  HogwildTrainer trainer(fashion(), HogwildOptions().model("mlp").epochs(1).limit(64).max_workers(2));
  CoreLease lease(0);
  std::atomic<pid_t> helper_thread{0};
  // Nothing is dealt before run(): the helper joins and sleeps until the next round.
  auto helper = std::async(std::launch::async, [&] {
    helper_thread = this_thread_id();
    trainer.help(lease);
  });
  const auto deadline = std::chrono::steady_clock::now() + packtrain::testing::kPatience;
  while (trainer.workers() < 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(trainer.workers(), 1) << "the helper did not join";
  EXPECT_TRUE(sleeps_soon(helper_thread)) << "the helper did not sleep waiting for a round";
  lease.ask_to_return();
  if (helper.wait_for(packtrain::testing::kPatience) != std::future_status::ready) {
    std::fprintf(stderr, "a helper asked back did not return: the ask did not wake it\n");
    std::abort();  // the helper cannot be joined
  }
  helper.get();
  EXPECT_EQ(trainer.workers(), 0);
}

namespace {

// Holds the first LibTorch op of the thread it is installed on until
// `release` opens: a Hogwild helper kept in the middle of a minibatch.
// RecordFunction calls its thread-local callbacks before every op.
struct HeldOp {
  static inline std::atomic<bool> armed{false};
  static inline packtrain::testing::Counter* holding = nullptr;
  static inline std::latch* release = nullptr;

  static std::unique_ptr<at::ObserverContext> on_op(const at::RecordFunction&) {
    if (armed.exchange(false)) {
      holding->add(1);
      release->wait();
    }
    return nullptr;
  }
  // Installed on the calling thread for as long as it lives.
  HeldOp() : handle_(at::addThreadLocalCallback(at::RecordFunctionCallback(&HeldOp::on_op))) {}
  ~HeldOp() { at::removeCallback(handle_); }
  HeldOp(const HeldOp&) = delete;
  HeldOp& operator=(const HeldOp&) = delete;

 private:
  at::CallbackHandle handle_;
};

}  // namespace

// Ctrl-C while the job's thread waits for a helper's last minibatch of the
// epoch (the hand-over): the wait is woken by the stop, the job's thread
// returns `cancelled` with the helper still held, and the job ends so.
TEST(Hogwild, CtrlCDuringAnEpochHandOverEndsTheJobCancelledAtOnce) {
  packtrain::testing::VirtualRun r(2);
  const auto data = fashion();
  packtrain::testing::Counter helper_started, holding, trained_returned;
  std::latch release(1);
  HeldOp::holding = &holding;
  HeldOp::release = &release;
  HeldOp::armed = true;
  JobStatus returned_status = JobStatus::done;
  std::atomic<pid_t> job_thread{0};
  Job job;
  job.name = "hogwild-stopped-mid-hand-over";
  job.spec = {{"name", job.name}};
  job.cores = 2;  // its second core runs the helper from the start
  job.max_cores = 2;
  job.run = [&, data](JobContext& ctx) {
    // Many epochs: the helper gets a minibatch in one of them at the latest.
    auto trainer = std::make_shared<HogwildTrainer>(
        data, HogwildOptions().model("mlp").epochs(1000).batch_size(16).limit(256).max_workers(ctx.max_cores()));
    ctx.lend_cores_to([trainer, &helper_started](const CoreLease& lease) {
      const HeldOp held;
      helper_started.add(1);
      trainer->help(lease);
    });
    EXPECT_TRUE(helper_started.wait_for(1));
    job_thread = this_thread_id();
    const auto result = trainer->run(&ctx);
    returned_status = result.status;
    trained_returned.add(1);
    return JobOutcome{.status = result.status, .metrics = result.metrics()};
  };
  r.runner->add(job);
  auto run = std::async(std::launch::async, [&] { return r.runner->run(r.options); });
  const bool held = holding.wait_for(1);
  // With the helper held, the job's thread trains the epoch's other
  // minibatches, then sleeps in the hand-over, the only place it can.
  const bool in_hand_over = held && sleeps_soon(job_thread);
  r.runner->request_stop();
  // The job's own thread returns while the helper still holds its minibatch.
  const bool returned = trained_returned.wait_for(1);
  release.count_down();
  if (run.wait_for(60s) != std::future_status::ready) {
    std::fprintf(stderr, "the run did not end within 60 s after the stop\n");
    std::abort();  // the hung run cannot be stopped or joined
  }
  const auto summary = run.get();
  ASSERT_TRUE(held) << "the helper never took a minibatch";
  EXPECT_TRUE(in_hand_over) << "the job's thread did not wait for the held minibatch";
  EXPECT_TRUE(returned) << "the stop did not wake the epoch's hand-over";
  EXPECT_EQ(returned_status, JobStatus::cancelled);
  ASSERT_EQ(summary.jobs.size(), 1u);
  EXPECT_EQ(summary.jobs[0].status, JobStatus::cancelled) << summary.jobs[0].message;
  EXPECT_TRUE(summary.interrupted);
}

TEST(Hogwild, RefusesBadOptions) {
  EXPECT_THROW(HogwildTrainer(fashion(), HogwildOptions().model("nope")), Error);
  EXPECT_THROW(HogwildTrainer(fashion(), HogwildOptions().epochs(0)), Error);
  EXPECT_THROW(HogwildTrainer(fashion(), HogwildOptions().lr(0)), Error);
  EXPECT_THROW(make_hogwild_job(fashion(), HogwildOptions(), 2, 1), Error);
  EXPECT_THROW(make_hogwild_job(fashion(), HogwildOptions(), 0, 1), Error);
}
