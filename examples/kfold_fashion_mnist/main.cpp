// K-fold cross-validation of two models and two learning-rate schedules on
// Fashion-MNIST, every (model, schedule, fold) a job packed onto the cores.
//
//   ./kfold_fashion_mnist            # 3 folds, 1 epoch, 12,000 samples: about a minute on 2 cores
#include <packtrain/data/dataset.hpp>
#include <packtrain/kfold/kfold.hpp>
#include <packtrain/models/zoo.hpp>
#include <packtrain/scheduler/console_sink.hpp>

#include <cstdio>

namespace {

constexpr int kFolds = 3;                  // k of the k-fold split
constexpr int kEpochs = 1;                 // epochs each job trains
constexpr std::int64_t kSamples = 12'000;  // training samples used (0: all 60,000)
constexpr std::int64_t kBatchSize = 64;
constexpr double kLearningRate = 0.05;     // SGD with momentum 0.9

// A model of our own, next to the zoo's: LeNet-300-100 with dropout.
struct DropoutMlpImpl : packtrain::models::Model {
  explicit DropoutMlpImpl(const packtrain::models::ModelOptions& o)
      : Model(o),
        fc1(register_module("fc1", torch::nn::Linear(o.channels * o.height * o.width, 300))),
        fc2(register_module("fc2", torch::nn::Linear(300, 100))),
        fc3(register_module("fc3", torch::nn::Linear(100, o.classes))) {
    flops_ = 2.0 * (o.channels * o.height * o.width * 300 + 300 * 100 + 100 * o.classes);
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(fc1(x.flatten(1)));
    x = torch::dropout(x, 0.2, is_training());
    x = torch::relu(fc2(x));
    return fc3(x);
  }
  torch::nn::Linear fc1, fc2, fc3;
};

}  // namespace

int main() {
  // One copy of the dataset in memory, shared read-only by every job.
  auto data = packtrain::data::shared_dataset("fashion-mnist");

  packtrain::kfold::KFold sweep(data, packtrain::kfold::KFoldOptions()
                                          .folds(kFolds)
                                          .limit(kSamples)
                                          .trainer(packtrain::train::TrainOptions()
                                                       .epochs(kEpochs)
                                                       .batch_size(kBatchSize)
                                                       .lr(kLearningRate)));
  sweep.add_model("lenet5");  // from the zoo, by name
  sweep.add_model("dropout-mlp", [](const packtrain::models::ModelOptions& o) {
    auto model = std::make_shared<DropoutMlpImpl>(o);
    packtrain::models::initialize_weights(*model, o.seed);  // from the job's seed, not LibTorch's global generator
    return model;
  });
  sweep.add_schedule(packtrain::train::Schedule::cosine).add_schedule(packtrain::train::Schedule::step);

  // One pinned worker per usable core; the runner places the jobs, longest first.
  const auto node = packtrain::detect_node_resources();
  packtrain::Executor executor(node.cores);
  packtrain::JobRunner runner(executor, node);
  packtrain::ConsoleSink console;

  packtrain::RunOptions options;
  options.sinks = {&console};
  const auto result = sweep.run(runner, options);
  std::printf("%s", packtrain::kfold::format_summary(result, node.core_count()).c_str());
  return result.run.exit_code();
}
