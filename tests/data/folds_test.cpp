#include <packtrain/data/folds.hpp>
#include <packtrain/scheduler/error.hpp>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

namespace {

namespace data = packtrain::data;

// Unbalanced labels: class c has 10 + 7c samples, interleaved.
at::Tensor unbalanced_labels(int classes) {
  std::vector<std::int64_t> labels;
  for (int c = 0; c < classes; ++c)
    for (int i = 0; i < 10 + 7 * c; ++i) labels.push_back(c);
  auto t = torch::tensor(labels, torch::kInt64);
  return t.index_select(0, torch::randperm(t.size(0), at::make_generator<at::CPUGeneratorImpl>(3), torch::kInt64));
}

void expect_partition(const std::vector<data::Fold>& folds, std::int64_t n, int k) {
  ASSERT_EQ(static_cast<int>(folds.size()), k);
  auto seen = torch::zeros({n}, torch::kInt64);
  for (const auto& fold : folds) {
    seen.index_add_(0, fold.val_idx, torch::ones({fold.val_idx.size(0)}, torch::kInt64));
    // Each val set has N/k samples, give or take one.
    EXPECT_LE(std::abs(static_cast<double>(fold.val_idx.size(0)) - static_cast<double>(n) / k), 1.0);
    // train = everything else, both ascending.
    EXPECT_EQ(fold.train_idx.size(0) + fold.val_idx.size(0), n);
    const auto joined = std::get<0>(torch::cat({fold.train_idx, fold.val_idx}).sort());
    EXPECT_TRUE(joined.equal(torch::arange(n, torch::kInt64)));
    EXPECT_TRUE(fold.val_idx.equal(std::get<0>(fold.val_idx.sort())));
  }
  // Every sample is validated exactly once over the k folds.
  EXPECT_TRUE(seen.eq(1).all().item<bool>());
}

TEST(KFoldSplits, PlainFoldsPartitionTheSamples) {
  for (const int k : {2, 3, 5, 7}) {
    const std::int64_t n = 103;
    const auto labels = torch::zeros({n}, torch::kInt64);
    expect_partition(data::kfold_splits(labels, k, 42, false), n, k);
  }
}

TEST(KFoldSplits, StratifiedFoldsKeepClassShares) {
  const auto labels = unbalanced_labels(5);  // 10, 17, 24, 31, 38 samples
  const int k = 4;
  const auto folds = data::kfold_splits(labels, k, 7, true);
  expect_partition(folds, labels.size(0), k);
  const auto totals = torch::bincount(labels, {}, 5);
  for (const auto& fold : folds) {
    const auto counts = torch::bincount(labels.index_select(0, fold.val_idx), {}, 5);
    for (int c = 0; c < 5; ++c)
      EXPECT_LE(std::abs(counts[c].item<double>() - totals[c].item<double>() / k), 1.0) << "class " << c;
  }
}

TEST(KFoldSplits, PlainFoldsDoNotKeepClassesTogether) {
  // Sorted labels: a split by position (no shuffle) would put whole classes in one fold.
  const auto labels = torch::arange(100, torch::kInt64).div(25, "floor");
  const auto folds = data::kfold_splits(labels, 4, 1, false);
  const auto counts = torch::bincount(labels.index_select(0, folds[0].val_idx), {}, 4);
  EXPECT_LT(counts.max().item<std::int64_t>(), 25);
}

TEST(KFoldSplits, SameSeedSameFoldsOtherSeedOtherFolds) {
  const auto labels = unbalanced_labels(3);
  for (const bool stratified : {false, true}) {
    const auto a = data::kfold_splits(labels, 5, 11, stratified);
    const auto b = data::kfold_splits(labels, 5, 11, stratified);
    const auto c = data::kfold_splits(labels, 5, 12, stratified);
    bool any_differs = false;
    for (int f = 0; f < 5; ++f) {
      EXPECT_TRUE(a[f].val_idx.equal(b[f].val_idx));
      any_differs |= !a[f].val_idx.equal(c[f].val_idx);
    }
    EXPECT_TRUE(any_differs) << "stratified " << stratified;
  }
}

TEST(KFoldSplits, BadFoldCountsAreErrors) {
  const auto labels = torch::zeros({3}, torch::kInt64);
  EXPECT_THROW(data::kfold_splits(labels, 1, 0, false), packtrain::Error);
  EXPECT_THROW(data::kfold_splits(labels, 4, 0, true), packtrain::Error);
  EXPECT_NO_THROW(data::kfold_splits(labels, 3, 0, true));
}

}  // namespace
