// bench_simulate: how fast `packtrain simulate`'s engine (scheduler/
// simulator.hpp) runs, and what it predicts for sweeps larger than this
// machine.
//
//  (1) Speed: kfold-like sweeps of 1,000, 10,000 and 100,000 one-core jobs
//      on 100 nodes x 128 cores, one core here: seconds, events, and how the
//      time grows with the jobs (target: 100,000 jobs under 60 s).
//  (2) Prediction: 1,000 jobs on 1, 10 and 100 nodes of 16 cores, with
//      work stealing and without (each node runs its deal, as --shard
//      splits a sweep): efficiency = ideal / makespan.
//
// The jobs: five model sizes of a kfold sweep (mlp 1x, lenet5 3x, a few
// larger) with durations drawn around each size (+-30%), estimates (cost)
// the sizes' means: the policy sees estimates, the simulated jobs take
// their own times, as in a real sweep.
//
// Usage: bench_simulate [--max-jobs N] [--latency-us U]   (defaults 100000, 5)
#include <packtrain/scheduler/simulator.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using packtrain::SimJob;
using packtrain::SimOptions;

std::vector<SimJob> sweep(int n, std::uint64_t seed) {
  const double sizes[] = {60, 180, 240, 900, 1800};  // seconds on one core, by model
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> spread(0.7, 1.3);
  std::vector<SimJob> jobs;
  jobs.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const double size = sizes[i % 5];
    jobs.push_back({.id = std::to_string(i), .name = "job" + std::to_string(i), .cost = size,
                    .seconds = size * spread(rng)});
  }
  return jobs;
}

}  // namespace

int main(int argc, char** argv) {
  int max_jobs = 100000;
  double latency_us = 5;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--max-jobs") && i + 1 < argc) {
      max_jobs = std::max(1000, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--latency-us") && i + 1 < argc) {
      latency_us = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: bench_simulate [--max-jobs N] [--latency-us U]\n");
      return 2;
    }
  }
  std::printf("bench_simulate: (1) one core simulating sweeps on 100 nodes x 128 cores, latency %.0f us\n", latency_us);
  std::printf("%10s %10s %12s %12s %14s %12s\n", "jobs", "seconds", "events", "us / job", "pred. makespan", "efficiency");
  double previous = 0;
  for (int n = 1000; n <= max_jobs; n *= 10) {
    const auto jobs = sweep(n, 7);
    const SimOptions o{.nodes = 100, .cores = 128, .latency_s = latency_us * 1e-6};
    const auto t = std::chrono::steady_clock::now();
    const auto r = packtrain::simulate(jobs, o);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    std::printf("%10d %9.2fs %12lld %12.1f %13.0fs %12.3f%s\n", n, s, static_cast<long long>(r.events), s / n * 1e6,
                r.makespan, r.efficiency(o),
                previous > 0 ? ("   x" + std::to_string(s / previous).substr(0, 5) + " the time of 10x fewer").c_str() : "");
    previous = s;
  }

  // (2) and (3): the same 1,000 jobs; in (3) the estimates are wrong where
  // the deal puts them on one node (every nodes-th job by estimate takes 4x
  // its estimate: a model much slower than its FLOPs say, say).
  for (const bool skewed : {false, true}) {
    std::printf(skewed ? "\n(3) the same, but every N-th job of the deal (all on node 0) takes 4x its estimate\n"
                       : "\n(2) 1,000 jobs on N nodes x 16 cores: efficiency (ideal / makespan)\n");
    std::printf("%8s %14s %14s %16s %16s %12s\n", "nodes", "stealing", "no stealing", "makespan (st.)",
                "makespan (none)", "jobs moved");
    for (const int nodes : {1, 10, 100}) {
      auto jobs = sweep(1000, 11);
      if (skewed) {
        // The deal's order: longest estimate first, ties by index; position p goes to node p % nodes.
        std::vector<int> order(jobs.size());
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return jobs[a].cost > jobs[b].cost; });
        for (std::size_t p = 0; p < order.size(); p += static_cast<std::size_t>(nodes)) jobs[order[p]].seconds *= 4;
      }
      SimOptions o{.nodes = nodes, .cores = 16, .latency_s = latency_us * 1e-6};
      const auto with = packtrain::simulate(jobs, o);
      o.steal = false;
      const auto without = packtrain::simulate(jobs, o);
      std::printf("%8d %14.3f %14.3f %15.0fs %15.0fs %12d\n", nodes, with.efficiency(o), without.efficiency(o),
                  with.makespan, without.makespan, with.jobs_moved);
    }
  }
  std::printf("\nThe efficiency's bound is the work's granularity: on 100 nodes x 16 cores, 1,000 jobs leave most\n"
              "cores without one, and the makespan is at least the longest job.\n");
  return 0;
}
