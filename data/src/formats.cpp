// Dataset files as bytes (formats.hpp). No LibTorch here, so that the fuzz
// build (tests/fuzz) compiles it alone.
//
// IDX files are read gzip-compressed or raw (zlib's gzread reads both).
// Layout: 2 zero bytes, a type byte (0x08: unsigned byte), a byte giving the
// number of dimensions, then one big-endian uint32 per dimension, then the data.
#include "formats.hpp"

#include <packtrain/scheduler/error.hpp>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

namespace packtrain::data::detail {
namespace {

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
  throw Error("IDX file " + path.string() + ": " + what);
}

// How many bytes `path` holds once decompressed, as far as its size and a
// gzip trailer tell: a guess to size the buffer, never trusted beyond 64
// times the file (a trailer can lie; a longer content still reads, the
// buffer doubling as it goes).
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
  return static_cast<std::size_t>(std::min<std::uint64_t>(isize, std::uint64_t{size} * 64));
}

}  // namespace

std::vector<std::uint8_t> read_idx_bytes(const std::filesystem::path& path) {
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

namespace {

std::uint32_t big_endian(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

}  // namespace

std::vector<std::int64_t> parse_idx_header(const std::filesystem::path& path, const std::vector<std::uint8_t>& bytes,
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

std::vector<char> read_file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("file " + path.string() + " cannot be opened");
  return std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::int64_t check_cifar_batch(const std::filesystem::path& path, const std::vector<char>& bytes) {
  const auto fail_cifar = [&](const std::string& what) { throw Error("CIFAR-10 file " + path.string() + ": " + what); };
  const auto size = static_cast<std::int64_t>(bytes.size());
  if (size == 0) fail_cifar("is empty");
  if (size % kCifarRecordBytes != 0)
    fail_cifar("size " + std::to_string(size) + " is not a multiple of " + std::to_string(kCifarRecordBytes) +
               " (1 label byte + 3x32x32 image bytes): truncated or not CIFAR-10");
  const std::int64_t n = size / kCifarRecordBytes;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto label = static_cast<unsigned char>(bytes[static_cast<std::size_t>(i * kCifarRecordBytes)]);
    if (label >= 10)
      fail_cifar("record " + std::to_string(i) + " has label " + std::to_string(label) + " (expected 0..9)");
  }
  return n;
}

std::vector<float> read_mnist_digit_file(const std::filesystem::path& path) {
  constexpr std::size_t kPixels = 28 * 28;
  std::ifstream in(path);
  if (!in) throw Error("MNIST digits file " + path.string() + " cannot be opened");
  nlohmann::json json;
  try {
    in >> json;
  } catch (const nlohmann::json::exception& e) {
    throw Error("MNIST digits file " + path.string() + ": not valid JSON (" + e.what() + ")");
  }
  if (!json.is_object() || !json.contains("data") || !json["data"].is_array())
    throw Error("MNIST digits file " + path.string() + ": no \"data\" array");
  const auto& data = json["data"];
  if (data.empty() || data.size() % kPixels != 0)
    throw Error("MNIST digits file " + path.string() + ": " + std::to_string(data.size()) +
                " values, not a positive multiple of 784 (28x28)");
  std::vector<float> values;
  values.reserve(data.size());
  for (const auto& v : data) {
    if (!v.is_number()) throw Error("MNIST digits file " + path.string() + ": a value is not a number");
    const double x = v.get<double>();
    if (!(x >= 0.0 && x <= 1.0))
      throw Error("MNIST digits file " + path.string() + ": value " + std::to_string(x) + " outside [0, 1]");
    values.push_back(static_cast<float>(x));
  }
  return values;
}

}  // namespace packtrain::data::detail
