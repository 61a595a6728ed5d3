#include <packtrain/dashboard/sampler.hpp>
#include <packtrain/scheduler/error.hpp>

#include "common/test_util.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

using namespace packtrain;
using namespace packtrain::dashboard;
using packtrain::testing::TempDir;
using packtrain::testing::write_file;

namespace {

// "cpuN user nice system idle iowait irq softirq steal guest guest_nice"
std::string proc_stat(const std::vector<std::array<int, 8>>& cpus) {
  std::string text = "cpu  999 0 999 999 0 0 0 0 0 0\n";
  for (std::size_t i = 0; i < cpus.size(); ++i) {
    text += "cpu" + std::to_string(i);
    for (int v : cpus[i]) text += " " + std::to_string(v);
    text += " 0 0\n";
  }
  return text + "intr 12345 1 2 3\nctxt 42\n";
}

// A source that counts its reads, for the Sampler's own behaviour.
class CountingSource : public SampleSource {
 public:
  std::vector<Series> series() const override { return {{SeriesKind::gpu_busy, 0}, {SeriesKind::gpu_memory_mb, 0}}; }
  void read(std::vector<double>& out) override {
    const int n = ++reads;
    out.push_back(0.5);
    out.push_back(static_cast<double>(n));
  }
  std::atomic<int> reads{0};
};

}  // namespace

TEST(Series, NamesRoundTripAndUnknownNamesAreRejected) {
  for (Series s : {Series{SeriesKind::core_busy, 17}, Series{SeriesKind::memory_mb, 0}, Series{SeriesKind::gpu_busy, 3},
                   Series{SeriesKind::gpu_memory_mb, 1}}) {
    const auto back = Series::from_name(s.name());
    ASSERT_TRUE(back.has_value()) << s.name();
    EXPECT_EQ(*back, s);
  }
  const Series core3{SeriesKind::core_busy, 3};
  EXPECT_EQ(core3.name(), "cpu3");
  EXPECT_EQ(core3.label(), "core 3");
  for (const char* bad : {"cpu", "cpux", "cpu-1", "gpu0", "gpu0_temp", "rss", "time", ""})
    EXPECT_FALSE(Series::from_name(bad).has_value()) << bad;
}

TEST(CpuSource, BusyFractionIsTheShareOfNonIdleJiffiesSinceTheLastRead) {
  TempDir dir;
  const auto stat = dir / "stat";
  write_file(stat, proc_stat({{100, 0, 100, 800, 0, 0, 0, 0}, {10, 0, 10, 80, 0, 0, 0, 0}}));
  CpuSource source({1, 0, 5}, stat.string());
  ASSERT_EQ(source.series().size(), 3u);
  EXPECT_EQ(source.series()[0], (Series{SeriesKind::core_busy, 1}));

  std::vector<double> first;
  source.read(first);
  EXPECT_EQ(first, (std::vector<double>{0, 0, 0}));  // the baseline

  // cpu0: +30 user, +10 system, +50 idle, +10 iowait -> 40 busy of 100.
  // cpu1: +100 idle -> 0. cpu5 is not in the file -> 0.
  write_file(stat, proc_stat({{130, 0, 110, 850, 10, 0, 0, 0}, {10, 0, 10, 180, 0, 0, 0, 0}}));
  std::vector<double> second;
  source.read(second);
  ASSERT_EQ(second.size(), 3u);
  EXPECT_DOUBLE_EQ(second[0], 0.0);
  EXPECT_DOUBLE_EQ(second[1], 0.4);
  EXPECT_DOUBLE_EQ(second[2], 0.0);

  // cpu1 fully busy over the next interval (irq and softirq count as busy).
  write_file(stat, proc_stat({{130, 0, 110, 850, 10, 0, 0, 0}, {60, 0, 40, 180, 0, 5, 5, 0}}));
  std::vector<double> third;
  source.read(third);
  EXPECT_DOUBLE_EQ(third[0], 1.0);
  EXPECT_DOUBLE_EQ(third[1], 0.0);  // cpu0 did not move: no time passed for it
}

TEST(CpuSource, ReadsTheRealProcStat) {
  CpuSource source({0});
  std::vector<double> v;
  source.read(v);
  source.read(v);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_GE(v[1], 0.0);
  EXPECT_LE(v[1], 1.0);
}

TEST(MemorySource, ResidentPagesInMiB) {
  TempDir dir;
  write_file(dir / "statm", "5000 2048 100 10 0 900 0\n");
  MemorySource source((dir / "statm").string());
  std::vector<double> v;
  source.read(v);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_DOUBLE_EQ(v[0], 2048.0 * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0));

  MemorySource self;
  std::vector<double> mine;
  self.read(mine);
  EXPECT_GT(mine[0], 0.0);  // this test process has resident memory
}

TEST(Sampler, SamplesEveryIntervalOnItsOwnThread) {
  auto source = std::make_shared<CountingSource>();
  std::mutex m;
  std::condition_variable cv;
  std::vector<Sample> samples;
  std::vector<std::thread::id> threads;
  Sampler sampler({source}, 10, [&](const Sample& s) {
    std::lock_guard lock(m);
    samples.push_back(s);
    threads.push_back(std::this_thread::get_id());
    cv.notify_all();
  });
  ASSERT_EQ(sampler.series().size(), 2u);
  sampler.start();
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return samples.size() >= 3; });
  }
  sampler.stop();
  sampler.stop();  // idempotent
  std::lock_guard lock(m);
  EXPECT_EQ(sampler.samples_taken(), samples.size());
  for (std::size_t i = 0; i < samples.size(); ++i) {
    ASSERT_EQ(samples[i].values.size(), 2u);
    EXPECT_EQ(samples[i].values[1], static_cast<double>(i + 2));  // read 1 was the baseline
    EXPECT_NE(threads[i], std::this_thread::get_id());
    if (i > 0) {
      EXPECT_GE(samples[i].time, samples[i - 1].time);
    }
  }
  EXPECT_GE(sampler.cpu_seconds(), 0.0);
}

TEST(Sampler, StopRightAfterALongSleepTakesTheLastSampleAtOnce) {
  auto source = std::make_shared<CountingSource>();
  int calls = 0;
  Sampler sampler({source}, 3'600'000, [&](const Sample&) { ++calls; });  // an hour between samples
  sampler.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  sampler.stop();  // returns without waiting the hour: the thread sleeps on a condition variable
  EXPECT_EQ(calls, 1);  // the last sample, covering the 30 ms since start()
  EXPECT_EQ(source->reads.load(), 2);  // the baseline and that sample
}

TEST(Sampler, RejectsIntervalsShorterThanTenMilliseconds) {
  EXPECT_THROW(Sampler({std::make_shared<CountingSource>()}, 5, [](const Sample&) {}), Error);
}
