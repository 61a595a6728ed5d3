// bench_dashboard: what watching a run costs. The dashboard must stay under
// 1% of one core (DESIGN.md: dashboard/; issue #5).
//
//  (a) the sampler alone on this node's cores, every 250 ms: the CPU time
//      of its thread over the wall time
//  (b) a whole run twice, side by side: the same jobs (they sleep, so the
//      cores stay idle and the difference is the dashboard's) without and
//      with a RunDashboard (sampler, utilization.csv, attempts.csv,
//      trace.json rewritten every second, the live server up, report.html
//      at the end): the process's extra CPU time over the wall time
//  (c) the sampler on a 128-core node: a synthetic /proc/stat with 128 CPUs
//      (the parse is the cost that grows with cores)
//
// Usage: bench_dashboard [--seconds S]   (default 10 per measurement)
#include <packtrain/dashboard/run_dashboard.hpp>
#include <packtrain/dashboard/sampler.hpp>
#include <packtrain/scheduler/executor.hpp>
#include <packtrain/scheduler/job_runner.hpp>
#include <packtrain/scheduler/resources.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace {

constexpr int kSampleMs = 250;
constexpr int kSyntheticCores = 128;

using Clock = std::chrono::steady_clock;

double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

void report(const char* what, double cpu_s, double wall_s) {
  std::printf("%-58s %7.4f%% of one core  (%.1f ms CPU in %.1f s)\n", what, 100.0 * cpu_s / wall_s, cpu_s * 1e3, wall_s);
}

double sampler_share(std::vector<std::shared_ptr<packtrain::dashboard::SampleSource>> sources, double seconds,
                     const char* what) {
  packtrain::dashboard::Sampler sampler(std::move(sources), kSampleMs, [](const packtrain::dashboard::Sample&) {});
  const auto start = Clock::now();
  sampler.start();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  sampler.stop();
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();
  report(what, sampler.cpu_seconds(), wall);
  return sampler.cpu_seconds() / wall;
}

// Runs jobs that sleep for `seconds` in all, on every core; with a dashboard
// when `dir` is not empty. Returns the process's CPU seconds over the run.
double run_sleeping_jobs(const packtrain::NodeResources& node, double seconds, const std::filesystem::path& dir,
                         double* wall) {
  packtrain::Executor executor(node.cores);
  packtrain::JobRunner runner(executor, node);
  const int per_core = 10;
  const int job_ms = static_cast<int>(seconds * 1000 / per_core);
  for (int i = 0; i < per_core * node.core_count(); ++i) {
    packtrain::Job job;
    job.name = "sleep" + std::to_string(i);
    job.spec = {{"i", i}};
    job.run = [job_ms](packtrain::JobContext&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(job_ms));
      return packtrain::JobOutcome{.metrics = {{"val_top1", 0.5}}};
    };
    runner.add(job);
  }
  std::unique_ptr<packtrain::dashboard::RunDashboard> dash;
  packtrain::RunOptions options;
  const double cpu0 = process_cpu_seconds();
  const auto start = Clock::now();
  if (!dir.empty()) {
    dash = std::make_unique<packtrain::dashboard::RunDashboard>(
        packtrain::dashboard::DashboardOptions().out_dir(dir).cores(node.cores).sample_ms(kSampleMs).serve_port(0));
    options.sinks.push_back(dash.get());
  }
  const auto summary = runner.run(options);
  if (dash) dash->finish(summary);
  dash.reset();
  *wall = std::chrono::duration<double>(Clock::now() - start).count();
  return process_cpu_seconds() - cpu0;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 10;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = std::atof(argv[++i]);
  const auto node = packtrain::detect_node_resources();
  std::printf("bench_dashboard: %d core(s), a sample every %d ms, %.0f s per measurement\n\n", node.core_count(),
              kSampleMs, seconds);

  using packtrain::dashboard::CpuSource;
  using packtrain::dashboard::MemorySource;
  const std::string cores_label = "(a) sampler alone, " + std::to_string(node.core_count()) + " core(s)";
  sampler_share({std::make_shared<CpuSource>(node.cores), std::make_shared<MemorySource>()}, seconds, cores_label.c_str());

  const auto dir = std::filesystem::temp_directory_path() / ("bench-dashboard-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  double wall_without = 0, wall_with = 0;
  const double without = run_sleeping_jobs(node, seconds, "", &wall_without);
  const double with = run_sleeping_jobs(node, seconds, dir / "run", &wall_with);
  std::printf("(b) a run of sleeping jobs: %.1f ms CPU without the dashboard, %.1f ms with it\n", without * 1e3, with * 1e3);
  report("    the whole dashboard's extra CPU", std::max(0.0, with - without), wall_with);

  // A synthetic /proc/stat of a big node, with the interrupt line real ones have.
  const auto stat = dir / "stat";
  {
    std::ofstream out(stat);
    out << "cpu  1 2 3 4 5 6 7 8 0 0\n";
    for (int c = 0; c < kSyntheticCores; ++c) out << "cpu" << c << " 123456 789 45678 9876543 1234 0 567 0 0 0\n";
    out << "intr 123456789";
    for (int i = 0; i < 4000; ++i) out << " " << i;
    out << "\nctxt 123456789\nbtime 1700000000\nprocesses 12345\n";
  }
  std::vector<int> many(kSyntheticCores);
  for (int c = 0; c < kSyntheticCores; ++c) many[c] = c;
  sampler_share({std::make_shared<CpuSource>(many, stat.string()), std::make_shared<MemorySource>()}, seconds,
                "(c) sampler alone, 128 cores (synthetic /proc/stat)");
  std::filesystem::remove_all(dir);
  return 0;
}
