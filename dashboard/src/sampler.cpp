#include <packtrain/dashboard/sampler.hpp>

#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/journal.hpp>

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>

namespace packtrain::dashboard {
namespace {

std::uint64_t parse_u64(std::string_view& text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc()) return 0;
  text.remove_prefix(static_cast<std::size_t>(end - text.data()));
  return value;
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

RereadableFile::~RereadableFile() {
  if (fd_ >= 0) ::close(fd_);
}

bool RereadableFile::read(std::string& out) {
  if (fd_ < 0) fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) return false;
  out.clear();
  char chunk[8192];
  for (off_t offset = 0;;) {
    const ssize_t n = ::pread(fd_, chunk, sizeof(chunk), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd_);  // reopen next time
      fd_ = -1;
      return false;
    }
    if (n == 0) break;
    out.append(chunk, static_cast<std::size_t>(n));
    offset += n;
  }
  return true;
}

std::string Series::name() const {
  switch (kind) {
    case SeriesKind::core_busy: return "cpu" + std::to_string(index);
    case SeriesKind::memory_mb: return "rss_mb";
    case SeriesKind::gpu_busy: return "gpu" + std::to_string(index) + "_busy";
    case SeriesKind::gpu_memory_mb: return "gpu" + std::to_string(index) + "_mem_mb";
  }
  return "";
}

std::string Series::label() const {
  switch (kind) {
    case SeriesKind::core_busy: return "core " + std::to_string(index);
    case SeriesKind::memory_mb: return "memory";
    case SeriesKind::gpu_busy: return "gpu " + std::to_string(index);
    case SeriesKind::gpu_memory_mb: return "gpu " + std::to_string(index) + " memory";
  }
  return "";
}

std::optional<Series> Series::from_name(std::string_view name) {
  auto number = [](std::string_view text) -> std::optional<int> {
    int value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty() || value < 0) return std::nullopt;
    return value;
  };
  if (name == "rss_mb") return Series{SeriesKind::memory_mb, 0};
  if (name.starts_with("cpu")) {
    if (auto n = number(name.substr(3))) return Series{SeriesKind::core_busy, *n};
    return std::nullopt;
  }
  if (name.starts_with("gpu")) {
    const auto rest = name.substr(3);
    const auto underscore = rest.find('_');
    if (underscore == std::string_view::npos) return std::nullopt;
    const auto n = number(rest.substr(0, underscore));
    const auto what = rest.substr(underscore + 1);
    if (n && what == "busy") return Series{SeriesKind::gpu_busy, *n};
    if (n && what == "mem_mb") return Series{SeriesKind::gpu_memory_mb, *n};
  }
  return std::nullopt;
}

// --- CpuSource -----------------------------------------------------------------

CpuSource::CpuSource(std::vector<int> cores, std::string proc_stat)
    : cores_(std::move(cores)), file_(std::move(proc_stat)), previous_(cores_.size()) {}

std::vector<Series> CpuSource::series() const {
  std::vector<Series> out;
  for (int c : cores_) out.push_back({SeriesKind::core_busy, c});
  return out;
}

void CpuSource::read(std::vector<double>& out) {
  // Lines "cpuN user nice system idle iowait irq softirq steal guest guest_nice".
  // guest time is already counted in user, so it is left out of the total.
  std::vector<Counters> now(cores_.size());
  if (file_.read(buffer_)) {
    std::string_view text(buffer_);
    while (!text.empty()) {
      const auto eol = text.find('\n');
      std::string_view line = text.substr(0, eol);
      text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
      if (!line.starts_with("cpu") || line.size() < 4 || line[3] < '0' || line[3] > '9') {
        if (!line.starts_with("cpu")) break;  // the per-CPU lines come first; stop at "intr"
        continue;                              // the aggregate "cpu " line
      }
      line.remove_prefix(3);
      const auto cpu = static_cast<int>(parse_u64(line));
      const auto it = std::find(cores_.begin(), cores_.end(), cpu);
      if (it == cores_.end()) continue;
      std::uint64_t field[8] = {};
      for (auto& f : field) f = parse_u64(line);
      const std::uint64_t idle = field[3] + field[4];
      std::uint64_t total = 0;
      for (auto f : field) total += f;
      auto& c = now[static_cast<std::size_t>(it - cores_.begin())];
      c = {.busy = total - idle, .total = total, .seen = true};
    }
  }
  for (std::size_t i = 0; i < cores_.size(); ++i) {
    const auto& before = previous_[i];
    const auto& after = now[i];
    double busy = 0;
    if (before.seen && after.seen && after.total > before.total && after.busy >= before.busy)
      busy = static_cast<double>(after.busy - before.busy) / static_cast<double>(after.total - before.total);
    out.push_back(std::clamp(busy, 0.0, 1.0));
    if (after.seen) previous_[i] = after;
  }
}

