// bench_scheduler: packtrain's executor against oneTBB on the same machine,
// side by side in one run, printing ratios (absolute times move on a shared
// machine; ratios hold better).
//
//  (a) 1,000,000 empty tasks spawned from one task and waited for
//  (b) recursive fork-join: fib(30), serial below a cutoff of 12
//  (c) 64 uneven CPU-bound jobs of 1-50 ms through the JobRunner:
//      makespan against the ideal (sum of job times / cores)
//  (d) what an idle executor costs: CPU time over one idle second
//  (e) fib(30) again, with one CPU-bound process per core running beside it
//      (busy loops, killed at the end): a worker that spins or yields while
//      it waits gives its core away to them, one that sleeps and is woken
//      does not
//
// Usage: bench_scheduler [--rounds N]   (default 7; medians are printed)
#include <packtrain/scheduler/executor.hpp>
#include <packtrain/scheduler/job_runner.hpp>
#include <packtrain/scheduler/resources.hpp>

#include <common/process.hpp>
#include <common/stats.hpp>

#include <tbb/global_control.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr int kEmptyTasks = 1'000'000;
constexpr int kFibN = 30;
constexpr int kFibCutoff = 12;
constexpr int kUnevenJobs = 64;

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

using packtrain::bench::median;

std::int64_t fib_serial(int n) { return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2); }

std::int64_t fib_packtrain(packtrain::Executor& ex, int n) {
  if (n < kFibCutoff) return fib_serial(n);
  std::int64_t x = 0;
  packtrain::TaskGroup g(ex);
  g.run([&] { x = fib_packtrain(ex, n - 1); });
  const std::int64_t y = fib_packtrain(ex, n - 2);
  g.wait();
  return x + y;
}

std::int64_t fib_tbb(int n) {
  if (n < kFibCutoff) return fib_serial(n);
  std::int64_t x = 0;
  tbb::task_group g;
  g.run([&] { x = fib_tbb(n - 1); });
  const std::int64_t y = fib_tbb(n - 2);
  g.wait();
  return x + y;
}

// One round of fib(30) on each, timed; exits when they disagree.
void time_fib(packtrain::Executor& ex, tbb::task_arena& arena, std::vector<double>& packtrain_s,
              std::vector<double>& tbb_s) {
  std::int64_t a = 0, b = 0;
  auto t = Clock::now();
  {
    packtrain::TaskGroup root(ex);
    root.run([&] { a = fib_packtrain(ex, kFibN); });
    root.wait();
  }
  packtrain_s.push_back(seconds_since(t));
  t = Clock::now();
  arena.execute([&] { b = fib_tbb(kFibN); });
  tbb_s.push_back(seconds_since(t));
  if (a != b || a != 832040) {
    std::fprintf(stderr, "fib(30) mismatch: %lld vs %lld\n", static_cast<long long>(a), static_cast<long long>(b));
    std::exit(1);
  }
}

// Spins until this thread has used `ms` milliseconds of CPU.
void burn_cpu(double ms) {
  timespec start{}, now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
  volatile double sink = 0;
  do {
    for (int i = 0; i < 1000; ++i) sink = sink + i * 0.5;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  } while ((now.tv_sec - start.tv_sec) * 1e3 + (now.tv_nsec - start.tv_nsec) / 1e6 < ms);
}

