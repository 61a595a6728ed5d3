// NVML's C ABI, the part NvmlSource calls (nvml.h: stable across driver
// versions; declared here so that building needs no CUDA toolkit). Shared
// with the simulated NVML the tests load, so that both sides of each call
// through a dlsym'd pointer name one function type.
#pragma once

extern "C" {
using NvmlReturn = int;  // nvmlReturn_t: 0 NVML_SUCCESS
using NvmlDevice = void*;
struct nvmlUtilization_st {
  unsigned int gpu = 0;     // percent of the last period a kernel ran
  unsigned int memory = 0;  // percent of it memory was read or written
};
struct nvmlMemory_st {
  unsigned long long total = 0, free = 0, used = 0;  // bytes
};
}
