// bench_train_step: packtrain's training step (Trainer + shared dataset +
// BatchLoader) against a plain hand-written LibTorch loop on the
// same model, in one run, on one core, with one intra-op thread.
//
// The two run in alternating rounds (ABBA order), so drift on a shared
// machine hits both alike; the overhead is the median of the per-round
// ratios, in wall time and in the process's CPU time (all its threads, the
// prefetch helper included): on a machine other work is loading, CPU time
// is the steadier of the two, as time spent preempted does not count.
// The plain loop is what one writes by hand: shuffle with randperm, gather a
// batch with index_select, forward, cross-entropy, backward, SGD step, read
// the loss. packtrain adds the per-step LR schedule, NaN check, callbacks and
// its loader; on one core the loader gathers inline by default, and the
// third variant forces its prefetch helper thread onto the same core.
//
// With --scripted FILE.pt (a TorchScript module of the same architecture as
// --model, e.g. tests/fixtures/torchscript/lenet_300_100.pt for mlp), it
// then times the two models through packtrain's Trainer in alternating
// rounds, and their forward passes and forward + backward passes alone, to
// say where a difference goes (target: the file's step within 15%).
//
// Usage: bench_train_step [--rounds N] [--steps S] [--model NAME] [--scripted FILE.pt]
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
#include <ctime>
#include <string>
#include <vector>

