#pragma once
// K-fold splits of a dataset part into index views, deterministic from a seed.
//
//   auto folds = packtrain::data::kfold_splits(data->train.labels, 5, seed, /*stratified=*/true);
//   BatchLoader loader(data->train, folds[2].train_idx, ...);   // train on 4/5
//   evaluate(model, data->train, folds[2].val_idx);            // validate on the rest
//
// The k validation sets are disjoint and together cover every sample; each
// holds N/k samples, give or take one. Stratified folds also keep each class's
// share: a class with n samples has n/k of them, give or take one, in every
// validation set.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace packtrain::data {

struct Fold {
  at::Tensor train_idx;  // int64, ascending
  at::Tensor val_idx;    // int64, ascending
};

// `labels`: int64 N (only read when stratified). Throws packtrain::Error when
// k < 2 or k > N.
std::vector<Fold> kfold_splits(const at::Tensor& labels, int k, std::uint64_t seed, bool stratified);

}  // namespace packtrain::data
