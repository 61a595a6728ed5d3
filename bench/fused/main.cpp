// bench_fused: samples/s of K folds trained fused (one model of stacked
// weights, train/fused_trainer.hpp) against the same K folds trained one
// after another, on one pinned core, in alternating rounds.
//
//   build/bench/fused/bench_fused [--folds 4] [--rounds 5] [--steps 150]
//                                 [--models mlp,lenet5] [--batches 32,64,256] [--optimizer adam|sgd]
//
// Each round trains every fold `steps` steps (one epoch on its first
// steps x batch samples of Fashion-MNIST), validating on 100 samples, so
// the figure is training's. kfold --fuse auto fuses where this bench
// measured fused faster (kfold/fuse.hpp).
#include <common/args.hpp>
#include <common/process.hpp>
#include <common/stats.hpp>

#include <packtrain/data/dataset.hpp>
#include <packtrain/data/folds.hpp>
#include <packtrain/models/models.hpp>
#include <packtrain/train/blas.hpp>
#include <packtrain/train/fused_trainer.hpp>

#include <torch/torch.h>


#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace train = packtrain::train;
namespace models = packtrain::models;
using Clock = std::chrono::steady_clock;
using packtrain::bench::split_commas;

struct Args {
  int folds = 4;
  int rounds = 5;
  std::int64_t steps = 150;
  std::vector<std::string> models{"mlp", "lenet5"};
  std::vector<std::int64_t> batches{32, 64, 256};
  train::OptimizerKind optimizer = train::OptimizerKind::adam;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf("usage: bench_fused [--folds K] [--rounds N] [--steps S] [--models mlp,lenet5] [--batches 32,64,256] "
                  "[--optimizer adam|sgd]\n");
      std::exit(0);
    }
    if (i + 1 >= argc) throw std::runtime_error(flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--folds") a.folds = std::stoi(value);
    else if (flag == "--rounds") a.rounds = std::stoi(value);
    else if (flag == "--steps") a.steps = std::stoll(value);
    else if (flag == "--models") a.models = split_commas(value);
    else if (flag == "--batches") {
      a.batches.clear();
      for (const auto& b : split_commas(value)) a.batches.push_back(std::stoll(b));
    } else if (flag == "--optimizer") a.optimizer = train::optimizer_from_string(value);
    else throw std::runtime_error("unknown option " + flag);
  }
  if (a.folds < 2 || a.rounds < 1 || a.steps < 1 || a.batches.empty() || a.models.empty())
    throw std::runtime_error("--folds must be at least 2, --rounds and --steps at least 1");
  return a;
}

}  // namespace

int main(int argc, char** argv) try {
  const auto args = parse(argc, argv);
  const auto split = packtrain::data::load_dataset("fashion-mnist");
  const int core = packtrain::bench::pin_to_this_cpu();
  at::set_num_threads(1);
  std::printf("bench_fused: %d folds, %lld steps each a round, %d rounds alternating, 1 thread pinned to core %d, %s; "
              "BLAS: %s\n\n",
              args.folds, static_cast<long long>(args.steps), args.rounds, core,
              std::string(train::to_string(args.optimizer)).c_str(), train::blas_core().c_str());
  std::printf("| model | batch | one after another, samples/s | fused, samples/s | fused / one after another |\n");
  std::printf("|---|---:|---:|---:|---:|\n");
  const models::ModelOptions shape{.channels = split.channels, .height = split.height, .width = split.width,
                                   .classes = split.classes};
  for (const auto& name : args.models) {
    for (const auto batch : args.batches) {
      const auto options = train::TrainOptions().epochs(1).batch_size(batch).threads(1).optimizer(args.optimizer);
      // Fold k trains on its own steps x batch samples and validates on 100 others.
      const std::int64_t n = args.steps * batch;
      std::vector<train::TrainData> data;
      for (int k = 0; k < args.folds; ++k) {
        const auto train_idx = torch::arange(k * n, (k + 1) * n, torch::kLong).remainder(split.train.size());
        const auto val_idx = torch::arange(0, 100, torch::kLong);
        data.push_back({split.train, train_idx, split.test, val_idx});
      }
      const double samples = static_cast<double>(n) * args.folds;
      std::vector<double> plain, fused;
      for (int r = 0; r < args.rounds; ++r) {
        // Alternate which goes first, so neither always gets the warmer caches.
        for (int which = 0; which < 2; ++which) {
          const bool fused_now = (which == 0) == (r % 2 == 0);
          std::vector<train::FusedFold> folds;
          for (int k = 0; k < args.folds; ++k) {
            auto o = shape;
            o.seed = static_cast<std::uint64_t>(k + 1);
            folds.push_back({models::make_model(name, o), data[static_cast<std::size_t>(k)], o.seed});
          }
          const auto start = Clock::now();
          if (fused_now) {
            train::fit_fused(name, folds, options);
          } else {
            for (auto& f : folds) train::Trainer(f.model, train::TrainOptions(options).seed(f.seed)).fit(f.data);
          }
          const double s = std::chrono::duration<double>(Clock::now() - start).count();
          (fused_now ? fused : plain).push_back(samples / s);
        }
      }
      const double p = packtrain::bench::median(plain), f = packtrain::bench::median(fused);
      std::printf("| %s | %lld | %.0f | %.0f | %.2fx |\n", name.c_str(), static_cast<long long>(batch), p, f, f / p);
      std::fflush(stdout);
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_fused: %s\n", e.what());
  return 2;
}
