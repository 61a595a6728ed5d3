#pragma once
// packtrain's one exception type, and the aborting invariant check.
//
// Bad configuration or API misuse throws packtrain::Error with a one-line
// message naming the thing that is wrong; the CLI prints it and exits 2.
// PACKTRAIN_CHECK is for internal invariants: a failure is a packtrain bug,
// so it aborts with the file and line instead of throwing.

#include <stdexcept>
#include <string>

namespace packtrain {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A job in a GPU slot ran out of the GPU's memory (the trainer turns
// LibTorch's CUDA out-of-memory error into this). The runner retries the
// job with one slot fewer on that GPU, or on its CPU cores, instead of
// counting a failure.
class GpuOutOfMemory : public Error {
 public:
  using Error::Error;
};

[[noreturn]] void check_failed(const char* expr, const char* file, int line, const std::string& message);

}  // namespace packtrain

#define PACKTRAIN_CHECK(cond, message)                                  \
  do {                                                                  \
    if (!(cond)) ::packtrain::check_failed(#cond, __FILE__, __LINE__, (message)); \
  } while (false)
