// MNIST-format IDX files, gzip-compressed or raw (zlib's gzread reads both).
//
// Layout: 2 zero bytes, a type byte (0x08: unsigned byte), a byte giving the
// number of dimensions, then one big-endian uint32 per dimension, then the data.
#include "bytes.hpp"

#include <packtrain/data/readers.hpp>
#include <packtrain/scheduler/error.hpp>

#include <torch/torch.h>
#include <zlib.h>

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
namespace {

constexpr std::uint32_t kImagesMagic = 0x00000803;  // unsigned bytes, 3 dimensions
constexpr std::uint32_t kLabelsMagic = 0x00000801;  // unsigned bytes, 1 dimension

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
  throw Error("IDX file " + path.string() + ": " + what);
}

// How many bytes `path` holds once decompressed, as far as its size and a
// gzip trailer tell (a guess to size the buffer, never trusted beyond that:
// deflate expands at most 1032 times, and a trailer can lie).
std::size_t size_hint(const std::filesystem::path& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return 0;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return 0;
  std::array<std::uint8_t, 4> head{}, tail{};
  const bool gzip = std::fread(head.data(), 1, 2, f) == 2 && head[0] == 0x1f && head[1] == 0x8b;
  bool has_tail = false;
  if (gzip && size >= 18 && std::fseek(f, -4, SEEK_END) == 0) has_tail = std::fread(tail.data(), 1, 4, f) == 4;
  std::fclose(f);
  if (!gzip) return size;
  if (!has_tail) return 0;
  const std::uint64_t isize = std::uint64_t{tail[0]} | (std::uint64_t{tail[1]} << 8) | (std::uint64_t{tail[2]} << 16) |
                              (std::uint64_t{tail[3]} << 24);
  return static_cast<std::size_t>(std::min<std::uint64_t>(isize, std::uint64_t{size} * 1032));
}

// The whole (decompressed) content of `path`, read straight into one buffer.
std::vector<std::uint8_t> read_all(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(path, "not found");
  std::vector<std::uint8_t> bytes(std::max<std::size_t>(size_hint(path) + 1, std::size_t{1} << 16));
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) fail(path, "cannot be opened");
  gzbuffer(file, 1u << 20);
  std::size_t have = 0;
  while (true) {
    if (have == bytes.size()) bytes.resize(bytes.size() * 2);  // the hint was short (a multi-member gzip)
    const auto want = static_cast<unsigned>(std::min<std::size_t>(bytes.size() - have, std::size_t{1} << 30));
    const int got = gzread(file, bytes.data() + have, want);
    if (got < 0) {
      int code = 0;
      const std::string message = gzerror(file, &code);
      gzclose(file);
      fail(path, "corrupt gzip data (" + message + ")");
    }
    if (got == 0) break;
    have += static_cast<std::size_t>(got);
  }
  int code = Z_OK;
  const std::string message = gzerror(file, &code);
  gzclose(file);
  // A gzip stream cut short reads as far as it goes, then reports Z_BUF_ERROR.
  if (code != Z_OK && code != Z_STREAM_END) fail(path, "corrupt or truncated gzip data (" + message + ")");
  bytes.resize(have);
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
    if (d > 0) shape += 'x';
    shape += std::to_string(dim);
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
  auto bytes = std::make_shared<std::vector<std::uint8_t>>(read_all(path));
  std::size_t offset = 0;
  const auto dims = parse_header(path, *bytes, kImagesMagic, offset);
  // The tensor keeps the buffer it views (no copy of the images).
  return torch::from_blob(
      bytes->data() + offset, {dims[0], dims[1], dims[2]}, [bytes](void*) mutable { bytes.reset(); }, torch::kUInt8);
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
