#include "common/test_util.hpp"
#include "packtrain_paths.hpp"
#include "toy_data.hpp"
#include "../data/one_thread.hpp"

#include <packtrain/scheduler/error.hpp>
#include <packtrain/train/checkpoint.hpp>
#include <packtrain/train/trainer.hpp>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <thread>
#include <vector>

namespace {

using packtrain::JobStatus;
using packtrain::testing::TempDir;
namespace models = packtrain::models;
namespace train = packtrain::train;
using train::TrainOptions;

const packtrain::data::DatasetSplit& toy() {
  static const auto split = packtrain::testing::toy_split();
  return split;
}

std::shared_ptr<models::Model> toy_model(const std::string& name, std::uint64_t seed) {
  return models::make_model(name, {.channels = 1, .height = 28, .width = 28, .classes = 4, .seed = seed});
}

TrainOptions quick() { return TrainOptions().epochs(3).batch_size(32).threads(1).seed(7); }

// Everything a run produced, to compare runs bit for bit.
struct Outcome {
  train::TrainResult result;
  std::vector<at::Tensor> state;  // parameters, then buffers
};

Outcome run(const std::string& name, TrainOptions options, std::uint64_t model_seed = 3,
            const train::TrainCallbacks& callbacks = {}) {
  auto model = toy_model(name, model_seed);
  train::Trainer trainer(model, options);
  Outcome out{trainer.fit(train::TrainData::train_test(toy()), callbacks), {}};
  for (const auto& p : model->parameters()) out.state.push_back(p.detach().clone());
  for (const auto& b : model->buffers()) out.state.push_back(b.clone());
  return out;
}

// The same final weights, buffers and optimizer state, bit for bit.
void expect_same_state(const Outcome& a, const Outcome& b, const std::string& what = "") {
  ASSERT_EQ(a.state.size(), b.state.size()) << what;
  for (std::size_t i = 0; i < a.state.size(); ++i) EXPECT_TRUE(a.state[i].equal(b.state[i])) << "tensor " << i << what;
}

void expect_identical(const Outcome& a, const Outcome& b) {
  ASSERT_EQ(a.result.history.size(), b.result.history.size());
  for (std::size_t e = 0; e < a.result.history.size(); ++e) {
    // Bit-identical, not merely close.
    EXPECT_EQ(a.result.history[e].train_loss, b.result.history[e].train_loss) << "epoch " << e + 1;
    EXPECT_EQ(a.result.history[e].val_loss, b.result.history[e].val_loss) << "epoch " << e + 1;
    EXPECT_EQ(a.result.history[e].val_top1, b.result.history[e].val_top1) << "epoch " << e + 1;
  }
  expect_same_state(a, b);
}

// A resumed run ends where the uninterrupted one did: validation and state, bit for bit.
void expect_same_end(const Outcome& resumed, const Outcome& whole, train::OptimizerKind optimizer) {
  EXPECT_EQ(resumed.result.val.loss, whole.result.val.loss);
  EXPECT_EQ(resumed.result.val.top1, whole.result.val.top1);
  expect_same_state(resumed, whole, std::string(" optimizer ") + std::string(to_string(optimizer)));
}

TEST(Trainer, LearnsAToyProblem) {
  const auto out = run("mlp", quick());
  EXPECT_EQ(out.result.status, JobStatus::done);
  EXPECT_EQ(out.result.epochs_completed, 3);
  EXPECT_EQ(out.result.steps, 3 * 16);  // 512 samples / 32
  EXPECT_GT(out.result.val.top1, 0.95);
  EXPECT_EQ(out.result.val.samples, 128);
  EXPECT_LT(out.result.history.back().train_loss, out.result.history.front().train_loss);
}

TEST(Trainer, SameSeedAndOptionsGiveBitIdenticalResults) {
  for (const auto optimizer : {train::OptimizerKind::sgd, train::OptimizerKind::adam}) {
    auto options = quick().optimizer(optimizer);
    expect_identical(run("lenet5", options), run("lenet5", options));
  }
  // Gathering batches on the helper thread or inline changes nothing.
  expect_identical(run("mlp", quick().prefetch_on_one_core(true)), run("mlp", quick().prefetch(false)));
}

TEST(Trainer, OtherSeedsGiveOtherResults) {
  const auto base = run("mlp", quick());
  EXPECT_NE(run("mlp", quick().seed(8)).result.history[0].train_loss, base.result.history[0].train_loss);
  EXPECT_NE(run("mlp", quick(), /*model_seed=*/4).result.history[0].train_loss, base.result.history[0].train_loss);
}

TEST(Trainer, ConcurrentRunsEqualRunsOneAtATime) {
  const auto a_alone = run("lenet5", quick().seed(1), 11);
  const auto b_alone = run("mlp", quick().seed(2), 12);
  Outcome a_together, b_together;
  std::thread a([&] { a_together = run("lenet5", quick().seed(1), 11); });
  std::thread b([&] { b_together = run("mlp", quick().seed(2), 12); });
  a.join();
  b.join();
  expect_identical(a_alone, a_together);
  expect_identical(b_alone, b_together);
}

TEST(Trainer, ResumedRunEqualsTheUninterruptedOne) {
  for (const auto optimizer : {train::OptimizerKind::sgd, train::OptimizerKind::adam}) {
    TempDir dir;
    auto options = quick().epochs(4).optimizer(optimizer).schedule(train::Schedule::warm).checkpoint_dir(dir.path().string());
    const auto whole = run("lenet5", TrainOptions(options).checkpoint_epochs({2}));
    ASSERT_TRUE(std::filesystem::exists(train::checkpoint_path(dir.path(), 2)));
    // Another initial model: everything must come from the checkpoint.
    const auto resumed = run("lenet5", TrainOptions(options).resume_from(train::checkpoint_path(dir.path(), 2).string()), 99);
    EXPECT_EQ(resumed.result.epochs_completed, 4);
    EXPECT_EQ(resumed.result.steps, 2 * 16);
    ASSERT_EQ(resumed.result.history.size(), 2u);
    EXPECT_EQ(resumed.result.history[0].epoch, 3);
    EXPECT_EQ(resumed.result.history[1].train_loss, whole.result.history[3].train_loss);
    expect_same_end(resumed, whole, optimizer);
  }
}

// A TorchScript model (its batch norm's running statistics are buffers of
// the module) checkpoints and resumes as a zoo model does: the resumed run
// ends with the uninterrupted one's bits, though it started from zeros.
TEST(Trainer, ATorchScriptModelResumesFromItsCheckpointToTheUninterruptedBits) {
  TempDir dir;
  const auto data = packtrain::data::shared_dataset("fashion-mnist");
  const train::TrainData part{data->train, torch::arange(512, torch::kInt64), data->test, torch::arange(128, torch::kInt64)};
  const auto file = std::string(PACKTRAIN_TORCHSCRIPT_FIXTURES) + "/lenet5_bn.pt";
  const auto fit = [&](TrainOptions options, bool zeroed) {
    auto model = models::make_model(file, {.channels = 1, .height = 28, .width = 28, .classes = 10});
    if (zeroed) {
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) p.zero_();
      for (auto& b : model->buffers()) b.zero_();
    }
    train::Trainer trainer(model, options);
    Outcome out{trainer.fit(part), {}};
    for (const auto& p : model->parameters()) out.state.push_back(p.detach().clone());
    for (const auto& b : model->buffers()) out.state.push_back(b.clone());
    return out;
  };
  const auto options = quick().epochs(3).checkpoint_dir(dir.path().string());
  const auto whole = fit(TrainOptions(options).checkpoint_epochs({1}), false);
  ASSERT_EQ(whole.result.status, JobStatus::done) << whole.result.message;
  const auto resumed = fit(TrainOptions(options).resume_from(train::checkpoint_path(dir.path(), 1).string()), true);
  EXPECT_EQ(resumed.result.epochs_completed, 3);
  expect_same_end(resumed, whole, train::OptimizerKind::sgd);
}

