#pragma once
// GPU utilization and memory through NVML, loaded with dlopen when a run
// starts: the binary needs no NVIDIA driver to start, and a machine without
// one gets a reason instead of a crash.
//
// Each GPU sampled gives two series: gpu_busy (the fraction of the last
// sample period a kernel ran, NVML's utilization.gpu / 100) and
// gpu_memory_mb (memory in use on the device, every process's). They feed
// report.html's GPU tracks, trace.json's counters and /metrics'
// packtrain_gpu_busy_ratio and packtrain_gpu_memory_bytes, like the cores'.
//
//   std::string why;
//   if (auto nvml = NvmlSource::open({0, 1}, &why)) sources.push_back(std::move(nvml));
//   else std::fprintf(stderr, "no GPU tracks: %s\n", why.c_str());
#include <packtrain/dashboard/sampler.hpp>

#include <memory>
#include <string>
#include <vector>

namespace packtrain::dashboard {

class NvmlSource : public SampleSource {
 public:
  // NVML's shared library, as the driver installs it.
  static constexpr const char* kLibrary = "libnvidia-ml.so.1";

  // Loads `library`, initializes NVML and finds `gpus` (NVML device
  // indices, which label the series). Null, with the reason in `why` (the
  // loader's message, the missing symbol, NVML's error code and text, or a
  // GPU NVML does not have), when any step fails; nothing stays loaded then.
  static std::shared_ptr<NvmlSource> open(const std::vector<int>& gpus, std::string* why,
                                          const std::string& library = kLibrary);
  ~NvmlSource() override;  // nvmlShutdown, dlclose
  NvmlSource(const NvmlSource&) = delete;
  NvmlSource& operator=(const NvmlSource&) = delete;

  std::vector<Series> series() const override;
  // A GPU NVML cannot read this time (it fell off the bus, a driver reset)
  // reads 0 busy and 0 MiB, and the next read tries again.
  void read(std::vector<double>& out) override;

 private:
  struct Api;
  NvmlSource(std::unique_ptr<Api> api, std::vector<int> gpus, std::vector<void*> handles);
  std::unique_ptr<Api> api_;
  std::vector<int> gpus_;
  std::vector<void*> handles_;  // nvmlDevice_t, per entry of gpus_
};

}  // namespace packtrain::dashboard