namespace {

constexpr std::int64_t kBatch = 64;
constexpr double kLr = 0.05;
constexpr double kMomentum = 0.9;
constexpr double kWeightDecay = 5e-4;

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// CPU seconds used by every thread of this process so far.
double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

struct Timing {
  double wall = 0;
  double cpu = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

std::shared_ptr<packtrain::models::Model> fresh_model(const std::string& name, std::uint64_t seed) {
  return packtrain::models::make_model(name, {.channels = 1, .height = 28, .width = 28, .classes = 10, .seed = seed});
}

// packtrain: one epoch over `steps` batches of the shared training part (no validation).
Timing packtrain_round(const packtrain::data::DatasetSplit& data, const std::string& name, std::int64_t steps,
                       bool force_helper, std::uint64_t seed) {
  auto model = fresh_model(name, seed);
  const auto options = packtrain::train::TrainOptions()
                           .epochs(1)
                           .batch_size(kBatch)
                           .lr(kLr)
                           .momentum(kMomentum)
                           .weight_decay(kWeightDecay)
                           .schedule(packtrain::train::Schedule::cosine)
                           .threads(1)
                           .prefetch(true)
                           .prefetch_on_one_core(force_helper)
                           .seed(seed);
  packtrain::train::TrainData view{data.train, torch::arange(steps * kBatch, torch::kInt64), {}, {}};
  const auto start = Clock::now();
  const double cpu = process_cpu_seconds();
  packtrain::train::Trainer trainer(model, options);
  const auto result = trainer.fit(view);
  const Timing timing{seconds_since(start), process_cpu_seconds() - cpu};
  if (result.steps != steps) std::fprintf(stderr, "packtrain ran %lld steps, not %lld\n", (long long)result.steps, (long long)steps);
  return timing;
}

// The hand-written loop, on the same data and model.
Timing plain_round(const packtrain::data::DatasetSplit& data, const std::string& name, std::int64_t steps,
                   std::uint64_t seed) {
  auto model = fresh_model(name, seed);
  const auto start = Clock::now();
  const double cpu = process_cpu_seconds();
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
  const Timing timing{seconds_since(start), process_cpu_seconds() - cpu};
  if (!(loss_sum > 0)) std::fprintf(stderr, "plain loop: odd loss %f\n", loss_sum);
  return timing;
}

// Forward passes only (`backward` false: without autograd), or forward and
// backward (the gradients, no optimizer step): seconds for `steps` batches.
double passes(const packtrain::data::DatasetSplit& data, packtrain::models::Model& model, std::int64_t steps,
              bool backward) {
  model.train();
  const auto start = Clock::now();
  for (std::int64_t step = 0; step < steps; ++step) {
    const auto images = data.train.images.narrow(0, step * kBatch, kBatch);
    if (!backward) {
      torch::NoGradGuard no_grad;
      (void)model.forward(images).sum().item<double>();
      continue;
    }
    model.zero_grad();
    const auto labels = data.train.labels.narrow(0, step * kBatch, kBatch);
    torch::nn::functional::cross_entropy(model.forward(images), labels).backward();
  }
  return seconds_since(start);
}

// --scripted: the zoo's model against a TorchScript file, through the
// Trainer and pass by pass, in alternating rounds; medians of the ratios.
void compare_scripted(const packtrain::data::DatasetSplit& data, const std::string& zoo, const std::string& file,
                      int rounds, std::int64_t steps) {
  std::printf("\n%s (zoo) against %s (TorchScript), %d rounds of %lld steps\n", zoo.c_str(), file.c_str(), rounds,
              (long long)steps);
  packtrain_round(data, file, 50, false, 1);  // warm-up: the graph executor profiles its first runs
  std::vector<double> step_zoo, step_file, step_ratio, forward_ratio, backward_ratio, forward_zoo, forward_file,
      both_zoo, both_file;
  auto zoo_model = fresh_model(zoo, 1), file_model = fresh_model(file, 1);
  for (int r = 0; r < rounds; ++r) {
    const std::uint64_t seed = 200 + static_cast<std::uint64_t>(r);
    Timing a, b;
    double fa = 0, fb = 0, ba = 0, bb = 0;
    const auto zoo_side = [&] {
      a = packtrain_round(data, zoo, steps, false, seed);
      fa = passes(data, *zoo_model, steps, false);
      ba = passes(data, *zoo_model, steps, true);
    };
    const auto file_side = [&] {
      b = packtrain_round(data, file, steps, false, seed);
      fb = passes(data, *file_model, steps, false);
      bb = passes(data, *file_model, steps, true);
    };
    if (r % 2 == 0) {
      zoo_side();
      file_side();
    } else {
      file_side();
      zoo_side();
    }
    step_zoo.push_back(a.wall);
    step_file.push_back(b.wall);
    step_ratio.push_back(b.cpu / a.cpu);  // CPU time: preemption on a shared machine does not count
    forward_zoo.push_back(fa);
    forward_file.push_back(fb);
    both_zoo.push_back(ba);
    both_file.push_back(bb);
    forward_ratio.push_back(fb / fa);
    backward_ratio.push_back((bb - fb) / (ba - fa));
  }
  const double ms = 1e3 / static_cast<double>(steps);
  std::printf("  Trainer step        zoo %.3f ms   file %.3f ms   ratio %.3f of CPU time (target: at most 1.15)\n",
              median(step_zoo) * ms, median(step_file) * ms, median(step_ratio));
  std::printf("  forward             zoo %.3f ms   file %.3f ms   ratio %.3f\n", median(forward_zoo) * ms,
              median(forward_file) * ms, median(forward_ratio));
  std::printf("  backward            zoo %.3f ms   file %.3f ms   ratio %.3f (forward + backward less forward)\n",
              (median(both_zoo) - median(forward_zoo)) * ms, (median(both_file) - median(forward_file)) * ms,
              median(backward_ratio));
  const double diff = (median(step_file) - median(step_zoo)) * ms;
  const double in_forward = (median(forward_file) - median(forward_zoo)) * ms;
  const double in_backward = (median(both_file) - median(forward_file) - median(both_zoo) + median(forward_zoo)) * ms;
  std::printf("  the step's difference %+.3f ms: forward %+.3f ms, backward %+.3f ms, the rest %+.3f ms\n", diff,
              in_forward, in_backward, diff - in_forward - in_backward);
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 9;
  std::int64_t steps = 300;
  std::string model = "mlp";
  std::string scripted;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--rounds")) rounds = std::max(1, std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--steps")) steps = std::max(1, std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--model")) model = argv[i + 1];
    else if (!std::strcmp(argv[i], "--scripted")) scripted = argv[i + 1];
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
  packtrain_round(*data, model, 50, false, 1);
  packtrain_round(*data, model, 50, true, 1);

  std::vector<double> plain, with_helper, by_default;
  std::vector<double> wall_default, wall_helper, cpu_default, cpu_helper;  // ratios to plain, per round
  for (int r = 0; r < rounds; ++r) {
    const std::uint64_t seed = 100 + static_cast<std::uint64_t>(r);
    Timing p, a, b;
    if (r % 2 == 0) {  // ABBA: alternate which goes first
      p = plain_round(*data, model, steps, seed);
      a = packtrain_round(*data, model, steps, false, seed);
      b = packtrain_round(*data, model, steps, true, seed);
    } else {
      b = packtrain_round(*data, model, steps, true, seed);
      a = packtrain_round(*data, model, steps, false, seed);
      p = plain_round(*data, model, steps, seed);
    }
    plain.push_back(p.wall);
    by_default.push_back(a.wall);
    with_helper.push_back(b.wall);
    wall_default.push_back(a.wall / p.wall);
    wall_helper.push_back(b.wall / p.wall);
    cpu_default.push_back(a.cpu / p.cpu);
    cpu_helper.push_back(b.cpu / p.cpu);
  }
  const double ms = 1e3 / static_cast<double>(steps);
  std::printf("  plain LibTorch loop           %.3f ms/step (median wall)\n", median(plain) * ms);
  std::printf("  packtrain (default options)   %.3f ms/step   ratio to plain: wall %.3f, CPU %.3f (medians of rounds)\n",
              median(by_default) * ms, median(wall_default), median(cpu_default));
  std::printf("  packtrain, helper thread      %.3f ms/step   ratio to plain: wall %.3f, CPU %.3f (prefetch forced on one core)\n",
              median(with_helper) * ms, median(wall_helper), median(cpu_helper));
  std::printf("  overhead of packtrain's step: %+.1f%% wall, %+.1f%% CPU (target: at most +5%%)\n",
              (median(wall_default) - 1.0) * 100.0, (median(cpu_default) - 1.0) * 100.0);

  // One whole epoch of the training part through the Trainer, with the
  // end-of-epoch evaluation on the 10,000 test images.
  auto epoch_model = fresh_model(model, 1);
  packtrain::train::Trainer trainer(epoch_model, packtrain::train::TrainOptions().epochs(1).threads(1).seed(1));
  std::vector<packtrain::train::EpochMetrics> epochs;
  const auto result = trainer.fit(packtrain::train::TrainData::train_test(*data),
                                  {.on_epoch = [&](const packtrain::train::EpochMetrics& m) { epochs.push_back(m); }});
  std::printf("  one %s epoch on one core: %.2f s (%lld steps and the test-set evaluation), test top-1 %.4f\n",
              model.c_str(), epochs.empty() ? 0.0 : epochs[0].seconds, (long long)result.steps, result.val.top1);
  if (!scripted.empty()) compare_scripted(*data, model, scripted, rounds, steps);
  return 0;
}