TEST(Trainer, PreemptedMidEpochResumesToTheUninterruptedBits) {
  for (const auto optimizer : {train::OptimizerKind::sgd, train::OptimizerKind::adam}) {
    TempDir dir;
    const auto saved = dir / "preempted.pt";
    auto options = quick().epochs(3).optimizer(optimizer).schedule(train::Schedule::cosine).preempt_checkpoint(saved.string());
    const auto whole = run("lenet5", options);
    // Preempted before step 21: epoch 2 (16 steps an epoch) after its 5th batch.
    int calls = 0;
    train::TrainCallbacks stop;
    stop.should_stop = [&] { return ++calls > 21; };
    stop.should_checkpoint = [] { return true; };
    const auto first = run("lenet5", options, 3, stop);
    EXPECT_EQ(first.result.status, JobStatus::cancelled);
    ASSERT_TRUE(first.result.checkpointed_at.has_value());
    EXPECT_EQ(first.result.checkpointed_at->epoch, 1);
    EXPECT_EQ(first.result.checkpointed_at->batch, 5);
    EXPECT_EQ(first.result.metrics()["checkpointed_at"]["batches_per_epoch"], 16);
    EXPECT_NE(first.result.message.find("preempted in epoch 2 after batch 5 of 16"), std::string::npos)
        << first.result.message;
    ASSERT_TRUE(std::filesystem::exists(saved));
    // Another initial model: everything must come from the checkpoint.
    const auto resumed = run("lenet5", TrainOptions(options).resume_from(saved.string()), 99);
    EXPECT_EQ(resumed.result.status, JobStatus::done);
    EXPECT_EQ(resumed.result.steps, 3 * 16 - 21);
    ASSERT_TRUE(resumed.result.resumed_at.has_value());
    EXPECT_EQ(resumed.result.resumed_at->batch, 5);
    ASSERT_EQ(resumed.result.history.size(), 2u);
    // The interrupted epoch's mean loss counts the batches before the checkpoint too.
    EXPECT_EQ(resumed.result.history[0].train_loss, whole.result.history[1].train_loss);
    EXPECT_EQ(resumed.result.history[1].train_loss, whole.result.history[2].train_loss);
    expect_same_end(resumed, whole, optimizer);
    // Superseded by the run's end.
    EXPECT_FALSE(std::filesystem::exists(saved));
  }
}

