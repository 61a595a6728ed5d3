#pragma once
// For fuzz targets whose code under test reads a file: the input written to
// `path` (a file of this process's own), or abort.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace packtrain::fuzz {

// TMPDIR/fuzz_NAME.PID.SUFFIX: one per process, reused by each input.
inline std::filesystem::path input_path(const std::string& name, const std::string& suffix) {
  return std::filesystem::temp_directory_path() / ("fuzz_" + name + "." + std::to_string(::getpid()) + suffix);
}

inline void write_input(const std::filesystem::path& path, const std::uint8_t* data, std::size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

}  // namespace packtrain::fuzz
