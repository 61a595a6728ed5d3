// K-fold cross-validation of vgg11 and resnet18 on CIFAR-10, with random
// crop and flip, given the folder of CIFAR-10's binary files
// (data_batch_1.bin ... data_batch_5.bin, test_batch.bin).
//
//   ./kfold_cifar /path/to/cifar-10-batches-bin [samples]
#include <packtrain/data/dataset.hpp>
#include <packtrain/kfold/kfold.hpp>
#include <packtrain/scheduler/console_sink.hpp>
#include <packtrain/scheduler/error.hpp>

#include <cstdio>
#include <cstdlib>

namespace {

constexpr int kFolds = 5;
constexpr int kEpochs = 2;
constexpr std::int64_t kBatchSize = 128;
constexpr double kLearningRate = 0.05;

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: kfold_cifar CIFAR10_FOLDER [SAMPLES]\n");
    return 2;
  }
  const std::int64_t samples = argc > 2 ? std::atoll(argv[2]) : 0;  // 0: all 50,000
  try {
    auto data = packtrain::data::shared_dataset(argv[1]);
    if (data->channels != 3) throw packtrain::Error(std::string(argv[1]) + " is not CIFAR-10 (3x32x32) data");
    packtrain::kfold::KFold sweep(data, packtrain::kfold::KFoldOptions()
                                            .folds(kFolds)
                                            .limit(samples)
                                            .trainer(packtrain::train::TrainOptions()
                                                         .epochs(kEpochs)
                                                         .batch_size(kBatchSize)
                                                         .lr(kLearningRate)
                                                         .augment(true)));  // random crop + flip
    sweep.add_model("vgg11").add_model("resnet18").add_schedule(packtrain::train::Schedule::cosine);

    const auto node = packtrain::detect_node_resources();
    packtrain::Executor executor(node.cores);
    packtrain::JobRunner runner(executor, node);
    packtrain::ConsoleSink console;
    packtrain::RunOptions options;
    options.sinks = {&console};
    const auto result = sweep.run(runner, options);
    std::printf("%s", packtrain::kfold::format_summary(result, node.core_count()).c_str());
    return result.run.exit_code();
  } catch (const packtrain::Error& e) {
    std::fprintf(stderr, "kfold_cifar: %s\n", e.what());
    return 2;
  }
}
