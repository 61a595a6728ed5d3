#pragma once
// MNIST-format IDX files as bytes, without LibTorch (idx.cpp makes tensors of
// them; tests/fuzz feeds them hostile files).
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

}  // namespace packtrain::data::detail
