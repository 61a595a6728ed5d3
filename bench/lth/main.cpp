// bench_lth: what lottery-ticket sweeps cost, measured side by side in one run.
//
// (1) The masked training step against the plain one: two copies of the same
//     mlp (batch 64, SGD with momentum 0.9 and weight decay, one intra-op
//     thread), one under MaskedTraining (90% removed), their steps
//     interleaved in blocks so that load from other processes hits both
//     alike. Target overhead <= 5%. For comparison, a third copy masks its
//     weights and momentum after every step instead (the method before
//     gradient masking).
// (2) The sweep of the issue, packed against --serial: two real `packtrain
//     lth` processes (as bench_kfold does), mlp, reset epochs 0,1,2 x
//     sparsities 0.5,0.8,0.9,0.95,0.98 (1 dense job + 15 retrains) on a part
//     of Fashion-MNIST. Target speedup >= 0.9 x cores. Nothing can run beside
//     the dense job (every retrain needs its final weights), so the bench
//     prints the two phases and the speedup that phase alone allows.
//
// Usage: bench_lth [--steps N] [--blocks N] [--packtrain PATH] [--no-sweep] [-- extra lth options]
#include <packtrain/lth/mask.hpp>
#include <packtrain/models/models.hpp>
#include <packtrain/scheduler/resources.hpp>

#include <common/process.hpp>
#include <common/stats.hpp>

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
#include <optional>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::int64_t kBatch = 64;
constexpr double kSparsity = 0.9;

using packtrain::bench::median;

enum class Masking { none, gradients, after_step };

// One model and its optimizer; run() times `steps` SGD steps (momentum 0.9,
// weight decay 5e-4) and returns seconds per step.
struct StepBench {
  explicit StepBench(Masking masking) : masking(masking) {
    const auto mask = packtrain::lth::magnitude_mask(*model, kSparsity, packtrain::lth::Scope::global);
    if (masking == Masking::gradients) masked.emplace(mask, *model, &sgd);
    if (masking != Masking::after_step) return;
    mask.apply(*model);
    for (std::size_t i = 0; i < mask.keep.size(); ++i) {
      weights.push_back(packtrain::lth::prunable_weights(*model)[i].second);
      keep.push_back(mask.keep[i]);
    }
  }

  double run(int steps) {
    const auto start = Clock::now();
    for (int s = 0; s < steps; ++s) {
      sgd.zero_grad();
      const auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
      loss.backward();
      sgd.step();
      if (masking == Masking::after_step) mask_after_step();
    }
    return std::chrono::duration<double>(Clock::now() - start).count() / steps;
  }

  // Weights and momentum buffers, one in-place multiply each.
  void mask_after_step() {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < weights.size(); ++i) {
      weights[i].mul_(keep[i]);
      const auto key = c10::guts::to_string(weights[i].unsafeGetTensorImpl());
      static_cast<torch::optim::SGDParamState&>(*sgd.state().at(key)).momentum_buffer().mul_(keep[i]);
    }
  }

  Masking masking;
  std::shared_ptr<packtrain::models::Model> model = packtrain::models::make_model("mlp", {.seed = 1});
  torch::optim::SGD sgd{model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(5e-4)};
  torch::Tensor x = torch::randn({kBatch, 1, 28, 28});
  torch::Tensor y = torch::randint(0, 10, {kBatch}, torch::kInt64);
  std::optional<packtrain::lth::MaskedTraining> masked;
  std::vector<at::Tensor> weights, keep;
};

struct Sweep {
  double makespan = 0;     // the sweep itself, from results.json
  double dense = 0;        // from the start to the dense job's end
  double retrains = 0;     // from the dense job's end to the last job's end
  double retrain_job_s = 0;  // the retrains' own times added up
};

