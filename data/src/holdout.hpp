#pragma once
// The deterministic hold-out split of datasets that ship no test part (the
// MNIST digits, NumPy arrays without x_test.npy): per class, 20% of the
// samples, give or take one, go to the test part. No LibTorch, no parameter:
// every run, job and rank sees the same test set.
#include <cstdint>
#include <vector>

namespace packtrain::data::detail {

inline constexpr double kHoldoutTestShare = 0.2;
// The seed the MNIST digits' split has always used ("mnist"): kept, so that
// their 8,000 / 2,000 split stays what earlier runs trained on.
inline constexpr std::uint64_t kHoldoutSeed = 0x6d6e697374ULL;

// Decides class by class, in class order. Cumulative rounding: each class
// gives 20% of its samples, give or take one, and the test part holds
// exactly round(20%) of all the samples seen so far. Within a class, which
// samples go is a Fisher-Yates shuffle by splitmix64 (portable: independent
// of the standard library's and LibTorch's random algorithms).
class Holdout {
 public:
  // Which of the next class's n samples, in their order, go to the test part.
  std::vector<bool> next_class(std::int64_t n);

 private:
  std::uint64_t rng_ = kHoldoutSeed;
  std::int64_t seen_ = 0;       // samples of the classes so far
  std::int64_t held_out_ = 0;   // of which in the test part
};

// For labels in [0, classes): whether each sample goes to the test part,
// Holdout's decisions for classes 0, 1, ... with each class's samples in
// the order they appear in `labels`.
std::vector<bool> holdout_mask(const std::vector<std::int64_t>& labels, std::int64_t classes);

}  // namespace packtrain::data::detail
