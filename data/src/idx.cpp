// MNIST-format IDX files as tensors (the bytes and their checks: formats.cpp).
#include "bytes.hpp"
#include "formats.hpp"

#include <packtrain/data/readers.hpp>
#include <packtrain/scheduler/error.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <cstdint>
#include <exception>
#include <future>
#include <memory>
#include <string>
#include <vector>

namespace packtrain::data {

at::Tensor read_idx_images(const std::filesystem::path& path) {
  auto bytes = std::make_shared<std::vector<std::uint8_t>>(detail::read_idx_bytes(path));
  std::size_t offset = 0;
  const auto dims = detail::parse_idx_header(path, *bytes, detail::kIdxImagesMagic, offset);
  // The tensor keeps the buffer it views (no copy of the images).
  return torch::from_blob(
      bytes->data() + offset, {dims[0], dims[1], dims[2]}, [bytes](void*) mutable { bytes.reset(); }, torch::kUInt8);
}

at::Tensor read_idx_labels(const std::filesystem::path& path) {
  const auto bytes = detail::read_idx_bytes(path);
  std::size_t offset = 0;
  const auto dims = detail::parse_idx_header(path, bytes, detail::kIdxLabelsMagic, offset);
  auto labels = torch::empty({dims[0]}, torch::kUInt8);
  std::memcpy(labels.data_ptr<std::uint8_t>(), bytes.data() + offset, bytes.size() - offset);
  return labels.to(torch::kInt64);
}

namespace {

// `stem` itself, else stem + ".gz".
std::filesystem::path find_idx(const std::filesystem::path& folder, const std::string& stem) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(folder / stem, ec)) return folder / stem;
  if (std::filesystem::is_regular_file(folder / (stem + ".gz"), ec)) return folder / (stem + ".gz");
  throw Error("dataset folder " + folder.string() + ": no " + stem + " or " + stem + ".gz");
}

Dataset read_part(const std::filesystem::path& folder, const std::string& prefix) {
  const auto images_path = find_idx(folder, prefix + "-images-idx3-ubyte");
  const auto labels_path = find_idx(folder, prefix + "-labels-idx1-ubyte");
  auto images = read_idx_images(images_path);
  auto labels = read_idx_labels(labels_path);
  if (images.size(0) != labels.size(0))
    throw Error("IDX files " + images_path.string() + " and " + labels_path.string() + " disagree: " +
                std::to_string(images.size(0)) + " images but " + std::to_string(labels.size(0)) + " labels");
  return Dataset{images.unsqueeze(1), labels};
}

}  // namespace

namespace detail {

DatasetSplit read_idx_folder_bytes(const std::filesystem::path& folder, const std::string& name) {
  DatasetSplit split;
  split.name = name;
  // The training part on a second thread while this one reads the test part.
  auto train = std::async(std::launch::async, [&folder] { return read_part(folder, "train"); });
  std::exception_ptr test_error;
  try {
    split.test = read_part(folder, "t10k");
  } catch (...) {
    test_error = std::current_exception();
  }
  split.train = train.get();  // the training part's error first, as it is read first
  if (test_error) std::rethrow_exception(test_error);
  const auto& a = split.train.images;
  const auto& b = split.test.images;
  if (a.size(2) != b.size(2) || a.size(3) != b.size(3))
    throw Error("dataset folder " + folder.string() + ": train images are " + std::to_string(a.size(2)) + "x" +
                std::to_string(a.size(3)) + " but test images are " + std::to_string(b.size(2)) + "x" +
                std::to_string(b.size(3)));
  split.channels = 1;
  split.height = a.size(2);
  split.width = a.size(3);
  split.classes = std::max(split.train.labels.max().item<std::int64_t>(), split.test.labels.max().item<std::int64_t>()) + 1;
  return split;
}

}  // namespace detail

DatasetSplit read_idx_folder(const std::filesystem::path& folder, const std::string& name) {
  auto split = detail::read_idx_folder_bytes(folder, name);
  split.train.images = detail::unit_interval(split.train.images);
  split.test.images = detail::unit_interval(split.test.images);
  return split;
}

}  // namespace packtrain::data