Sweep run_sweep(const std::string& packtrain, const std::vector<std::string>& extra, bool serial,
                const std::filesystem::path& out) {
  if (!packtrain::bench::run_packtrain(packtrain, "lth", out, extra, serial).ok()) {
    std::fprintf(stderr, "bench_lth: packtrain lth%s failed\n", serial ? " --serial" : "");
    std::exit(1);
  }
  std::ifstream in(out / "results.json");
  const auto json = nlohmann::json::parse(in);
  Sweep sweep;
  sweep.makespan = json["summary"]["makespan_s"].get<double>();
  double first_start = 1e300, last_end = 0, dense_end = 0;
  for (const auto& job : json["jobs"]) {
    first_start = std::min(first_start, job["started_at"].get<double>());
    last_end = std::max(last_end, job["ended_at"].get<double>());
    if (job["kind"] == "dense") dense_end = job["ended_at"].get<double>();
    else sweep.retrain_job_s += job["seconds"].get<double>();
  }
  sweep.dense = dense_end - first_start;
  sweep.retrains = last_end - dense_end;
  return sweep;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 200, blocks = 20;
  bool sweep = true;
  std::string packtrain =
      (std::filesystem::canonical("/proc/self/exe").parent_path() / "../../cli/packtrain").lexically_normal().string();
  // The sweep on 30,000 samples and 4 epochs (retrains of 4, 3 and 2
  // epochs): about a minute serial on 2 cores.
  std::vector<std::string> extra = {"--model",        "mlp",   "--epochs",     "4",
                                    "--limit",        "30000", "--reset-epochs", "0,1,2",
                                    "--sparsities",   "0.5,0.8,0.9,0.95,0.98"};
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
  StepBench plain(Masking::none), masked(Masking::gradients), after(Masking::after_step);
  for (auto* b : {&plain, &masked, &after}) b->run(20);  // warm up; the optimizer makes its momentum buffers
  std::vector<double> plain_s, masked_s, after_s, masked_ratio, after_ratio;
  for (int b = 0; b < blocks; ++b) {
    plain_s.push_back(plain.run(steps));
    masked_s.push_back(masked.run(steps));
    after_s.push_back(after.run(steps));
    masked_ratio.push_back(masked_s.back() / plain_s.back());
    after_ratio.push_back(after_s.back() / plain_s.back());
  }
  std::printf("(1) mlp step, batch %lld, 1 thread, %d blocks of %d steps each, medians:\n", static_cast<long long>(kBatch),
              blocks, steps);
  std::printf("    plain %.3f ms   masked (%.0f%% removed, gradients masked) %.3f ms   overhead %+.1f%%  (target <= +5%%)\n",
              1e3 * median(plain_s), 100 * kSparsity, 1e3 * median(masked_s), 100 * (median(masked_ratio) - 1));
  std::printf("    for comparison, weights and momentum masked after each step: %.3f ms   overhead %+.1f%%\n",
              1e3 * median(after_s), 100 * (median(after_ratio) - 1));
  if (!sweep) return 0;

  // (2) the sweep packed against --serial.
  const int cores = packtrain::detect_node_resources().core_count();
  const auto work = std::filesystem::temp_directory_path() / ("bench_lth." + std::to_string(getpid()));
  const auto serial = run_sweep(packtrain, extra, true, work / "serial");
  const auto packed = run_sweep(packtrain, extra, false, work / "packed");
  std::filesystem::remove_all(work);
  if (getloadavg(load, 3) < 0) load[0] = -1;
  std::printf("(2) packtrain lth");
  for (const auto& a : extra) std::printf(" %s", a.c_str());
  std::printf("\n    serial %.1f s   packed %.1f s   speedup %.2fx  (target >= %.2f = 0.9 x %d cores)\n", serial.makespan,
              packed.makespan, serial.makespan / packed.makespan, 0.9 * cores, cores);
  std::printf("    dense job alone: serial %.1f s, packed %.1f s\n", serial.dense, packed.dense);
  std::printf("    retrains: serial %.1f s, packed %.1f s (%.2fx; their own times %.1f s)\n", serial.retrains,
              packed.retrains, serial.retrains / packed.retrains, packed.retrain_job_s);
  // Were the retrains packed perfectly (cores x), the dense job would still run alone.
  std::printf("    the most the dense phase allows: %.2fx\n",
              serial.makespan / (serial.dense + serial.retrains / cores));
  std::printf("    load average after: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
  return 0;
}
