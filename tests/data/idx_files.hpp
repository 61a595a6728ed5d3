#pragma once
// Writes small MNIST-format (IDX) and CIFAR-10 files for the reader tests.
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace packtrain::testing {

// The bytes of an IDX file: magic (0x0000080N), big-endian dims, then `data`.
inline std::string idx_bytes(std::uint32_t magic, const std::vector<std::uint32_t>& dims,
                             const std::vector<std::uint8_t>& data) {
  std::string bytes;
  const auto put32 = [&bytes](std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>((v >> shift) & 0xff));
  };
  put32(magic);
  for (auto d : dims) put32(d);
  bytes.append(data.begin(), data.end());
  return bytes;
}

inline void write_raw(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

inline void write_gz(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  gzFile f = gzopen(path.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error("cannot write " + path.string());
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// n images of h x w whose pixel (i, y, x) is (i * 7 + y * w + x) mod 256.
inline std::vector<std::uint8_t> pattern_pixels(std::uint32_t n, std::uint32_t h, std::uint32_t w) {
  std::vector<std::uint8_t> pixels;
  for (std::uint32_t i = 0; i < n; ++i)
    for (std::uint32_t p = 0; p < h * w; ++p) pixels.push_back(static_cast<std::uint8_t>((i * 7 + p) % 256));
  return pixels;
}

// An IDX dataset folder: train and t10k images (h x w) and labels (i mod classes).
inline void write_idx_folder(const std::filesystem::path& dir, std::uint32_t n_train, std::uint32_t n_test,
                             std::uint32_t h = 28, std::uint32_t w = 28, std::uint32_t classes = 10, bool gz = true) {
  const auto write = [&](const std::string& name, const std::string& bytes) {
    if (gz) write_gz(dir / (name + ".gz"), bytes);
    else write_raw(dir / name, bytes);
  };
  for (const auto& [prefix, n] : {std::pair<std::string, std::uint32_t>{"train", n_train}, {"t10k", n_test}}) {
    std::vector<std::uint8_t> labels;
    for (std::uint32_t i = 0; i < n; ++i) labels.push_back(static_cast<std::uint8_t>(i % classes));
    write(prefix + "-images-idx3-ubyte", idx_bytes(0x803, {n, h, w}, pattern_pixels(n, h, w)));
    write(prefix + "-labels-idx1-ubyte", idx_bytes(0x801, {n}, labels));
  }
}

// CIFAR-10 records: label i mod 10, image byte (c, y, x) = (i + c * 31 + y * 3 + x) mod 256.
inline std::string cifar_bytes(int n, int first = 0) {
  std::string bytes;
  for (int i = first; i < first + n; ++i) {
    bytes.push_back(static_cast<char>(i % 10));
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) bytes.push_back(static_cast<char>((i + c * 31 + y * 3 + x) % 256));
  }
  return bytes;
}

}  // namespace packtrain::testing
