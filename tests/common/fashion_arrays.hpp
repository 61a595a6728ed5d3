#pragma once
// Fashion-MNIST (Debian's dataset-fashion-mnist) as NumPy arrays, the way a
// Python user saves them: x_*.npy uint8 N x 28 x 28, y_*.npy int64 N.
// For tests of --data with .npy files on real data.
#include "common/npy_files.hpp"
#include "common/test_util.hpp"

#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace packtrain::testing {

// The first `count` records of a gzip IDX file, after its `header` bytes.
inline std::string idx_records(const std::string& file, int header, std::int64_t count, std::int64_t record) {
  const auto path = "/usr/share/datasets/fashion-mnist/" + file;
  gzFile in = gzopen(path.c_str(), "rb");
  if (!in) throw std::runtime_error("cannot open " + path);
  std::string bytes(static_cast<std::size_t>(header + count * record), '\0');
  const int got = gzread(in, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(in);
  if (got != static_cast<int>(bytes.size())) throw std::runtime_error(path + " is shorter than asked");
  return bytes.substr(static_cast<std::size_t>(header));
}

// Writes x_train.npy, y_train.npy, x_test.npy and y_test.npy into `dir`:
// the first `train` and `test` samples of each part.
inline void write_fashion_arrays(const std::filesystem::path& dir, std::int64_t train, std::int64_t test) {
  std::filesystem::create_directories(dir);
  const auto part = [&](const std::string& idx, const std::string& npy_name, std::int64_t n) {
    write_file(dir / ("x_" + npy_name + ".npy"),
               npy_with_header(npy_dict("|u1", {n, 28, 28}), idx_records(idx + "-images-idx3-ubyte.gz", 16, n, 784)));
    const auto bytes = idx_records(idx + "-labels-idx1-ubyte.gz", 8, n, 1);
    std::vector<std::int64_t> labels(bytes.begin(), bytes.end());
    write_file(dir / ("y_" + npy_name + ".npy"), npy("<i8", {n}, labels));
  };
  part("train", "train", train);
  part("t10k", "test", test);
}

}  // namespace packtrain::testing
