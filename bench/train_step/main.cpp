// bench_train_step: packtrain's training step (Trainer + shared dataset +
// prefetching BatchLoader) against a plain hand-written LibTorch loop on the
// same model, in one run, on one core, with one intra-op thread.
//
// The two run in alternating rounds (ABBA order), so drift on a shared
// machine hits both alike; the overhead is the median of the per-round ratios.
// The plain loop is what one writes by hand: shuffle with randperm, gather a
// batch with index_select, forward, cross-entropy, backward, SGD step, read
// the loss. packtrain adds the per-step LR schedule, NaN check, callbacks and
// the prefetching loader (whose helper thread shares the core).
//
// Usage: bench_train_step [--rounds N] [--steps S] [--model NAME]
//        (defaults 9 rounds of 300 steps, mlp; target overhead: at most 5%)
#include <packtrain/data/dataset.hpp>
#include <packtrain/data/seed.hpp>
#include <packtrain/models/models.hpp>
#include <packtrain/train/trainer.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <sched.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr std::int64_t kBatch = 64;
constexpr double kLr = 0.05;
constexpr double kMomentum = 0.9;
constexpr double kWeightDecay = 5e-4;

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

std::shared_ptr<packtrain::models::Model> fresh_model(const std::string& name, std::uint64_t seed) {
  return packtrain::models::make_model(name, {.channels = 1, .height = 28, .width = 28, .classes = 10, .seed = seed});
}

// packtrain: one epoch over `steps` batches of the shared training part (no validation).
double packtrain_round(const packtrain::data::DatasetSplit& data, const std::string& name, std::int64_t steps,
                       bool prefetch, std::uint64_t seed) {
  auto model = fresh_model(name, seed);
  const auto options = packtrain::train::TrainOptions()
                           .epochs(1)
                           .batch_size(kBatch)
                           .lr(kLr)
                           .momentum(kMomentum)
                           .weight_decay(kWeightDecay)
                           .schedule(packtrain::train::Schedule::cosine)
                           .threads(1)
                           .prefetch(prefetch)
                           .seed(seed);
  packtrain::train::TrainData view{data.train, torch::arange(steps * kBatch, torch::kInt64), {}, {}};
  const auto start = Clock::now();
  packtrain::train::Trainer trainer(model, options);
  const auto result = trainer.fit(view);
  const double seconds = seconds_since(start);
  if (result.steps != steps) std::fprintf(stderr, "packtrain ran %lld steps, not %lld\n", (long long)result.steps, (long long)steps);
  return seconds;
}

// The hand-written loop, on the same data and model.
double plain_round(const packtrain::data::DatasetSplit& data, const std::string& name, std::int64_t steps,
                   std::uint64_t seed) {
  auto model = fresh_model(name, seed);
  const auto start = Clock::now();
  torch::optim::SGD optimizer(model->parameters(),
                              torch::optim::SGDOptions(kLr).momentum(kMomentum).weight_decay(kWeightDecay));
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto order = torch::randperm(steps * kBatch, generator, torch::kInt64);
  model->train();
  double loss_sum = 0;
  for (std::int64_t step = 0; step < steps; ++step) {
    const auto idx = order.narrow(0, step * kBatch, kBatch);
    const auto images = data.train.images.index_select(0, idx);
    const auto labels = data.train.labels.index_select(0, idx);
    optimizer.zero_grad();
    const auto loss = torch::nn::functional::cross_entropy(model->forward(images), labels);
    loss.backward();
    optimizer.step();
    loss_sum += loss.item<double>();
  }
  const double seconds = seconds_since(start);
  if (!(loss_sum > 0)) std::fprintf(stderr, "plain loop: odd loss %f\n", loss_sum);
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 9;
  std::int64_t steps = 300;
  std::string model = "mlp";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--rounds")) rounds = std::max(1, std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--steps")) steps = std::max(1, std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--model")) model = argv[i + 1];
  }

  // One core, one intra-op thread: a job as packtrain packs it.
  cpu_set_t one;
  CPU_ZERO(&one);
  sched_getaffinity(0, sizeof one, &one);
  int core = 0;
  while (!CPU_ISSET(core, &one)) ++core;
  CPU_ZERO(&one);
  CPU_SET(core, &one);
  sched_setaffinity(0, sizeof one, &one);
  (void)at::get_num_threads();
  at::set_num_threads(1);

  const auto data = packtrain::data::shared_dataset("fashion-mnist");
  steps = std::min<std::int64_t>(steps, data->train.size() / kBatch);
  std::printf("bench_train_step: %s, batch %lld, 1 thread pinned to core %d, %d rounds of %lld steps\n", model.c_str(),
              (long long)kBatch, core, rounds, (long long)steps);

  // Warm-up: first touches of the data, allocator and oneDNN/OpenBLAS buffers.
  plain_round(*data, model, 50, 1);
  packtrain_round(*data, model, 50, true, 1);
  packtrain_round(*data, model, 50, false, 1);

  std::vector<double> plain, with_prefetch, without_prefetch, ratio_prefetch, ratio_inline;
  for (int r = 0; r < rounds; ++r) {
    const std::uint64_t seed = 100 + static_cast<std::uint64_t>(r);
    double p = 0, a = 0, b = 0;
    if (r % 2 == 0) {  // ABBA: alternate which goes first
      p = plain_round(*data, model, steps, seed);
      a = packtrain_round(*data, model, steps, true, seed);
      b = packtrain_round(*data, model, steps, false, seed);
    } else {
      b = packtrain_round(*data, model, steps, false, seed);
      a = packtrain_round(*data, model, steps, true, seed);
      p = plain_round(*data, model, steps, seed);
    }
    plain.push_back(p);
    with_prefetch.push_back(a);
    without_prefetch.push_back(b);
    ratio_prefetch.push_back(a / p);
    ratio_inline.push_back(b / p);
  }
  const double ms = 1e3 / static_cast<double>(steps);
  std::printf("  plain LibTorch loop           %.3f ms/step (median)\n", median(plain) * ms);
  std::printf("  packtrain, prefetch thread    %.3f ms/step   ratio to plain %.3f (median of rounds; min %.3f)\n",
              median(with_prefetch) * ms, median(ratio_prefetch),
              *std::min_element(ratio_prefetch.begin(), ratio_prefetch.end()));
  std::printf("  packtrain, prefetch off       %.3f ms/step   ratio to plain %.3f (median of rounds; min %.3f)\n",
              median(without_prefetch) * ms, median(ratio_inline),
              *std::min_element(ratio_inline.begin(), ratio_inline.end()));
  const double overhead = (median(ratio_prefetch) - 1.0) * 100.0;
  std::printf("  overhead of packtrain's step: %+.1f%% (target: at most +5%%)\n", overhead);

  // One whole epoch of the training part through the Trainer, with the
  // end-of-epoch evaluation on the 10,000 test images.
  auto epoch_model = fresh_model(model, 1);
  packtrain::train::Trainer trainer(epoch_model, packtrain::train::TrainOptions().epochs(1).threads(1).seed(1));
  std::vector<packtrain::train::EpochMetrics> epochs;
  const auto result = trainer.fit(packtrain::train::TrainData::train_test(*data),
                                  {.on_epoch = [&](const packtrain::train::EpochMetrics& m) { epochs.push_back(m); }});
  std::printf("  one %s epoch on one core: %.2f s (%lld steps and the test-set evaluation), test top-1 %.4f\n",
              model.c_str(), epochs.empty() ? 0.0 : epochs[0].seconds, (long long)result.steps, result.val.top1);
  return 0;
}
