#include <packtrain/data/folds.hpp>
#include <packtrain/scheduler/error.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <string>

namespace packtrain::data {

std::vector<Fold> kfold_splits(const at::Tensor& labels, int k, std::uint64_t seed, bool stratified) {
  const std::int64_t n = labels.size(0);
  if (k < 2) throw Error("k-fold needs at least 2 folds, not " + std::to_string(k));
  if (k > n) throw Error("cannot split " + std::to_string(n) + " samples into " + std::to_string(k) + " folds");

  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto order = torch::randperm(n, generator, torch::kInt64);
  if (stratified) {
    // Group the shuffled samples by class (a stable sort keeps the shuffle
    // within each class). Dealing this list round-robin gives every fold
    // n_c / k samples of class c, give or take one, and N / k in all.
    const auto by_class = std::get<1>(labels.index_select(0, order).sort(/*stable=*/true, /*dim=*/0, /*descending=*/false));
    order = order.index_select(0, by_class);
  }
  // Sample order[p] goes to fold p mod k.
  const auto fold_of = torch::empty({n}, torch::kInt64);
  fold_of.index_put_({order}, torch::arange(n, torch::kInt64).remainder(k));

  std::vector<Fold> folds;
  folds.reserve(k);
  for (int f = 0; f < k; ++f) {
    const auto in_fold = fold_of.eq(f);
    folds.push_back(Fold{torch::nonzero(in_fold.logical_not()).flatten(), torch::nonzero(in_fold).flatten()});
  }
  return folds;
}

}  // namespace packtrain::data
