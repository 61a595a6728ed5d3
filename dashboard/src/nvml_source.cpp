#include <packtrain/dashboard/nvml_source.hpp>

#include <dlfcn.h>

#include "nvml_abi.h"

#include <utility>

namespace packtrain::dashboard {

using NvmlUtilization = nvmlUtilization_st;
using NvmlMemory = nvmlMemory_st;

struct NvmlSource::Api {
  void* library = nullptr;
  NvmlReturn (*init)() = nullptr;
  NvmlReturn (*shutdown)() = nullptr;
  const char* (*error_string)(NvmlReturn) = nullptr;
  NvmlReturn (*device_count)(unsigned int*) = nullptr;
  NvmlReturn (*handle_by_index)(unsigned int, NvmlDevice*) = nullptr;
  NvmlReturn (*utilization)(NvmlDevice, NvmlUtilization*) = nullptr;
  NvmlReturn (*memory)(NvmlDevice, NvmlMemory*) = nullptr;
  bool initialized = false;

  ~Api() {
    if (initialized) shutdown();
    if (library) dlclose(library);
  }
  std::string failed(const std::string& call, NvmlReturn code) const {
    const char* text = error_string ? error_string(code) : nullptr;
    return call + " returned " + std::to_string(code) + (text ? std::string(" (") + text + ")" : "");
  }
};

namespace {

template <typename F>
bool find(void* library, const char* name, F& into, std::string* why) {
  into = reinterpret_cast<F>(dlsym(library, name));
  if (!into && why) *why = std::string("NVML has no ") + name;
  return into != nullptr;
}

}  // namespace

std::shared_ptr<NvmlSource> NvmlSource::open(const std::vector<int>& gpus, std::string* why,
                                             const std::string& library) {
  auto api = std::make_unique<Api>();
  api->library = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!api->library) {
    const char* error = dlerror();
    if (why) *why = "cannot load " + library + (error ? std::string(": ") + error : "");
    return nullptr;
  }
  void* lib = api->library;
  if (!find(lib, "nvmlInit_v2", api->init, why) || !find(lib, "nvmlShutdown", api->shutdown, why) ||
      !find(lib, "nvmlErrorString", api->error_string, why) ||
      !find(lib, "nvmlDeviceGetCount_v2", api->device_count, why) ||
      !find(lib, "nvmlDeviceGetHandleByIndex_v2", api->handle_by_index, why) ||
      !find(lib, "nvmlDeviceGetUtilizationRates", api->utilization, why) ||
      !find(lib, "nvmlDeviceGetMemoryInfo", api->memory, why))
    return nullptr;
  if (const NvmlReturn r = api->init(); r != 0) {
    if (why) *why = api->failed("nvmlInit_v2", r);
    return nullptr;
  }
  api->initialized = true;
  unsigned int count = 0;
  if (const NvmlReturn r = api->device_count(&count); r != 0) {
    if (why) *why = api->failed("nvmlDeviceGetCount_v2", r);
    return nullptr;
  }
  std::vector<void*> handles;
  for (int gpu : gpus) {
    if (gpu < 0 || static_cast<unsigned int>(gpu) >= count) {
      if (why) *why = "NVML has " + std::to_string(count) + " GPU(s): no GPU " + std::to_string(gpu);
      return nullptr;
    }
    NvmlDevice handle = nullptr;
    if (const NvmlReturn r = api->handle_by_index(static_cast<unsigned int>(gpu), &handle); r != 0) {
      if (why) *why = api->failed("nvmlDeviceGetHandleByIndex_v2(" + std::to_string(gpu) + ")", r);
      return nullptr;
    }
    handles.push_back(handle);
  }
  return std::shared_ptr<NvmlSource>(new NvmlSource(std::move(api), gpus, std::move(handles)));
}

NvmlSource::NvmlSource(std::unique_ptr<Api> api, std::vector<int> gpus, std::vector<void*> handles)
    : api_(std::move(api)), gpus_(std::move(gpus)), handles_(std::move(handles)) {}

NvmlSource::~NvmlSource() = default;

std::vector<Series> NvmlSource::series() const {
  std::vector<Series> out;
  for (int gpu : gpus_) out.push_back({SeriesKind::gpu_busy, gpu});
  for (int gpu : gpus_) out.push_back({SeriesKind::gpu_memory_mb, gpu});
  return out;
}

void NvmlSource::read(std::vector<double>& out) {
  std::vector<double> memory;
  memory.reserve(handles_.size());
  for (void* handle : handles_) {
    NvmlUtilization use;
    out.push_back(api_->utilization(handle, &use) == 0 ? use.gpu / 100.0 : 0.0);
    NvmlMemory mem;
    memory.push_back(api_->memory(handle, &mem) == 0 ? static_cast<double>(mem.used) / (1024.0 * 1024.0) : 0.0);
  }
  out.insert(out.end(), memory.begin(), memory.end());
}

}  // namespace packtrain::dashboard
