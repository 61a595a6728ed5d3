// libFuzzer: a CIFAR-10 binary batch as a user's --data folder may hold it.
// Checked or refused with packtrain::Error, never a crash.
#include "formats.hpp"

#include <packtrain/scheduler/error.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace d = packtrain::data::detail;
  const std::vector<char> bytes(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size);
  try {
    const auto n = d::check_cifar_batch("fuzz/data_batch_1.bin", bytes);
    // Accepted: whole records, every label 0..9.
    if (n <= 0 || static_cast<std::size_t>(n * d::kCifarRecordBytes) != size) std::abort();
    for (std::int64_t i = 0; i < n; ++i)
      if (data[static_cast<std::size_t>(i * d::kCifarRecordBytes)] >= 10) std::abort();
  } catch (const packtrain::Error&) {
  }
  return 0;
}
