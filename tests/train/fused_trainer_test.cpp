// Fused folds (models/fused.hpp, train/fused_trainer.hpp): each fold's
// numbers are its own run's, up to float rounding.
#include "toy_data.hpp"

#include <packtrain/data/folds.hpp>
#include <packtrain/models/fused.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/train/fused_trainer.hpp>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace {

using packtrain::JobStatus;
namespace models = packtrain::models;
namespace train = packtrain::train;

const packtrain::data::DatasetSplit& toy() {
  static const auto split = packtrain::testing::toy_split();
  return split;
}

std::shared_ptr<models::Model> toy_model(const std::string& name, std::uint64_t seed) {
  return models::make_model(name, {.channels = 1, .height = 28, .width = 28, .classes = 4, .seed = seed});
}

double max_difference(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>());
  return worst;
}

std::vector<at::Tensor> weights(models::Model& m) {
  std::vector<at::Tensor> out;
  for (const auto& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

class Fused : public ::testing::TestWithParam<std::string> {};

TEST_P(Fused, ForwardIsEachModelsForwardAndCopyIntoGivesEachModelsWeights) {
  const auto name = GetParam();
  std::vector<std::shared_ptr<models::Model>> members;
  for (std::uint64_t s = 1; s <= 3; ++s) members.push_back(toy_model(name, s));
  auto fused = models::make_fused(name, members);
  ASSERT_EQ(fused->size(), 3);
  const auto images = torch::randn({3, 5, 1, 28, 28});
  const auto logits = fused->forward(images);
  ASSERT_EQ(logits.sizes(), (std::vector<std::int64_t>{3, 5, 4}));
  for (int k = 0; k < 3; ++k) {
    const auto own = members[static_cast<std::size_t>(k)]->forward(images[k]);
    EXPECT_LT((logits[k] - own).abs().max().item<double>(), 1e-5) << name << " model " << k;
  }
  // Model 1's weights into a model of another seed make it model 1.
  auto other = toy_model(name, 99);
  fused->copy_into(1, *other);
  EXPECT_EQ(max_difference(weights(*other), weights(*members[1])), 0.0);
}

// Three folds of the toy data, trained fused and each on its own.
TEST_P(Fused, EachFoldTrainsAsItsOwnRunWithinFloatRounding) {
  const auto name = GetParam();
  const auto folds = packtrain::data::kfold_splits(toy().train.labels, 4, 5, true);
  for (const auto optimizer : {train::OptimizerKind::adam, train::OptimizerKind::sgd}) {
    const auto options = train::TrainOptions().epochs(2).batch_size(32).threads(1).optimizer(optimizer);
    std::vector<train::FusedFold> fused;
    std::vector<train::TrainResult> own;
    std::vector<std::vector<at::Tensor>> own_weights;
    for (std::uint64_t k = 0; k < 3; ++k) {
      const auto data = train::TrainData::from_fold(toy(), folds[k]);
      fused.push_back({toy_model(name, 10 + k), data, 20 + k});
      auto model = toy_model(name, 10 + k);
      train::Trainer trainer(model, train::TrainOptions(options).seed(20 + k));
      own.push_back(trainer.fit(data));
      own_weights.push_back(weights(*model));
    }
    std::vector<std::pair<int, int>> reported;
    const auto results = train::fit_fused(
        name, fused, options, {.on_epoch = [&](int k, const train::EpochMetrics& e) { reported.emplace_back(k, e.epoch); }});
    ASSERT_EQ(results.size(), 3u);
    EXPECT_EQ(reported.size(), 6u);  // every fold, every epoch
    for (std::size_t k = 0; k < 3; ++k) {
      SCOPED_TRACE(name + " fold " + std::to_string(k) + (optimizer == train::OptimizerKind::adam ? " adam" : " sgd"));
      EXPECT_EQ(results[k].status, JobStatus::done);
      EXPECT_EQ(results[k].steps, own[k].steps);
      EXPECT_EQ(results[k].epochs_completed, 2);
      ASSERT_EQ(results[k].history.size(), own[k].history.size());
      for (std::size_t e = 0; e < own[k].history.size(); ++e) {
        EXPECT_NEAR(results[k].history[e].train_loss, own[k].history[e].train_loss, 1e-4);
        EXPECT_NEAR(results[k].history[e].val_loss, own[k].history[e].val_loss, 1e-4);
        EXPECT_DOUBLE_EQ(results[k].history[e].lr, own[k].history[e].lr);
      }
      EXPECT_NEAR(results[k].val.top1, own[k].val.top1, 1.0 / 128);  // one sample of 128 at most
      EXPECT_LT(max_difference(weights(*fused[k].model), own_weights[k]), 1e-4);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, Fused, ::testing::Values("mlp", "lenet5"));

TEST(FusedFolds, AFoldThatDivergesEndsDivergedAndTheOthersTrainAsTheirOwnRuns) {
  const auto folds = packtrain::data::kfold_splits(toy().train.labels, 4, 5, true);
  const auto options = train::TrainOptions().epochs(2).batch_size(32).threads(1).optimizer(train::OptimizerKind::adam);
  // Fold 1 trains on images holding a NaN: its loss is NaN at its first step.
  auto poisoned = toy();
  poisoned.train.images = poisoned.train.images.clone();
  poisoned.train.images.index_put_({folds[1].train_idx, 0, 0, 0}, NAN);
  std::vector<train::FusedFold> fused;
  for (std::uint64_t k = 0; k < 3; ++k)
    fused.push_back({toy_model("lenet5", 10 + k), train::TrainData::from_fold(k == 1 ? poisoned : toy(), folds[k]), 20 + k});
  const auto results = train::fit_fused("lenet5", fused, options);
  EXPECT_EQ(results[1].status, JobStatus::diverged);
  EXPECT_EQ(results[1].message.rfind("training loss became", 0), 0u) << results[1].message;
  EXPECT_NE(results[1].message.find("in epoch 1 "), std::string::npos) << results[1].message;
  EXPECT_EQ(results[1].steps, 0);
  for (const std::size_t k : {0u, 2u}) {
    auto model = toy_model("lenet5", 10 + k);
    train::Trainer trainer(model, train::TrainOptions(options).seed(20 + k));
    const auto own = trainer.fit(train::TrainData::from_fold(toy(), folds[k]));
    EXPECT_EQ(results[k].status, JobStatus::done);
    EXPECT_NEAR(results[k].val.loss, own.val.loss, 1e-4) << "fold " << k;
    EXPECT_LT(max_difference(weights(*fused[k].model), weights(*model)), 1e-4) << "fold " << k;
  }
}

// Validation views of other sizes are evaluated fold by fold, with the
// numbers of the folds' own runs.
TEST(FusedFolds, FoldsValidatedOnViewsOfOtherSizesGetTheirOwnRunsMetrics) {
  const auto folds = packtrain::data::kfold_splits(toy().train.labels, 4, 5, true);
  const auto options = train::TrainOptions().epochs(1).batch_size(32).threads(1).optimizer(train::OptimizerKind::adam);
  std::vector<train::FusedFold> fused;
  std::vector<train::TrainResult> own;
  for (std::int64_t k = 0; k < 2; ++k) {
    auto data = train::TrainData::from_fold(toy(), folds[static_cast<std::size_t>(k)]);
    data.val_idx = data.val_idx.narrow(0, 0, 100 + 10 * k);
    fused.push_back({toy_model("lenet5", 10 + k), data, static_cast<std::uint64_t>(20 + k)});
    train::Trainer trainer(toy_model("lenet5", 10 + k), train::TrainOptions(options).seed(20 + k));
    own.push_back(trainer.fit(data));
  }
  const auto results = train::fit_fused("lenet5", fused, options);
  for (std::size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(results[k].val.samples, own[k].val.samples);
    EXPECT_NEAR(results[k].val.loss, own[k].val.loss, 1e-4) << "fold " << k;
    EXPECT_NEAR(results[k].val.top1, own[k].val.top1, 0.011) << "fold " << k;
  }
}

TEST(FusedFolds, WhatCannotFuseIsSaid) {
  const auto plain = train::TrainOptions();
  EXPECT_EQ(train::why_not_fused("lenet5", {100, 100}, plain), "");
  EXPECT_NE(train::why_not_fused("vgg11", {100, 100}, plain).find("does not fuse"), std::string::npos);
  EXPECT_NE(train::why_not_fused("mlp", {100, 99}, plain).find("100 and 99 samples"), std::string::npos);
  EXPECT_NE(train::why_not_fused("mlp", {100}, plain).find("one fold"), std::string::npos);
  EXPECT_NE(train::why_not_fused("mlp", {100, 100}, train::TrainOptions().checkpoint_every(1)).find("checkpoints"),
            std::string::npos);
  std::vector<train::FusedFold> one{{toy_model("mlp", 1), train::TrainData::train_test(toy()), 1}};
  EXPECT_THROW(train::fit_fused("mlp", one, plain), packtrain::Error);
  EXPECT_THROW(models::make_fused("lenet5", {toy_model("mlp", 1), toy_model("mlp", 2)}), packtrain::Error);
}

}  // namespace
