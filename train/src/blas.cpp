#include <packtrain/train/blas.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string_view>
#include <vector>

#include <dlfcn.h>
#include <unistd.h>

namespace packtrain::train {

std::string blas_core() {
  // Looked up at run time: LibTorch's BLAS may be another library.
  using CoreName = char* (*)();
  const auto core_name = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (!core_name) return "";
  const char* name = core_name();
  return name ? name : "";
}

CpuFeatures this_cpu() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  // libgcc's checks include the OS's support (XGETBV) for the registers.
  return {.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"),
          .avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                    __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                    __builtin_cpu_supports("avx512vl")};
#else
  return {};
#endif
}

std::string better_blas_core(const std::string& picked, const CpuFeatures& cpu) {
  // OpenBLAS's x86 kernels older than AVX2: what it falls back to.
  constexpr std::array<std::string_view, 21> kFallbacks = {
      "prescott", "core2",      "penryn",     "dunnington", "nehalem",   "sandybridge", "katmai",
      "coppermine", "northwood", "banias",    "atom",       "nano",      "athlon",      "opteron",
      "opteron_sse3", "barcelona", "bobcat",  "bulldozer",  "piledriver", "steamroller", "unknown"};
  std::string name = picked;
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  if (std::find(kFallbacks.begin(), kFallbacks.end(), name) == kFallbacks.end()) return "";
  if (cpu.avx512) return "SkylakeX";
  if (cpu.avx2_fma) return "Haswell";
  return "";
}

namespace {

// OpenBLAS's own pick that this process replaced (kept after the variables
// that carried it through the execution are gone).
std::string& replaced() {
  static std::string pick;
  return pick;
}

constexpr const char* kReplaced = "PACKTRAIN_BLAS_REPLACED";

}  // namespace

std::string blas_core_replaced() { return replaced(); }

void use_the_best_blas_kernels() {
  if (const char* pick = std::getenv(kReplaced)) {
    // The execution below: OpenBLAS has read OPENBLAS_CORETYPE. Both go, so
    // that programs this one starts (on other machines too, under srun or
    // mpirun -x) choose for themselves.
    replaced() = pick;
    unsetenv(kReplaced);
    unsetenv("OPENBLAS_CORETYPE");
    return;
  }
  if (std::getenv("OPENBLAS_CORETYPE")) return;  // the user's choice
  const auto picked = blas_core();
  const auto core = better_blas_core(picked, this_cpu());
  if (core.empty()) return;
  // The same arguments, from the kernel's copy (a constructor has no argv).
  std::ifstream file("/proc/self/cmdline", std::ios::binary);
  const std::string cmdline((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (std::size_t at = 0; at < cmdline.size();) {
    const auto end = cmdline.find('\0', at);
    args.push_back(cmdline.substr(at, end - at));
    if (end == std::string::npos) break;
    at = end + 1;
  }
  if (args.empty()) return;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  setenv(kReplaced, picked.c_str(), 1);
  setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  execv("/proc/self/exe", argv.data());
  unsetenv(kReplaced);  // not executed: go on with the kernels OpenBLAS picked
  unsetenv("OPENBLAS_CORETYPE");
}

}  // namespace packtrain::train
