#pragma once
// Utilization sampling: where every core (and, later, GPU) went.
//
// A Sampler owns a list of SampleSources and one background thread. Every
// interval (250 ms by default) the thread asks each source for its current
// values and hands the whole Sample to a callback; between samples it sleeps
// on a condition variable, so it costs nothing while waiting and stops at
// once. Sources shipped here read Linux's /proc: per-core busy fractions
// (/proc/stat) and this process's resident memory (/proc/self/statm). A GPU
// source (NVML) is another SampleSource that returns gpu_busy /
// gpu_memory_mb series; nothing else changes.
//
//   std::vector<std::shared_ptr<SampleSource>> sources = {
//       std::make_shared<CpuSource>(node.cores), std::make_shared<MemorySource>()};
//   Sampler sampler(sources, 250, [](const Sample& s) { ... runs on the sampler thread ... });
//   sampler.start();
//   ...
//   sampler.stop();   // one last sample, then the thread ends
#include <packtrain/scheduler/mutex.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace packtrain::dashboard {

// What a series measures. Fractions are 0..1; memory is in MiB.
enum class SeriesKind { core_busy, memory_mb, gpu_busy, gpu_memory_mb };

// One measured quantity, e.g. core 3's busy fraction.
struct Series {
  SeriesKind kind = SeriesKind::core_busy;
  int index = 0;  // the core id or GPU index; 0 for process memory

  // The column name in utilization.csv: "cpu3", "rss_mb", "gpu0_busy", "gpu0_mem_mb".
  std::string name() const;
  // For people: "core 3", "memory", "gpu 0", "gpu 0 memory".
  std::string label() const;
  // The inverse of name(); nothing for a name no source writes.
  static std::optional<Series> from_name(std::string_view name);

  bool operator==(const Series&) const = default;
};

// One reading of every series of a sampler, in Sampler::series() order.
struct Sample {
  double time = 0;  // unix seconds
  std::vector<double> values;
};

// Something that can be measured repeatedly. Sources are called from the
// sampler thread only, so they need no locking.
class SampleSource {
 public:
  virtual ~SampleSource() = default;
  // The series this source produces; fixed for the life of the source.
  virtual std::vector<Series> series() const = 0;
  // Appends one value per series, measured now. Rates (busy fractions) are
  // over the time since the previous call; the first call sets the baseline
  // (and appends zeros for rates).
  virtual void read(std::vector<double>& out) = 0;
};

// A small file read again and again through one open descriptor (pread
// from offset 0): /proc generates its text afresh on every read, and a kept
// descriptor costs one system call per sample instead of three.
class RereadableFile {
 public:
  explicit RereadableFile(std::string path) : path_(std::move(path)) {}
  ~RereadableFile();
  RereadableFile(const RereadableFile&) = delete;
  RereadableFile& operator=(const RereadableFile&) = delete;

  // The whole file into `out`; false when it cannot be opened or read.
  bool read(std::string& out);

 private:
  std::string path_;
  int fd_ = -1;
};

// Busy fraction of each of `cores` since the previous read, from the
// per-CPU jiffy counters in /proc/stat: 1 - (idle + iowait) / total. It
// counts every process on the core, not only this one: the question is
// where the core went. A core missing from the file (offline, or a virtual
// core in tests) reads 0.
class CpuSource : public SampleSource {
 public:
  explicit CpuSource(std::vector<int> cores, std::string proc_stat = "/proc/stat");
  std::vector<Series> series() const override;
  void read(std::vector<double>& out) override;

 private:
  struct Counters {
    std::uint64_t busy = 0, total = 0;
    bool seen = false;
  };
  std::vector<int> cores_;
  RereadableFile file_;
  std::vector<Counters> previous_;  // per entry of cores_
  std::string buffer_;              // reused between reads
};

// Resident memory of this process in MiB, from /proc/self/statm.
class MemorySource : public SampleSource {
 public:
  explicit MemorySource(std::string statm = "/proc/self/statm");
  std::vector<Series> series() const override;
  void read(std::vector<double>& out) override;

 private:
  RereadableFile file_;
  std::string buffer_;
  double page_mb_;
};

class Sampler {
 public:
  using Callback = std::function<void(const Sample&)>;

  // `interval_ms` must be at least 10 (Error otherwise). `on_sample` runs on
  // the sampler thread; it must not call back into the sampler.
  Sampler(std::vector<std::shared_ptr<SampleSource>> sources, int interval_ms, Callback on_sample);
  ~Sampler();  // stop()
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // Every source's series, concatenated in source order.
  const std::vector<Series>& series() const { return series_; }
  int interval_ms() const { return interval_ms_; }

  // Reads every source once (their baseline), then starts the thread.
  void start();
  // Wakes the thread, which takes one last sample (so a run shorter than
  // one interval still has one) and ends; joins it. Idempotent.
  void stop();

  // CPU time the sampler thread has used so far (its callback included):
  // what the dashboard costs. Safe from any thread.
  double cpu_seconds() const { return cpu_seconds_.load(std::memory_order_relaxed); }
  std::uint64_t samples_taken() const { return samples_.load(std::memory_order_relaxed); }

 private:
  Sample take();
  void loop();

  std::vector<std::shared_ptr<SampleSource>> sources_;
  std::vector<Series> series_;
  int interval_ms_;
  Callback on_sample_;
  std::thread thread_;
  Mutex mutex_;
  std::condition_variable_any wake_;
  bool stopping_ PACKTRAIN_GUARDED_BY(mutex_) = false;
  std::atomic<double> cpu_seconds_{0};
  std::atomic<std::uint64_t> samples_{0};
};

}  // namespace packtrain::dashboard