TEST(Trainer, StopWithoutACheckpointRequestSavesNothing) {
  TempDir dir;
  const auto saved = dir / "preempted.pt";
  train::TrainCallbacks stop;
  stop.should_stop = [] { return true; };
  stop.should_checkpoint = [] { return false; };  // Ctrl-C, not a preemption
  const auto out = run("mlp", quick().preempt_checkpoint(saved.string()), 3, stop);
  EXPECT_EQ(out.result.status, JobStatus::cancelled);
  EXPECT_FALSE(out.result.checkpointed_at.has_value());
  EXPECT_FALSE(std::filesystem::exists(saved));
}

TEST(Trainer, HugeLearningRateDivergesWithoutThrowing) {
  train::TrainResult result;
  ASSERT_NO_THROW(result = run("mlp", quick().lr(1e8).momentum(0.0)).result);
  EXPECT_EQ(result.status, JobStatus::diverged);
  EXPECT_NE(result.message.find("loss became"), std::string::npos) << result.message;
  EXPECT_LT(result.epochs_completed, 3);
}

TEST(Trainer, NaNInputsDivergeWithoutThrowing) {
  auto split = packtrain::testing::toy_split(64, 16);
  split.train.images[5][0][3][3] = std::numeric_limits<float>::quiet_NaN();
  auto model = toy_model("lenet5", 1);
  train::Trainer trainer(model, quick());
  train::TrainResult result;
  ASSERT_NO_THROW(result = trainer.fit(train::TrainData::train_test(split)));
  EXPECT_EQ(result.status, JobStatus::diverged);
  EXPECT_EQ(result.epochs_completed, 0);
  EXPECT_TRUE(std::isnan(result.val.top1));
}

TEST(Trainer, ShouldStopCancelsBetweenBatches) {
  int calls = 0;
  train::TrainCallbacks callbacks;
  callbacks.should_stop = [&] { return ++calls > 20; };
  const auto out = run("mlp", quick(), 3, callbacks);
  EXPECT_EQ(out.result.status, JobStatus::cancelled);
  EXPECT_EQ(out.result.steps, 20);
  EXPECT_EQ(out.result.epochs_completed, 1);  // 16 steps an epoch: the first epoch was complete
  ASSERT_EQ(out.result.history.size(), 1u);
  EXPECT_EQ(out.result.val.top1, out.result.history[0].val_top1);
}

TEST(Trainer, AfterStepRunsAfterEveryStepAndCanMaskWeights) {
  std::int64_t calls = 0;
  train::TrainCallbacks callbacks;
  callbacks.after_step = [&](torch::nn::Module& module) {
    ++calls;
    torch::NoGradGuard no_grad;
    // A pruning mask: the first 100 rows of fc1 stay zero.
    module.named_parameters()["fc1.weight"].narrow(0, 0, 100).zero_();
  };
  auto model = toy_model("mlp", 3);
  train::Trainer trainer(model, quick());
  const auto result = trainer.fit(train::TrainData::train_test(toy()), callbacks);
  EXPECT_EQ(calls, result.steps);
  const auto weight = model->named_parameters()["fc1.weight"];
  EXPECT_EQ(weight.narrow(0, 0, 100).abs().sum().item<double>(), 0.0);
  EXPECT_GT(weight.narrow(0, 100, 200).abs().sum().item<double>(), 0.0);
  EXPECT_GT(result.val.top1, 0.9);  // the other units still learn
}

