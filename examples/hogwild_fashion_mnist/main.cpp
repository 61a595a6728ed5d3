// Hogwild on Fashion-MNIST as an elastic job beside a small K-fold sweep.
//
// The Hogwild job (lock-free SGD workers sharing one set of weights) starts
// on one core; every core the sweep leaves idle is lent to it, so it grows
// as the sweep's tail empties the node. The table at the end shows how many
// workers each epoch had.
//
//   ./hogwild_fashion_mnist            # under 10 s on 2 cores
#include <packtrain/data/dataset.hpp>
#include <packtrain/hogwild/hogwild.hpp>
#include <packtrain/kfold/kfold.hpp>
#include <packtrain/scheduler/console_sink.hpp>

#include <torch/torch.h>

#include <cstdio>

namespace {

constexpr int kHogwildEpochs = 4;          // over all 60,000 training samples
constexpr int kFolds = 3;                  // the sweep beside it: lenet5, k folds...
constexpr std::int64_t kSweepSamples = 6'000;   // ...on this many samples, one epoch each

}  // namespace

int main() {
  auto data = packtrain::data::shared_dataset("fashion-mnist");
  const auto node = packtrain::detect_node_resources();
  packtrain::Executor executor(node.cores);
  packtrain::JobRunner runner(executor, node);

  // At least one core, at most every core of the node.
  auto hogwild = packtrain::hogwild::make_hogwild_job(
      data, packtrain::hogwild::HogwildOptions().model("mlp").epochs(kHogwildEpochs).lr(0.05), 1, node.core_count());
  const auto hogwild_id = runner.add(hogwild);

  packtrain::kfold::KFold sweep(data, packtrain::kfold::KFoldOptions().folds(kFolds).limit(kSweepSamples).trainer(
                                          packtrain::train::TrainOptions().epochs(1)));
  sweep.add_model("lenet5").add_schedule(packtrain::train::Schedule::cosine);
  for (auto& job : sweep.jobs()) runner.add(std::move(job));

  packtrain::ConsoleSink console;
  packtrain::RunOptions options;
  options.sinks = {&console};
  // LibTorch's intra-op threads follow each job's cores (one per Hogwild worker).
  options.thread_budget = [](int threads) { at::set_num_threads(threads); };
  const auto summary = runner.run(options);

  for (const auto& job : summary.jobs) {
    if (job.id != hogwild_id || job.status != packtrain::JobStatus::done) continue;
    std::printf("\nHogwild (%s): test top-1 %.2f%%, %.0f samples/s\n", job.name.c_str(),
                100 * job.metrics["test_top1"].get<double>(), job.metrics["samples_per_s"].get<double>());
    std::printf("epoch  workers  test top-1\n");
    for (const auto& e : job.metrics["per_epoch"])
      std::printf("%5d  %7d  %9.2f%%\n", e["epoch"].get<int>(), e["peak_workers"].get<int>(),
                  100 * e["test_top1"].get<double>());
  }
  return summary.exit_code();
}
