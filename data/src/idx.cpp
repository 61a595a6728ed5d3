// MNIST-format IDX files, gzip-compressed or raw (zlib's gzread reads both).
//
// Layout: 2 zero bytes, a type byte (0x08: unsigned byte), a byte giving the
// number of dimensions, then one big-endian uint32 per dimension, then the data.
#include <packtrain/data/readers.hpp>
#include <packtrain/scheduler/error.hpp>

#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <cstdint>
#include <string>
#include <vector>

namespace packtrain::data {
namespace {

constexpr std::uint32_t kImagesMagic = 0x00000803;  // unsigned bytes, 3 dimensions
constexpr std::uint32_t kLabelsMagic = 0x00000801;  // unsigned bytes, 1 dimension

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
  throw Error("IDX file " + path.string() + ": " + what);
}

// The whole (decompressed) content of `path`.
std::vector<std::uint8_t> read_all(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(path, "not found");
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) fail(path, "cannot be opened");
  std::vector<std::uint8_t> bytes;
  std::array<std::uint8_t, 1 << 16> chunk{};
  while (true) {
    const int got = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (got < 0) {
      int code = 0;
      const std::string message = gzerror(file, &code);
      gzclose(file);
      fail(path, "corrupt gzip data (" + message + ")");
    }
    if (got == 0) break;
    bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + got);
  }
  int code = Z_OK;
  const std::string message = gzerror(file, &code);
  gzclose(file);
  // A gzip stream cut short reads as far as it goes, then reports Z_BUF_ERROR.
  if (code != Z_OK && code != Z_STREAM_END) fail(path, "corrupt or truncated gzip data (" + message + ")");
  return bytes;
}

std::uint32_t big_endian(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

// Checks the header against `magic` and the file's size; returns the
// dimensions and leaves the data's offset in `offset`.
std::vector<std::int64_t> parse_header(const std::filesystem::path& path, const std::vector<std::uint8_t>& bytes,
                                       std::uint32_t magic, std::size_t& offset) {
  const std::size_t rank = magic & 0xff;
  const std::size_t header = 4 + 4 * rank;
  if (bytes.size() < 4) fail(path, "truncated: " + std::to_string(bytes.size()) + " bytes, no IDX header");
  const std::uint32_t found = big_endian(bytes.data());
  if (found != magic) {
    char text[64];
    std::snprintf(text, sizeof text, "bad magic number 0x%08x (expected 0x%08x)", found, magic);
    fail(path, text);
  }
  if (bytes.size() < header)
    fail(path, "truncated: " + std::to_string(bytes.size()) + " bytes, header alone needs " + std::to_string(header));
  std::vector<std::int64_t> dims;
  std::string shape;
  std::uint64_t expected = 1;
  bool beyond_file = false;  // the product already exceeds the file: stop multiplying (no overflow)
  for (std::size_t d = 0; d < rank; ++d) {
    const std::uint32_t dim = big_endian(bytes.data() + 4 + 4 * d);
    if (dim == 0) fail(path, "dimension " + std::to_string(d) + " is 0");
    dims.push_back(dim);
    shape += (d ? "x" : "") + std::to_string(dim);
    if (!beyond_file) {
      expected *= dim;
      beyond_file = expected > bytes.size();
    }
  }
  const std::uint64_t data = bytes.size() - header;
  if (beyond_file || data < expected)
    fail(path, "truncated: header says " + shape + " but only " + std::to_string(data) + " data bytes follow");
  if (data > expected)
    fail(path, "size mismatch: header says " + shape + " (" + std::to_string(expected) + " bytes) but " +
                   std::to_string(data) + " data bytes follow");
  offset = header;
  return dims;
}

}  // namespace

at::Tensor read_idx_images(const std::filesystem::path& path) {
  const auto bytes = read_all(path);
  std::size_t offset = 0;
  const auto dims = parse_header(path, bytes, kImagesMagic, offset);
  auto images = torch::empty({dims[0], dims[1], dims[2]}, torch::kUInt8);
  std::memcpy(images.data_ptr<std::uint8_t>(), bytes.data() + offset, bytes.size() - offset);
  return images;
}

at::Tensor read_idx_labels(const std::filesystem::path& path) {
  const auto bytes = read_all(path);
  std::size_t offset = 0;
  const auto dims = parse_header(path, bytes, kLabelsMagic, offset);
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
  return Dataset{images.unsqueeze(1).to(torch::kFloat32).div_(255.0), labels};
}

}  // namespace

DatasetSplit read_idx_folder(const std::filesystem::path& folder, const std::string& name) {
  DatasetSplit split;
  split.name = name;
  split.train = read_part(folder, "train");
  split.test = read_part(folder, "t10k");
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

}  // namespace packtrain::data
