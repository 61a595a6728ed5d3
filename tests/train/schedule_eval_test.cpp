// Learning-rate schedules, option parsing, evaluation and checkpoints.
#include "common/test_util.hpp"

#include <packtrain/models/models.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/train/checkpoint.hpp>
#include <packtrain/train/evaluate.hpp>
#include <packtrain/train/options.hpp>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace {

namespace train = packtrain::train;
using train::Schedule;
using train::scheduled_lr;

TEST(Schedule, NoneKeepsTheBaseRate) {
  for (const std::int64_t s : {0, 50, 99}) EXPECT_EQ(scheduled_lr(Schedule::none, 0.1, s, 100), 0.1);
}

TEST(Schedule, StepDropsTenfoldAtHalfAndThreeQuarters) {
  EXPECT_DOUBLE_EQ(scheduled_lr(Schedule::step, 0.1, 49, 100), 0.1);
  EXPECT_DOUBLE_EQ(scheduled_lr(Schedule::step, 0.1, 50, 100), 0.01);
  EXPECT_DOUBLE_EQ(scheduled_lr(Schedule::step, 0.1, 74, 100), 0.01);
  EXPECT_NEAR(scheduled_lr(Schedule::step, 0.1, 75, 100), 0.001, 1e-15);
}

TEST(Schedule, CosineAnnealsOnceAcrossTheWholeRun) {
  const std::int64_t total = 1000;
  EXPECT_DOUBLE_EQ(scheduled_lr(Schedule::cosine, 0.1, 0, total), 0.1);
  EXPECT_NEAR(scheduled_lr(Schedule::cosine, 0.1, total / 2, total), 0.05, 1e-12);
  EXPECT_NEAR(scheduled_lr(Schedule::cosine, 0.1, total, total), 0.0, 1e-12);
  for (std::int64_t s = 1; s < total; ++s)
    ASSERT_LT(scheduled_lr(Schedule::cosine, 0.1, s, total), scheduled_lr(Schedule::cosine, 0.1, s - 1, total)) << s;
}

TEST(Schedule, WarmRestartsInCyclesOfDoublingLength) {
  const std::int64_t total = 700;  // cycles of 100, 200 and 400 steps
  int restarts = 0;
  for (std::int64_t s = 1; s < total; ++s) {
    const double now = scheduled_lr(Schedule::warm, 0.1, s, total);
    const double before = scheduled_lr(Schedule::warm, 0.1, s - 1, total);
    if (now > before) {
      ++restarts;
      EXPECT_TRUE(s == 100 || s == 300) << "restart at step " << s;
      EXPECT_DOUBLE_EQ(now, 0.1);
    }
  }
  EXPECT_EQ(restarts, 2);
  EXPECT_NEAR(scheduled_lr(Schedule::warm, 0.1, 50, total), 0.05, 1e-12);   // half of cycle 1
  EXPECT_NEAR(scheduled_lr(Schedule::warm, 0.1, 200, total), 0.05, 1e-12);  // half of cycle 2
  EXPECT_NEAR(scheduled_lr(Schedule::warm, 0.1, total - 1, total), 0.0, 1e-5);  // the run ends at a cycle's bottom
}

TEST(Options, NamesParseBothWaysAndUnknownOnesAreErrors) {
  for (const auto& name : train::schedule_names()) EXPECT_EQ(train::to_string(train::schedule_from_string(name)), name);
  EXPECT_EQ(train::optimizer_from_string("adam"), train::OptimizerKind::adam);
  EXPECT_THROW(train::schedule_from_string("linear"), packtrain::Error);
  EXPECT_THROW(train::optimizer_from_string("rmsprop"), packtrain::Error);
}

TEST(Options, DefaultsDependOnTheOptimizer) {
  EXPECT_EQ(train::TrainOptions().effective_lr(), 0.05);
  EXPECT_EQ(train::TrainOptions().effective_weight_decay(), 5e-4);
  const auto adam = train::TrainOptions().optimizer(train::OptimizerKind::adam);
  EXPECT_EQ(adam.effective_lr(), 0.001);
  EXPECT_EQ(adam.effective_weight_decay(), 0.0);
  EXPECT_EQ(train::TrainOptions().lr(0.2).weight_decay(0.0).effective_lr(), 0.2);
  EXPECT_THROW(train::TrainOptions().checkpoint_epochs({7}).checkpoint_dir("x").validate(), packtrain::Error);
}

// A fake classifier whose logits come from the input: image value v puts
// logit 10 on class v + 1 and 9 on class v, so top-1 always misses and top-5 always hits.
struct ShiftedOracle : torch::nn::Module {
  at::Tensor forward(const at::Tensor& images) {
    const auto v = images.flatten(1).select(1, 0).to(torch::kLong);
    auto logits = torch::zeros({images.size(0), 10});
    logits.scatter_(1, v.add(1).remainder(10).unsqueeze(1), 10.0);
    logits.scatter_(1, v.unsqueeze(1), 9.0);
    return logits;
  }
};

