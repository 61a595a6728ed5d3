// libFuzzer: IDX dataset files (raw or gzip), as a user's --data folder may
// hold them. Every file must be read or refused with packtrain::Error naming
// it, never crash, leak or allocate without bound.
#include "formats.hpp"
#include "input_file.hpp"

#include <packtrain/scheduler/error.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto path = packtrain::fuzz::input_path("idx", ".idx");
  packtrain::fuzz::write_input(path, data, size);
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
