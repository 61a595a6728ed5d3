// bench_lth: what lottery-ticket sweeps cost, measured side by side in one run.
//
// (1) The masked training step against the plain one: the same mlp, batch
//     64, one intra-op thread, the two interleaved in blocks so that load
//     from other processes hits both alike. Target overhead <= 5%.
// (2) The whole sweep packed against --serial: two real `packtrain lth`
//     processes each (as bench_kfold does). Target speedup >= 0.9 x cores.
//
// Usage: bench_lth [--steps N] [--blocks N] [--packtrain PATH] [--no-sweep] [-- extra lth options]
#include <packtrain/lth/mask.hpp>
#include <packtrain/models/models.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::int64_t kBatch = 64;
constexpr double kSparsity = 0.9;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Seconds per step of `steps` SGD steps (momentum 0.9, weight decay 5e-4), masked or not.
struct StepBench {
  std::shared_ptr<packtrain::models::Model> model = packtrain::models::make_model("mlp", {.seed = 1});
  torch::optim::SGD sgd{model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(5e-4)};
  torch::Tensor x = torch::randn({kBatch, 1, 28, 28});
  torch::Tensor y = torch::randint(0, 10, {kBatch}, torch::kInt64);
  packtrain::lth::MaskedTraining masked{packtrain::lth::magnitude_mask(*model, kSparsity, packtrain::lth::Scope::global),
                                        *model, &sgd};

  double run(int steps, bool mask) {
    const auto start = Clock::now();
    for (int s = 0; s < steps; ++s) {
      sgd.zero_grad();
      const auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
      loss.backward();
      sgd.step();
      if (mask) masked.apply();
    }
    return std::chrono::duration<double>(Clock::now() - start).count() / steps;
  }
};

double run_sweep(const std::string& packtrain, const std::vector<std::string>& extra, bool serial,
                 const std::filesystem::path& out) {
  std::filesystem::remove_all(out);
  std::vector<std::string> argv = {packtrain, "lth", "--out", out.string(), "--quiet"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  if (serial) argv.push_back("--serial");
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    dup2(devnull, STDOUT_FILENO);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "bench_lth: packtrain lth%s failed\n", serial ? " --serial" : "");
    std::exit(1);
  }
  std::ifstream in(out / "results.json");
  return nlohmann::json::parse(in)["summary"]["makespan_s"].get<double>();
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 200, blocks = 10;
  bool sweep = true;
  std::string packtrain =
      (std::filesystem::canonical("/proc/self/exe").parent_path() / "../../cli/packtrain").lexically_normal().string();
  // mlp, 3 epochs on 10,000 samples, reset epochs 0 and 1, 3 sparsities: 1 dense + 6 retrains.
  std::vector<std::string> extra = {"--model", "mlp", "--epochs", "3", "--limit", "10000", "--reset-epochs", "0,1",
                                    "--sparsities", "0.5,0.8,0.9"};
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) steps = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--blocks") && i + 1 < argc) blocks = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--packtrain") && i + 1 < argc) packtrain = argv[++i];
    else if (!std::strcmp(argv[i], "--no-sweep")) sweep = false;
    else if (!std::strcmp(argv[i], "--")) {
      extra.assign(argv + i + 1, argv + argc);
      break;
    } else {
      std::fprintf(stderr, "usage: bench_lth [--steps N] [--blocks N] [--packtrain PATH] [--no-sweep] [-- lth options]\n");
      return 2;
    }
  }
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) < 0) load[0] = -1;
  std::printf("bench_lth: load average %.2f %.2f %.2f on %u hardware threads\n", load[0], load[1], load[2],
              std::thread::hardware_concurrency());

  // (1) masked against plain steps, interleaved.
  at::set_num_threads(1);
  StepBench bench;
  bench.run(20, false);
  bench.run(20, true);  // warm up (and let the optimizer create its momentum buffers)
  std::vector<double> plain, masked, ratio;
  for (int b = 0; b < blocks; ++b) {
    const double p = bench.run(steps, false);
    const double m = bench.run(steps, true);
    plain.push_back(p);
    masked.push_back(m);
    ratio.push_back(m / p);
  }
  std::printf("(1) mlp step, batch %lld, 1 thread, %d blocks of %d steps each, medians:\n", static_cast<long long>(kBatch),
              blocks, steps);
  std::printf("    plain %.3f ms   masked (%.0f%% removed) %.3f ms   overhead %+.1f%%  (target <= +5%%)\n",
              1e3 * median(plain), 100 * kSparsity, 1e3 * median(masked), 100 * (median(ratio) - 1));

  {
    const auto start = Clock::now();
    for (int s = 0; s < 1000; ++s) bench.masked.apply();
    const double apply = std::chrono::duration<double>(Clock::now() - start).count() / 1000;
    std::printf("    MaskedTraining::apply alone (weights and momentum of %lld weights) %.3f ms = %.1f%% of a plain step\n",
                static_cast<long long>(266200), 1e3 * apply, 100 * apply / median(plain));
  }
  if (!sweep) return 0;
  // (2) the sweep packed against --serial.
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  const auto work = std::filesystem::temp_directory_path() / ("bench_lth." + std::to_string(getpid()));
  const double serial = run_sweep(packtrain, extra, true, work / "serial");
  const double packed = run_sweep(packtrain, extra, false, work / "packed");
  std::filesystem::remove_all(work);
  if (getloadavg(load, 3) < 0) load[0] = -1;
  std::printf("(2) packtrain lth");
  for (const auto& a : extra) std::printf(" %s", a.c_str());
  std::printf("\n    serial %.1f s   packed %.1f s   speedup %.2fx  (target >= %.2f = 0.9 x %d cores)\n", serial, packed,
              serial / packed, 0.9 * cores, cores);
  std::printf("    load average after: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
  return 0;
}
