// Lottery tickets on Fashion-MNIST: train LeNet-300-100 once, prune it by
// weight magnitude to several sparsities, reset the weights that survive to
// their values at epoch 0 or 1 (late resetting), and retrain every such
// ticket with the pruned weights held at zero. The retrains are independent
// jobs, packed onto every core once the dense run has ended.
//
//   ./lth_fashion_mnist                 # run folder ./lth-run, 12,000 samples: about a minute on 2 cores
//   ./lth_fashion_mnist DIR [SAMPLES]   # another run folder; fewer samples for a quick try
#include <packtrain/data/dataset.hpp>
#include <packtrain/lth/lth.hpp>
#include <packtrain/scheduler/console_sink.hpp>
#include <packtrain/scheduler/error.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

namespace {

constexpr int kEpochs = 3;                 // of the dense run; every ticket trains up to the same epoch
constexpr std::int64_t kSamples = 12'000;  // training samples used (0: all 60,000)
constexpr std::int64_t kBatchSize = 64;
constexpr double kLearningRate = 0.05;     // SGD with momentum 0.9, cosine schedule over the kEpochs

std::int64_t parse_samples(const std::string& text) {
  std::size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || n <= 0)
    throw packtrain::Error("SAMPLES must be a positive number of training samples (got '" + text + "')");
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 3) {
    std::fprintf(stderr, "usage: lth_fashion_mnist [RUN_FOLDER [SAMPLES]]\n");
    return 2;
  }
  try {
    const std::filesystem::path dir = argc > 1 ? argv[1] : "lth-run";
    const std::int64_t samples = argc > 2 ? parse_samples(argv[2]) : kSamples;
    auto data = packtrain::data::shared_dataset("fashion-mnist");

    // One dense job, then one retrain per (reset epoch, sparsity): 1 + 2 x 4 jobs.
    packtrain::lth::LotteryTicketSweep sweep(data, packtrain::lth::LthOptions()
                                                       .model("mlp")
                                                       .reset_epochs({0, 1})
                                                       .sparsities({0.5, 0.8, 0.9, 0.95})
                                                       .limit(samples)
                                                       .out_dir(dir.string())
                                                       .trainer(packtrain::train::TrainOptions()
                                                                    .epochs(kEpochs)
                                                                    .batch_size(kBatchSize)
                                                                    .lr(kLearningRate)));

    // One pinned worker per usable core; the retrains wait for the dense job.
    const auto node = packtrain::detect_node_resources();
    packtrain::Executor executor(node.cores);
    packtrain::JobRunner runner(executor, node);
    packtrain::ConsoleSink console;
    packtrain::RunOptions options;
    options.sinks = {&console};
    const auto result = sweep.run(runner, options);
    std::printf("%s", packtrain::lth::format_report(result.report).c_str());

    // A ticket is a mask and the weights it starts from, both files in the
    // run folder: here, what the sparsest ticket kept of each layer.
    const packtrain::lth::TicketPoint* sparsest = nullptr;
    for (const auto& p : result.report.points)
      if (sparsest == nullptr || p.sparsity > sparsest->sparsity) sparsest = &p;
    if (sparsest != nullptr) {
      const auto mask = packtrain::lth::Mask::load(dir / sparsest->mask);
      std::printf("weights left per layer in %s:\n", sparsest->mask.c_str());
      for (std::size_t i = 0; i < mask.names.size(); ++i) {
        const auto kept = mask.keep[i].sum().item<double>();
        std::printf("  %-11s %7.0f of %7lld (%.1f%%)\n", mask.names[i].c_str(), kept,
                    static_cast<long long>(mask.keep[i].numel()), 100.0 * kept / mask.keep[i].numel());
      }
    }
    return result.run.exit_code();
  } catch (const packtrain::Error& e) {
    std::fprintf(stderr, "lth_fashion_mnist: %s\n", e.what());
    return 2;
  }
}
