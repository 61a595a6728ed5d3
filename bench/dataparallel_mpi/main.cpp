// bench_dataparallel_mpi: one lenet5 job trained as 2 MPI ranks x 1 core (a
// gang: mpirun -np 2 packtrain train) against 1 rank x 2 replicas and
// 1 rank x 1 core, alternately, in one run, at global batch 64 and 256.
// Prints the median wall times, the ratio of the gang to the in-node
// replicas (target: within 10%), the gang's share of time in gradient sync
// (from its results.json) and its exchange bandwidth, against the
// machine's memcpy bandwidth as the bound. Then the gang alone at batch
// 256 (4 micro-batches a rank) with gradient buckets of 0.01, 1, 25 and
// 128 MiB, each with the exchanges overlapping backward and without (after
// the rank's micro-batches are summed): the job's seconds and sync share.
//
// Usage: bench_dataparallel_mpi [--rounds N] [--limit SAMPLES]   (default 3 rounds, 20000 samples)
#include <common/process.hpp>
#include <common/stats.hpp>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

using packtrain::bench::median;
namespace fs = std::filesystem;

struct Run {
  double wall = 0;
  double job = 0;  // the job's own seconds (results.json): training and evaluation, no start-up
  double sync_share = 0;
  double mpi_seconds = 0;  // the gang only: rank 0's seconds in exchanges
  double gb_per_s = 0;     // the gang only: bytes gathered per second in exchanges
  double kib = 0;          // the gang only: one rank's packet, on average
  double exchanges = 0;    // the gang only: buckets and step headers, evaluations, start and end
};

std::string quoted(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += "'" + a + "' ";
  return s;
}

