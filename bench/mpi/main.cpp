// bench_mpi: a 32-job uneven sweep (CPU-bound jobs of 5-40 ms x scale) run
// as 2 MPI ranks x 1 core and as 1 rank x 2 cores, alternately, in one run.
// Prints the makespan ratio (target within 10%), and each rank's steals and
// time spent in MPI calls.
//
// Usage: bench_mpi [--rounds N] [--scale S]   (default 3 rounds, scale 4)
#include <common/process.hpp>
#include <common/stats.hpp>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

struct Result {
  double makespan = 0;
  std::vector<nlohmann::json> ranks;
};

Result run(int ranks, int cores, const std::string& scale, const std::filesystem::path& out) {
  std::filesystem::remove_all(out);
  std::vector<std::string> argv = {PACKTRAIN_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "--bind-to",
                                   ranks == 1 ? "none" : "core", "-np", std::to_string(ranks),
                                   PACKTRAIN_MPI_DRIVER, "--out", out.string(), "--jobs", "32", "--cores",
                                   std::to_string(cores), "--scale", scale};
  if (!packtrain::bench::run_process(argv).ok()) {
    std::fprintf(stderr, "bench_mpi: mpirun -np %d failed\n", ranks);
    std::exit(1);
  }
  Result r;
  for (int k = 0; k < ranks; ++k) {
    std::ifstream in(out / ("rank-" + std::to_string(k)) / "summary.json");
    r.ranks.push_back(nlohmann::json::parse(in));
    r.makespan = std::max(r.makespan, r.ranks.back()["makespan_s"].get<double>());
  }
  return r;
}

using packtrain::bench::median;

}  // namespace

int main(int argc, char** argv) {
  int rounds = 3;
  std::string scale = "4";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--scale") && i + 1 < argc) scale = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_mpi [--rounds N] [--scale S]\n");
      return 2;
    }
  }
  const auto work = std::filesystem::temp_directory_path() / ("bench_mpi." + std::to_string(getpid()));
  std::vector<double> two_ranks, one_rank, ratio;
  Result last;
  for (int r = 0; r < rounds; ++r) {
    last = run(2, 1, scale, work / "two");
    const auto single = run(1, 2, scale, work / "one");
    two_ranks.push_back(last.makespan);
    one_rank.push_back(single.makespan);
    ratio.push_back(last.makespan / single.makespan);
  }
  std::filesystem::remove_all(work);
  std::printf("bench_mpi: 32 uneven jobs, %d round(s), medians\n", rounds);
  std::printf("2 ranks x 1 core  makespan %.3f s\n", median(two_ranks));
  std::printf("1 rank  x 2 cores makespan %.3f s\n", median(one_rank));
  std::printf("ratio (2 ranks / 1 rank)   %.3f  (target <= 1.10)\n", median(ratio));
  for (const auto& s : last.ranks)
    std::printf("  rank %d (last round): steals %d, jobs received %d, given %d, %.4f s in MPI calls\n",
                s["rank"].get<int>(), s["steals"].get<int>(), s["jobs_received"].get<int>(),
                s["jobs_given"].get<int>(), s["mpi_seconds"].get<double>());
  return 0;
}
