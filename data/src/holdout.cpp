// The deterministic per-class hold-out split (holdout.hpp).
#include "holdout.hpp"

#include <cmath>
#include <cstddef>
#include <utility>

namespace packtrain::data::detail {
namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::vector<bool> Holdout::next_class(std::int64_t n) {
  seen_ += n;
  const auto target = static_cast<std::int64_t>(std::llround(kHoldoutTestShare * static_cast<double>(seen_)));
  const std::int64_t n_test = target - held_out_;
  held_out_ = target;
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
  for (std::int64_t i = n - 1; i > 0; --i)
    std::swap(order[static_cast<std::size_t>(i)], order[splitmix64(rng_) % static_cast<std::uint64_t>(i + 1)]);
  std::vector<bool> is_test(static_cast<std::size_t>(n), false);
  for (std::int64_t i = 0; i < n_test; ++i)
    is_test[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])] = true;
  return is_test;
}

std::vector<bool> holdout_mask(const std::vector<std::int64_t>& labels, std::int64_t classes) {
  // Each class's samples in order (a counting sort), then its decisions.
  std::vector<std::vector<std::size_t>> members(static_cast<std::size_t>(classes));
  for (std::size_t i = 0; i < labels.size(); ++i) members[static_cast<std::size_t>(labels[i])].push_back(i);
  std::vector<bool> mask(labels.size(), false);
  Holdout holdout;
  for (const auto& samples : members) {
    const auto is_test = holdout.next_class(static_cast<std::int64_t>(samples.size()));
    for (std::size_t k = 0; k < samples.size(); ++k) mask[samples[k]] = is_test[k];
  }
  return mask;
}

}  // namespace packtrain::data::detail
