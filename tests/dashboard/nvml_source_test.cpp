// NvmlSource over a simulated NVML (sim_nvml.cpp): this machine has no
// NVIDIA driver, which is the other case tested: a reason, not a crash.
#include <packtrain/dashboard/nvml_source.hpp>
#include <packtrain/dashboard/run_files.hpp>

#include "dashboard/dashboard_fixture.hpp"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>
#include <string>
#include <vector>

using namespace packtrain;
using namespace packtrain::dashboard;
using namespace packtrain::testing;

namespace {

// Keeps the simulated library loaded, so its count of live inits can be read.
struct Sim {
  Sim() : handle(dlopen(PACKTRAIN_SIM_NVML, RTLD_NOW | RTLD_LOCAL)) {
    live = reinterpret_cast<int (*)()>(dlsym(handle, "sim_nvml_live"));
  }
  ~Sim() { dlclose(handle); }
  void* handle;
  int (*live)() = nullptr;
};

}  // namespace

TEST(NvmlSource, ReadsEachGpusBusyFractionAndMemoryAndShutsNvmlDown) {
  Sim sim;
  ASSERT_NE(sim.live, nullptr);
  {
    std::string why;
    auto nvml = NvmlSource::open({0, 1}, &why, PACKTRAIN_SIM_NVML);
    ASSERT_NE(nvml, nullptr) << why;
    EXPECT_EQ(sim.live(), 1);
    EXPECT_EQ(nvml->series(), (std::vector<Series>{{SeriesKind::gpu_busy, 0},
                                                   {SeriesKind::gpu_busy, 1},
                                                   {SeriesKind::gpu_memory_mb, 0},
                                                   {SeriesKind::gpu_memory_mb, 1}}));
    std::vector<double> values;
    nvml->read(values);
    EXPECT_EQ(values, (std::vector<double>{0.3, 0.7, 1024, 2048}));
    // A GPU that cannot be read this time reads zeros; the others go on.
    setenv("SIM_NVML_LOST", "1", 1);
    values.clear();
    nvml->read(values);
    unsetenv("SIM_NVML_LOST");
    EXPECT_EQ(values, (std::vector<double>{0.3, 0, 1024, 0}));
  }
  EXPECT_EQ(sim.live(), 0) << "nvmlShutdown was not called";
}

TEST(NvmlSource, OneGpuOfSeveralIsLabelledByItsIndex) {
  std::string why;
  auto nvml = NvmlSource::open({1}, &why, PACKTRAIN_SIM_NVML);
  ASSERT_NE(nvml, nullptr) << why;
  std::vector<double> values;
  nvml->read(values);
  EXPECT_EQ(values, (std::vector<double>{0.7, 2048}));
  EXPECT_EQ(nvml->series().front().name(), "gpu1_busy");
}

TEST(NvmlSource, EveryFailureIsAReasonAndLeavesNothingOpen) {
  Sim sim;
  std::string why;
  // No driver (this machine): the loader's message.
  EXPECT_EQ(NvmlSource::open({0}, &why, "libpacktrain-no-such-nvml.so.1"), nullptr);
  EXPECT_NE(why.find("cannot load libpacktrain-no-such-nvml.so.1"), std::string::npos) << why;
  // A library without a call NvmlSource needs.
  EXPECT_EQ(NvmlSource::open({0}, &why, PACKTRAIN_SIM_NVML_PARTIAL), nullptr);
  EXPECT_EQ(why, "NVML has no nvmlDeviceGetMemoryInfo");
  // NVML refuses to start (no driver loaded: NVML_ERROR_DRIVER_NOT_LOADED, 9).
  setenv("SIM_NVML_INIT_ERROR", "9", 1);
  EXPECT_EQ(NvmlSource::open({0}, &why, PACKTRAIN_SIM_NVML), nullptr);
  unsetenv("SIM_NVML_INIT_ERROR");
  EXPECT_EQ(why, "nvmlInit_v2 returned 9 (simulated error)");
  // A GPU it does not have: NVML is shut down again.
  EXPECT_EQ(NvmlSource::open({0, 2}, &why, PACKTRAIN_SIM_NVML), nullptr);
  EXPECT_EQ(why, "NVML has 2 GPU(s): no GPU 2");
  EXPECT_EQ(sim.live(), 0);
}

// A run's dashboard with the GPUs NVML reports: their tracks in report.html
// and their columns in utilization.csv, as the cores'.
TEST(NvmlSource, ARunsReportHasATrackPerGpuSeries) {
  std::string why;
  auto nvml = NvmlSource::open({0, 1}, &why, PACKTRAIN_SIM_NVML);
  ASSERT_NE(nvml, nullptr) << why;
  DashboardHarness h(2, DashboardOptions().add_source(nvml));
  h.run.runner->add(sleeping_job("a", 30));
  h.run.runner->add(sleeping_job("b", 30));
  h.run_and_finish();
  const auto html = read_file(h.dir / "report.html");
  for (const char* name : {"gpu0_busy", "gpu1_busy", "gpu0_mem_mb", "gpu1_mem_mb"})
    EXPECT_NE(html.find("class=\"gpu-track\" data-series=\"" + std::string(name) + "\""), std::string::npos) << name;
  std::map<std::string, double> last;
  ASSERT_TRUE(read_utilization(h.dir / "utilization.csv", [&](const std::vector<Series>& series, const Sample& s) {
    for (std::size_t i = 0; i < series.size(); ++i) last[series[i].name()] = s.values[i];
  }));
  EXPECT_DOUBLE_EQ(last["gpu0_busy"], 0.3);
  EXPECT_DOUBLE_EQ(last["gpu1_busy"], 0.7);
  EXPECT_DOUBLE_EQ(last["gpu1_mem_mb"], 2048);
}
