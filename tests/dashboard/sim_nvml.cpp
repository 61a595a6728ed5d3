// A simulated NVML (libnvidia-ml's C ABI, the calls NvmlSource makes), for
// testing the GPU sample source on machines without an NVIDIA driver.
// Two GPUs: GPU i is busy 30 + 40 i percent and uses 1024 (i + 1) MiB.
// SIM_NVML_INIT_ERROR=N: nvmlInit_v2 returns N. SIM_NVML_LOST=1: GPU 1
// cannot be read (NVML_ERROR_GPU_IS_LOST, 15). Built without
// nvmlDeviceGetMemoryInfo when SIM_NVML_NO_MEMORY is defined.
#include <cstdlib>

#include "nvml_abi.h"

namespace {
int live = 0;  // inits not yet shut down
int devices[2] = {0, 1};
}  // namespace

extern "C" {
__attribute__((visibility("default"))) int sim_nvml_live() { return live; }

__attribute__((visibility("default"))) int nvmlInit_v2() {
  if (const char* e = std::getenv("SIM_NVML_INIT_ERROR")) return std::atoi(e);
  ++live;
  return 0;
}
__attribute__((visibility("default"))) int nvmlShutdown() {
  --live;
  return 0;
}
__attribute__((visibility("default"))) const char* nvmlErrorString(int) { return "simulated error"; }
__attribute__((visibility("default"))) int nvmlDeviceGetCount_v2(unsigned int* count) {
  *count = 2;
  return 0;
}
__attribute__((visibility("default"))) int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void** device) {
  if (index > 1) return 2;  // NVML_ERROR_INVALID_ARGUMENT
  *device = &devices[index];
  return 0;
}
__attribute__((visibility("default"))) int nvmlDeviceGetUtilizationRates(NvmlDevice device, nvmlUtilization_st* u) {
  const int i = *static_cast<int*>(device);
  if (i == 1 && std::getenv("SIM_NVML_LOST")) return 15;
  u->gpu = 30 + 40 * i;
  u->memory = 5;
  return 0;
}
#ifndef SIM_NVML_NO_MEMORY
__attribute__((visibility("default"))) int nvmlDeviceGetMemoryInfo(NvmlDevice device, nvmlMemory_st* m) {
  const int i = *static_cast<int*>(device);
  if (i == 1 && std::getenv("SIM_NVML_LOST")) return 15;
  m->total = 80ull << 30;
  m->used = (1024ull * (i + 1)) << 20;
  m->free = m->total - m->used;
  return 0;
}
#endif
}