// --- MemorySource -----------------------------------------------------------------

MemorySource::MemorySource(std::string statm)
    : file_(std::move(statm)), page_mb_(static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0)) {}

std::vector<Series> MemorySource::series() const { return {{SeriesKind::memory_mb, 0}}; }

void MemorySource::read(std::vector<double>& out) {
  // "size resident shared text lib data dt", in pages.
  double mb = 0;
  if (file_.read(buffer_)) {
    std::string_view view(buffer_);
    parse_u64(view);
    mb = static_cast<double>(parse_u64(view)) * page_mb_;
  }
  out.push_back(mb);
}

// --- Sampler -----------------------------------------------------------------

Sampler::Sampler(std::vector<std::shared_ptr<SampleSource>> sources, int interval_ms, Callback on_sample)
    : sources_(std::move(sources)), interval_ms_(interval_ms), on_sample_(std::move(on_sample)) {
  if (interval_ms_ < 10)
    throw Error("sample interval " + std::to_string(interval_ms_) + " ms is too short (at least 10 ms)");
  for (const auto& s : sources_) {
    PACKTRAIN_CHECK(s != nullptr, "a null sample source");
    for (const auto& series : s->series()) series_.push_back(series);
  }
}

Sampler::~Sampler() { stop(); }

Sample Sampler::take() {
  Sample sample;
  sample.values.reserve(series_.size());
  for (const auto& s : sources_) s->read(sample.values);
  sample.time = unix_now();
  PACKTRAIN_CHECK(sample.values.size() == series_.size(), "a sample source returned the wrong number of values");
  return sample;
}

void Sampler::start() {
  PACKTRAIN_CHECK(!thread_.joinable(), "Sampler::start called twice");
  take();  // the baselines of rate sources
  thread_ = std::thread([this] { loop(); });
}

void Sampler::stop() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Sampler::loop() {
  using Clock = std::chrono::steady_clock;
  const auto interval = std::chrono::milliseconds(interval_ms_);
  auto next = Clock::now() + interval;
  auto last = Clock::now();
  for (;;) {
    bool stopping;
    {
      MutexLock lock(mutex_);
      // Sleeps until the next deadline or stop(): no polling. (A loop, not
      // a predicate lambda, so the thread-safety analysis sees the lock.)
      while (!stopping_ && wake_.wait_until(mutex_, next) == std::cv_status::no_timeout) {
      }
      stopping = stopping_;
    }
    const auto now = Clock::now();
    // The last sample covers the part interval since the previous one; a
    // few milliseconds would only be noise, unless it is the only one (a
    // run shorter than that still gets each core's busy fraction).
    if (!stopping || now - last >= std::chrono::milliseconds(10) || samples_.load(std::memory_order_relaxed) == 0) {
      const Sample sample = take();
      last = now;
      on_sample_(sample);
      samples_.fetch_add(1, std::memory_order_relaxed);
    }
    cpu_seconds_.store(thread_cpu_seconds(), std::memory_order_relaxed);
    if (stopping) return;
    next += interval;
    if (next < now) next = now + interval;  // fell behind (suspended): skip, do not burst
  }
}

}  // namespace packtrain::dashboard
