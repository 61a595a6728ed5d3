#include <packtrain/scheduler/error.hpp>

#include <cstdio>
#include <cstdlib>

namespace packtrain {

void check_failed(const char* expr, const char* file, int line, const std::string& message) {
  std::fprintf(stderr, "packtrain: internal check failed at %s:%d: %s (%s)\n", file, line, expr, message.c_str());
  std::abort();
}

}  // namespace packtrain