TEST(Evaluate, CountsTopOneAndTopFiveAndAveragesTheLoss) {
  const std::int64_t n = 25;
  const auto labels = torch::arange(n, torch::kInt64).remainder(10);
  packtrain::data::Dataset part{labels.to(torch::kFloat32).view({n, 1, 1, 1}), labels};
  ShiftedOracle oracle;
  oracle.train();
  const auto m = train::evaluate(oracle, part, torch::arange(n, torch::kInt64), /*batch_size=*/7);
  EXPECT_EQ(m.samples, n);
  EXPECT_EQ(m.top1, 0.0);
  EXPECT_EQ(m.top5, 1.0);
  // Cross-entropy of the second-best logit: log(e^10 + e^9 + 8) - 9.
  EXPECT_NEAR(m.loss, std::log(std::exp(10.0) + std::exp(9.0) + 8.0) - 9.0, 1e-5);
  EXPECT_TRUE(oracle.is_training()) << "evaluate puts the mode back";
  // A view: only the samples it names count.
  const auto some = train::evaluate(oracle, part, torch::tensor({0, 3}, torch::kInt64));
  EXPECT_EQ(some.samples, 2);
}

TEST(Evaluate, NonFiniteLogitsGiveNaNNotAnException) {
  auto model = packtrain::models::make_model("mlp", {.classes = 10});
  {
    torch::NoGradGuard no_grad;
    model->parameters()[0].fill_(std::numeric_limits<float>::quiet_NaN());
  }
  packtrain::data::Dataset part{torch::randn({8, 1, 28, 28}), torch::zeros({8}, torch::kInt64)};
  train::EvalMetrics m;
  ASSERT_NO_THROW(m = train::evaluate(*model, part, torch::arange(8, torch::kInt64)));
  EXPECT_TRUE(std::isnan(m.loss));
  const auto empty = train::evaluate(*model, part, torch::empty({0}, torch::kInt64));
  EXPECT_EQ(empty.samples, 0);
  EXPECT_TRUE(std::isnan(empty.top1));
}

TEST(Checkpoint, RoundTripsWeightsBuffersAndOptimizerState) {
  packtrain::testing::TempDir dir;
  const packtrain::models::ModelOptions o{.channels = 3, .height = 32, .width = 32, .classes = 5,
                                          .width_multiplier = 0.25, .seed = 1};
  auto model = packtrain::models::make_model("mobilenetv2", o);
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  model->train();
  torch::nn::functional::cross_entropy(model->forward(torch::randn({4, 3, 32, 32})), torch::tensor({0, 1, 2, 3})).backward();
  optimizer.step();  // momentum buffers and batch-norm running statistics now differ from a fresh model's
  train::save_checkpoint(train::checkpoint_path(dir.path(), 6), *model, &optimizer, 6);

  auto other = packtrain::models::make_model("mobilenetv2", {.channels = 3, .height = 32, .width = 32, .classes = 5,
                                                             .width_multiplier = 0.25, .seed = 2});
  torch::optim::SGD other_optimizer(other->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  EXPECT_EQ(train::load_checkpoint(train::checkpoint_path(dir.path(), 6), *other, &other_optimizer), 6);
  const auto a = model->parameters(), b = other->parameters();
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].equal(b[i]));
  const auto ba = model->buffers(), bb = other->buffers();
  for (std::size_t i = 0; i < ba.size(); ++i) EXPECT_TRUE(ba[i].equal(bb[i])) << "buffer " << i;
  // Same momentum: one more identical step gives identical weights.
  for (auto* m : {model.get(), other.get()}) m->zero_grad();
  const auto x = torch::randn({4, 3, 32, 32});
  torch::nn::functional::cross_entropy(model->forward(x), torch::tensor({0, 1, 2, 3})).backward();
  torch::nn::functional::cross_entropy(other->forward(x), torch::tensor({0, 1, 2, 3})).backward();
  optimizer.step();
  other_optimizer.step();
  EXPECT_TRUE(model->parameters()[0].equal(other->parameters()[0]));
}

TEST(Checkpoint, LoadingIntoAnotherModelIsAnError) {
  packtrain::testing::TempDir dir;
  const auto path = train::checkpoint_path(dir.path(), 1);
  train::save_checkpoint(path, *packtrain::models::make_model("mlp", {.classes = 10}), nullptr, 1);
  EXPECT_THROW(train::load_checkpoint(path, *packtrain::models::make_model("lenet5", {.classes = 10}), nullptr),
               packtrain::Error);
  EXPECT_THROW(train::load_checkpoint(path, *packtrain::models::make_model("mlp", {.classes = 7}), nullptr),
               packtrain::Error);
  auto mlp = packtrain::models::make_model("mlp", {.classes = 10});
  torch::optim::SGD optimizer(mlp->parameters(), torch::optim::SGDOptions(0.1));
  EXPECT_THROW(train::load_checkpoint(path, *mlp, &optimizer), packtrain::Error);  // saved without optimizer state
  EXPECT_EQ(train::load_checkpoint(path, *mlp, nullptr), 1);
  EXPECT_THROW(train::load_checkpoint(dir / "epoch-0002.pt", *mlp, nullptr), packtrain::Error);
  packtrain::testing::write_file(dir / "epoch-0003.pt", "not a checkpoint");
  EXPECT_THROW(train::load_checkpoint(dir / "epoch-0003.pt", *mlp, nullptr), packtrain::Error);
}

TEST(Checkpoint, UnwritableFolderIsAnError) {
  auto mlp = packtrain::models::make_model("mlp", {.classes = 10});
  EXPECT_THROW(train::save_checkpoint("/proc/packtrain-no/epoch-0001.pt", *mlp, nullptr, 1), packtrain::Error);
}

}  // namespace
