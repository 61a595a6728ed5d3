// libFuzzer: IDX dataset files (raw or gzip), as a user's --data folder may
// hold them. Every file must be read or refused with packtrain::Error naming
// it, never crash, leak or allocate without bound.
#include "formats.hpp"

#include <packtrain/scheduler/error.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto path =
      std::filesystem::temp_directory_path() / ("fuzz_idx." + std::to_string(::getpid()) + ".idx");
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) std::abort();
    if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
  }
  namespace d = packtrain::data::detail;
  try {
    const auto bytes = d::read_idx_bytes(path);
    for (const auto magic : {d::kIdxImagesMagic, d::kIdxLabelsMagic}) {
      try {
        std::size_t offset = 0;
        const auto dims = d::parse_idx_header(path, bytes, magic, offset);
        // Accepted: the dimensions must describe exactly the bytes after the header.
        std::uint64_t n = 1;
        for (const auto dim : dims) n *= static_cast<std::uint64_t>(dim);
        if (offset > bytes.size() || n != bytes.size() - offset) std::abort();
      } catch (const packtrain::Error&) {
      }
    }
  } catch (const packtrain::Error&) {
  }
  return 0;
}
