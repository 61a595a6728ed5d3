// bench_kfold: the same K-fold sweep run `--serial` and packed, side by side
// in one run, as two real `packtrain kfold` processes each. Prints the
// speedup (serial makespan / packed makespan, target >= 0.9 x cores) and the
// peak resident memory of packed against serial (target <= 1.3: one shared
// dataset, not one per job).
//
// Usage: bench_kfold [--rounds N] [--packtrain PATH] [-- extra kfold options]
#include <common/process.hpp>
#include <common/stats.hpp>
#include <packtrain/scheduler/resources.hpp>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Measure {
  double wall_s = 0;       // the whole process
  double makespan_s = 0;   // the sweep itself, from results.json
  double job_s = 0;        // the jobs' own times added up
  double max_rss_mb = 0;
};

Measure run_sweep(const std::string& packtrain, const std::vector<std::string>& extra, bool serial,
                  const std::filesystem::path& out) {
  const auto run = packtrain::bench::run_packtrain(packtrain, "kfold", out, extra, serial);
  Measure m;
  m.wall_s = run.wall_s;
  m.max_rss_mb = run.max_rss_mb;
  if (!run.ok()) {
    std::fprintf(stderr, "bench_kfold: packtrain kfold%s failed\n", serial ? " --serial" : "");
    std::exit(1);
  }
  std::ifstream in(out / "results.json");
  const auto json = nlohmann::json::parse(in);
  m.makespan_s = json["summary"]["makespan_s"].get<double>();
  m.job_s = json["summary"]["job_seconds"].get<double>();
  return m;
}

using packtrain::bench::median;

}  // namespace

int main(int argc, char** argv) {
  int rounds = 1;
  std::string packtrain =
      (std::filesystem::canonical("/proc/self/exe").parent_path() / "../../cli/packtrain").lexically_normal().string();
  // mlp and lenet5, one schedule, 4 folds, one epoch on 20,000 samples: 8 jobs.
  std::vector<std::string> extra = {"--models", "mlp,lenet5", "--schedules", "cosine", "--folds", "4",
                                    "--epochs", "1",          "--limit",     "20000"};
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--packtrain") && i + 1 < argc) {
      packtrain = argv[++i];
    } else if (!std::strcmp(argv[i], "--")) {
      extra.assign(argv + i + 1, argv + argc);
      break;
    } else {
      std::fprintf(stderr, "usage: bench_kfold [--rounds N] [--packtrain PATH] [-- kfold options]\n");
      return 2;
    }
  }
  const int cores = packtrain::detect_node_resources().core_count();
  const auto work = std::filesystem::temp_directory_path() / ("bench_kfold." + std::to_string(getpid()));
  std::vector<double> speedup, speedup_wall, rss_ratio;
  Measure s, p;
  for (int r = 0; r < rounds; ++r) {
    s = run_sweep(packtrain, extra, true, work / "serial");
    p = run_sweep(packtrain, extra, false, work / "packed");
    speedup.push_back(s.makespan_s / p.makespan_s);
    speedup_wall.push_back(s.wall_s / p.wall_s);
    rss_ratio.push_back(p.max_rss_mb / s.max_rss_mb);
    std::printf("round %d: serial %.1f s (%.0f MiB)  packed %.1f s (%.0f MiB)\n", r + 1, s.makespan_s, s.max_rss_mb,
                p.makespan_s, p.max_rss_mb);
  }
  std::filesystem::remove_all(work);
  std::printf("bench_kfold: %d core(s), %d round(s), medians\n", cores, rounds);
  std::printf("speedup packed/serial (sweep makespan)   %.2fx  (target >= %.2f = 0.9 x cores)\n", median(speedup),
              0.9 * cores);
  std::printf("speedup packed/serial (whole process)    %.2fx  (includes loading the dataset once)\n",
              median(speedup_wall));
  std::printf("peak resident memory packed/serial       %.2fx  (target <= 1.3)\n", median(rss_ratio));
  return 0;
}