double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 7;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: bench_scheduler [--rounds N]\n");
      return 2;
    }
  }
  const auto node = packtrain::detect_node_resources();
  const int cores = node.core_count();
  std::printf("bench_scheduler: %d core(s), %d round(s), medians\n", cores, rounds);

  packtrain::Executor ex(node.cores);
  tbb::global_control tbb_threads(tbb::global_control::max_allowed_parallelism, cores);
  tbb::task_arena arena(cores);

  // (a) and (b), interleaved round by round.
  std::vector<double> empty_pt, empty_tbb, fib_pt, fib_tbb_t;
  for (int r = 0; r < rounds; ++r) {
    auto t = Clock::now();
    {
      packtrain::TaskGroup root(ex);
      root.run([&] {
        packtrain::TaskGroup g(ex);
        for (int i = 0; i < kEmptyTasks; ++i) g.run([] {});
        g.wait();
      });
      root.wait();
    }
    empty_pt.push_back(seconds_since(t));

    t = Clock::now();
    arena.execute([] {
      tbb::task_group g;
      for (int i = 0; i < kEmptyTasks; ++i) g.run([] {});
      g.wait();
    });
    empty_tbb.push_back(seconds_since(t));

    time_fib(ex, arena, fib_pt, fib_tbb_t);
  }
  std::printf("(a) 1M empty tasks      packtrain %8.1f ms   TBB %8.1f ms   packtrain/TBB %.2fx (target <= 1.5)\n",
              median(empty_pt) * 1e3, median(empty_tbb) * 1e3, median(empty_pt) / median(empty_tbb));
  std::printf("(b) fib(30), cutoff 12  packtrain %8.1f ms   TBB %8.1f ms   packtrain/TBB %.2fx (target <= 1.5)\n",
              median(fib_pt) * 1e3, median(fib_tbb_t) * 1e3, median(fib_pt) / median(fib_tbb_t));

  // (c) 64 uneven jobs of 1-50 ms: packtrain's runner (longest first) and
  // TBB's task_group (no cost model), each against its own ideal.
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> ms(1.0, 50.0);
  std::vector<double> job_ms(kUnevenJobs);
  for (auto& m : job_ms) m = ms(rng);
  std::vector<double> eff_pt, eff_tbb;
  for (int r = 0; r < std::max(1, rounds / 2); ++r) {
    packtrain::JobRunner runner(ex, node);
    std::vector<double> took(kUnevenJobs);
    for (int i = 0; i < kUnevenJobs; ++i) {
      packtrain::Job job;
      job.name = "uneven" + std::to_string(i);
      job.spec = {{"i", i}, {"round", r}};
      job.cost = job_ms[i];
      job.run = [&took, &job_ms, i](packtrain::JobContext&) {
        const auto t0 = Clock::now();
        burn_cpu(job_ms[i]);
        took[i] = seconds_since(t0);
        return packtrain::JobOutcome{};
      };
      runner.add(job);
    }
    auto t = Clock::now();
    runner.run();
    const double makespan = seconds_since(t);
    double sum = 0;
    for (double s : took) sum += s;
    eff_pt.push_back(sum / cores / makespan);

    t = Clock::now();
    std::vector<double> took_tbb(kUnevenJobs);
    arena.execute([&] {
      tbb::task_group g;
      for (int i = 0; i < kUnevenJobs; ++i)
        g.run([&, i] {
          const auto t0 = Clock::now();
          burn_cpu(job_ms[i]);
          took_tbb[i] = seconds_since(t0);
        });
      g.wait();
    });
    const double makespan_tbb = seconds_since(t);
    sum = 0;
    for (double s : took_tbb) sum += s;
    eff_tbb.push_back(sum / cores / makespan_tbb);
  }
  std::printf("(c) 64 uneven jobs      ideal/makespan: packtrain %.3f   TBB %.3f   (target >= 0.95)\n", median(eff_pt),
              median(eff_tbb));

  // (d) idle cost: the executor's workers sleep when there is nothing to do.
  const double cpu0 = process_cpu_seconds();
  const auto t = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const double idle = (process_cpu_seconds() - cpu0) / seconds_since(t);
  std::printf("(d) idle executor       %.3f%% of one core (target < 1%%)\n", idle * 100);

  // (e) fib(30) beside CPU-bound processes, one per core.
  {
    const packtrain::bench::BusyProcesses load(cores);
    std::vector<double> pt, tbb_t;
    for (int r = 0; r < rounds; ++r) time_fib(ex, arena, pt, tbb_t);
    std::printf("(e) fib(30), %d busy processes beside it  packtrain %8.1f ms   TBB %8.1f ms   packtrain/TBB %.2fx "
                "(target <= 3)\n",
                load.count(), median(pt) * 1e3, median(tbb_t) * 1e3, median(pt) / median(tbb_t));
  }
  return 0;
}