Run run(int ranks, int cores, int batch, const std::string& limit, const fs::path& out,
        const std::vector<std::string>& extra = {}) {
  fs::remove_all(out);
  std::vector<std::string> inner = {PACKTRAIN_CLI,    "train",      "--model",        "lenet5",
                                    "--epochs",      "1",          "--batch-size",   std::to_string(batch),
                                    "--micro-batch", "32",         "--limit",        limit,
                                    "--cores",       std::to_string(cores), "--out", out.string()};
  inner.insert(inner.end(), extra.begin(), extra.end());
  std::vector<std::string> argv;
  if (ranks > 1)
    argv = {PACKTRAIN_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", std::to_string(ranks)};
  argv.insert(argv.end(), inner.begin(), inner.end());
  const auto log = out.string() + ".log";
  const auto r = packtrain::bench::run_process({"/bin/sh", "-c", quoted(argv) + "> '" + log + "' 2>&1"});
  if (!r.ok()) {
    std::fprintf(stderr, "bench_dataparallel_mpi: %s failed; its output is in %s\n", quoted(argv).c_str(), log.c_str());
    std::exit(1);
  }
  Run result;
  result.wall = r.wall_s;
  std::ifstream in(out / "results.json");
  const auto json = nlohmann::json::parse(in);
  result.sync_share = json["jobs"][0]["metrics"].value("sync_share", 0.0);
  result.job = json["jobs"][0].value("seconds", 0.0);
  std::ifstream text(log);
  std::stringstream all;
  all << text.rdbuf();
  std::smatch m;
  const std::string s = all.str();
  if (std::regex_search(s, m, std::regex(R"(([0-9]+) exchanges of ([0-9.]+) KiB a rank: ([0-9.]+) s in MPI.* ([0-9.]+) GB/s)"))) {
    result.exchanges = std::stod(m[1]);
    result.kib = std::stod(m[2]);
    result.mpi_seconds = std::stod(m[3]);
    result.gb_per_s = std::stod(m[4]);
  }
  return result;
}

// One core's memcpy bandwidth over 256 MiB buffers (GB/s): the bound for a
// shared-memory exchange.
double memcpy_gb_per_s() {
  const std::size_t n = std::size_t{256} << 20;
  std::vector<char> a(n, 1), b(n, 0);
  std::vector<double> rates;
  for (int i = 0; i < 5; ++i) {
    const auto t = std::chrono::steady_clock::now();
    std::memcpy(b.data(), a.data(), n);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    rates.push_back(static_cast<double>(n) / s * 1e-9);
    a[static_cast<std::size_t>(i)] = b[n - 1 - static_cast<std::size_t>(i)];  // keep the copies
  }
  return median(rates);
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 3;
  std::string limit = "20000";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--limit") && i + 1 < argc) {
      limit = argv[++i];
    } else {
      std::fprintf(stderr, "usage: bench_dataparallel_mpi [--rounds N] [--limit SAMPLES]\n");
      return 2;
    }
  }
  const auto dir = fs::temp_directory_path() / ("bench_dataparallel_mpi." + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::printf("bench_dataparallel_mpi: lenet5, 1 epoch on %s samples, micro-batches of 32, %d round(s), medians\n\n",
              limit.c_str(), rounds);
  std::printf("%6s %12s %14s %12s %14s %12s %14s %10s %9s %10s\n", "batch", "1 rank x 1", "1 rank x 2 rep", "2 ranks x 1",
              "gang / 2 rep", "2 rep speed", "job: gang/2rep", "gang sync", "MPI s", "GB/s");
  double packet_kib = 0;
  for (const int batch : {64, 256}) {
    std::vector<double> one, replicas, gang, share, mpi_s, rate, job_ratio;
    for (int r = 0; r < rounds; ++r) {
      one.push_back(run(1, 1, batch, limit, dir / "one").wall);
      const auto two = run(1, 2, batch, limit, dir / "replicas");
      replicas.push_back(two.wall);
      const auto g = run(2, 1, batch, limit, dir / "gang");
      gang.push_back(g.wall);
      job_ratio.push_back(g.job / two.job);
      share.push_back(g.sync_share);
      mpi_s.push_back(g.mpi_seconds);
      rate.push_back(g.gb_per_s);
      packet_kib = g.kib;
    }
    std::printf("%6d %11.2fs %13.2fs %11.2fs %13.2fx %11.2fx %13.2fx %9.1f%% %9.2f %10.2f\n", batch, median(one),
                median(replicas), median(gang), median(gang) / median(replicas), median(one) / median(replicas),
                median(job_ratio), 100 * median(share), median(mpi_s), median(rate));
  }

  // Buckets and overlap: the gang alone, batch 256, both settings side by side in each round.
  std::printf("\n2 ranks x 1 core, batch 256: gradient buckets, exchanges overlapping backward or not\n");
  std::printf("%10s %10s %12s %12s %12s %12s %12s\n", "cap MiB", "exchanges", "job s (on)", "job s (off)",
              "off / on", "sync (on)", "sync (off)");
  for (const char* cap : {"0.01", "1", "25", "128"}) {
    std::vector<double> on_s, off_s, on_share, off_share, ratio;
    double exchanges = 0;
    for (int r = 0; r < rounds; ++r) {
      const auto on = run(2, 1, 256, limit, dir / "on", {"--bucket-cap-mb", cap, "--overlap", "on"});
      const auto off = run(2, 1, 256, limit, dir / "off", {"--bucket-cap-mb", cap, "--overlap", "off"});
      on_s.push_back(on.job);
      off_s.push_back(off.job);
      ratio.push_back(off.job / on.job);
      on_share.push_back(on.sync_share);
      off_share.push_back(off.sync_share);
      exchanges = on.exchanges;
    }
    std::printf("%10s %10.0f %11.2fs %11.2fs %11.3fx %11.1f%% %11.1f%%\n", cap, exchanges, median(on_s), median(off_s),
                median(ratio), 100 * median(on_share), 100 * median(off_share));
  }
  fs::remove_all(dir);
  const double bound = memcpy_gb_per_s();
  std::printf("\nmemcpy on one core: %.2f GB/s. An allgather of a %.0f KiB packet on 2 ranks moves %.0f KiB into each "
              "rank: at memcpy speed %.1f us, the ring model's (p-1)/p x size / bandwidth for the same bytes.\n",
              bound, packet_kib, packet_kib, packet_kib * 1024 / (bound * 1e9) * 1e6);
  std::printf("'gang / 2 rep' is the wall time of 2 ranks x 1 core over 1 rank x 2 replicas (target: within 1.10x), "
              "start-up included (mpirun, and each rank loads LibTorch and the data); 'job: gang/2rep' compares the "
              "job's own seconds; 'gang sync' is the gang job's sync share (reduce + wait, the exchanges included).\n");
  return 0;
}