TEST(Trainer, OnEpochReportsEveryEpoch) {
  std::vector<train::EpochMetrics> seen;
  train::TrainCallbacks callbacks;
  callbacks.on_epoch = [&](const train::EpochMetrics& m) { seen.push_back(m); };
  const auto out = run("mlp", quick().epochs(4), 3, callbacks);
  ASSERT_EQ(seen.size(), 4u);
  for (int e = 0; e < 4; ++e) {
    EXPECT_EQ(seen[e].epoch, e + 1);
    EXPECT_EQ(seen[e].val_top1, out.result.history[e].val_top1);
    EXPECT_GE(seen[e].val_top5, seen[e].val_top1);
    EXPECT_GE(seen[e].seconds, 0.0);
    EXPECT_TRUE(std::isfinite(seen[e].train_loss));
    // Cosine over the whole run: the rate falls from epoch to epoch and is near 0 at the end.
    if (e > 0) {
      EXPECT_LT(seen[e].lr, seen[e - 1].lr);
    }
  }
  EXPECT_LT(seen.back().lr, 0.001);
  EXPECT_GT(seen.front().lr, 0.02);
}

TEST(Trainer, WritesCheckpointsEveryNAndAtListedEpochs) {
  TempDir dir;
  run("mlp", quick().epochs(4).checkpoint_dir(dir.path().string()).checkpoint_every(2).checkpoint_epochs({0, 3}));
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"epoch-0000.pt", "epoch-0002.pt", "epoch-0003.pt", "epoch-0004.pt"}));
  EXPECT_EQ(train::latest_checkpoint(dir.path()), train::checkpoint_path(dir.path(), 4));
  // Epoch 0 holds the initial weights: those of a fresh model of the same seed.
  auto initial = toy_model("mlp", 3);
  auto loaded = toy_model("mlp", 50);
  EXPECT_EQ(train::load_checkpoint(train::checkpoint_path(dir.path(), 0), *loaded, nullptr), 0);
  const auto a = initial->parameters(), b = loaded->parameters();
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].equal(b[i]));
}

TEST(Trainer, ThreadsOptionSetsTheCallingThreadsBudget) {
  for (const int threads : {1, 2}) {
    int seen = 0;
    std::thread job([&] {
      run("mlp", quick().epochs(1).threads(threads));
      seen = at::get_num_threads();
    });
    job.join();
    EXPECT_EQ(seen, threads);
  }
}

TEST(Trainer, BadInputsAreErrorsBeforeTraining) {
  EXPECT_THROW(train::Trainer(toy_model("mlp", 1), quick().epochs(0)), packtrain::Error);
  EXPECT_THROW(train::Trainer(toy_model("mlp", 1), quick().checkpoint_every(1)), packtrain::Error);
  EXPECT_THROW(train::Trainer(toy_model("mlp", 1), quick().lr(-1)), packtrain::Error);
  // A model built for other inputs.
  auto color = models::make_model("lenet5", {.channels = 3, .height = 32, .width = 32, .classes = 4});
  train::Trainer mismatched(color, quick());
  EXPECT_THROW(mismatched.fit(train::TrainData::train_test(toy())), packtrain::Error);
  // Too few classes for the labels.
  train::Trainer narrow(models::make_model("mlp", {.classes = 3}), quick());
  EXPECT_THROW(narrow.fit(train::TrainData::train_test(toy())), packtrain::Error);
  // A checkpoint that is not there.
  train::Trainer resuming(toy_model("mlp", 1), quick().resume_from("/nonexistent/epoch-0001.pt"));
  EXPECT_THROW(resuming.fit(train::TrainData::train_test(toy())), packtrain::Error);
}

TEST(Trainer, FoldViewsTrainAndValidateOnTheTrainingPart) {
  const auto folds = packtrain::data::kfold_splits(toy().train.labels, 4, 5, true);
  auto data = train::TrainData::from_fold(toy(), folds[1]);
  train::Trainer trainer(toy_model("mlp", 1), quick().epochs(1));
  const auto result = trainer.fit(data);
  EXPECT_EQ(result.val.samples, 128);  // 512 / 4
  EXPECT_EQ(result.steps, 12);         // 384 / 32
}

TEST(Trainer, MetricsJsonCarriesTheFigures) {
  const auto out = run("mlp", quick().epochs(1));
  const auto json = out.result.metrics();
  EXPECT_EQ(json["val_top1"].get<double>(), out.result.val.top1);
  EXPECT_EQ(json["epochs_completed"].get<int>(), 1);
  train::TrainResult empty;
  empty.val.top1 = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(empty.metrics()["val_top1"].is_null());
}

}  // namespace
