// CIFAR-10 binary batches: records of 1 label byte and 3 x 32 x 32 image bytes.
#include "bytes.hpp"
#include "formats.hpp"

#include <packtrain/data/readers.hpp>
#include <packtrain/scheduler/error.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace packtrain::data {
namespace {

constexpr std::int64_t kChannels = 3;
constexpr std::int64_t kSide = 32;
constexpr std::int64_t kImageBytes = detail::kCifarImageBytes;    // 3 x 32 x 32
constexpr std::int64_t kRecordBytes = detail::kCifarRecordBytes;  // a label byte and the image
constexpr std::int64_t kClasses = 10;

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
  throw Error("CIFAR-10 file " + path.string() + ": " + what);
}

}  // namespace

namespace detail {

Dataset read_cifar_batch_bytes(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(path, "cannot be opened");
  const auto bytes = read_file_bytes(path);
  const std::int64_t n = check_cifar_batch(path, bytes);
  auto images = torch::empty({n, kChannels, kSide, kSide}, torch::kUInt8);
  auto labels = torch::empty({n}, torch::kInt64);
  auto* image_data = images.data_ptr<std::uint8_t>();
  auto* label_data = labels.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    const auto* record = reinterpret_cast<const std::uint8_t*>(bytes.data()) + i * kRecordBytes;
    label_data[i] = record[0];  // 0..9: checked
    std::memcpy(image_data + i * kImageBytes, record + 1, kImageBytes);
  }
  return Dataset{images, labels};
}

DatasetSplit read_cifar_folder_bytes(const std::filesystem::path& folder, const std::string& name) {
  std::vector<at::Tensor> images;
  std::vector<at::Tensor> labels;
  std::error_code ec;
  for (int b = 1; b <= 5; ++b) {
    const auto path = folder / ("data_batch_" + std::to_string(b) + ".bin");
    if (!std::filesystem::is_regular_file(path, ec)) continue;
    auto part = read_cifar_batch_bytes(path);
    images.push_back(part.images);
    labels.push_back(part.labels);
  }
  if (images.empty()) throw Error("CIFAR-10 folder " + folder.string() + ": no data_batch_1.bin .. data_batch_5.bin");
  const auto test_path = folder / "test_batch.bin";
  if (!std::filesystem::is_regular_file(test_path, ec))
    throw Error("CIFAR-10 folder " + folder.string() + ": no test_batch.bin");
  DatasetSplit split;
  split.name = name;
  split.train = Dataset{torch::cat(images), torch::cat(labels)};
  split.test = read_cifar_batch_bytes(test_path);
  split.classes = kClasses;
  split.channels = kChannels;
  split.height = kSide;
  split.width = kSide;
  return split;
}

}  // namespace detail

Dataset read_cifar_batch(const std::filesystem::path& path) {
  auto part = detail::read_cifar_batch_bytes(path);
  part.images = detail::unit_interval(part.images);
  return part;
}

DatasetSplit read_cifar_folder(const std::filesystem::path& folder, const std::string& name) {
  auto split = detail::read_cifar_folder_bytes(folder, name);
  split.train.images = detail::unit_interval(split.train.images);
  split.test.images = detail::unit_interval(split.test.images);
  return split;
}

}  // namespace packtrain::data
