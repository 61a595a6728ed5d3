// Accuracy of large batches on replicas (label slow): lenet5 on Fashion-MNIST
// at global batch 256 on 2 replicas, with linear learning-rate scaling and
// one warm-up epoch (Goyal et al. 2017), reaches within 1 point of batch 64
// on one core after the same number of epochs.
#include <packtrain/dataparallel/data_parallel.hpp>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <memory>
#include <thread>

using namespace packtrain;
using namespace packtrain::dataparallel;

namespace {

constexpr int kEpochs = 3;
constexpr std::uint64_t kSeed = 21;

models::ModelOptions shape_of(const data::DatasetSplit& d) {
  return {.channels = d.channels, .height = d.height, .width = d.width, .classes = d.classes, .seed = kSeed};
}

}  // namespace

TEST(DataParallelSlow, Lenet5AtBatch256On2ReplicasIsWithinAPointOfBatch64OnOneCore) {
  const auto data = data::shared_dataset("fashion-mnist");
  const auto all = train::TrainData::train_test(*data);

  train::Trainer single(models::make_model("lenet5", shape_of(*data)),
                        train::TrainOptions().epochs(kEpochs).batch_size(64).seed(kSeed).threads(1));
  const auto baseline = single.fit(all);
  ASSERT_EQ(baseline.status, JobStatus::done);

  auto trainer = std::make_shared<DataParallelTrainer>(
      shape_of(*data), DataParallelOptions()
                           .model("lenet5")
                           .train(train::TrainOptions().epochs(kEpochs).batch_size(256).seed(kSeed))
                           .lr_scaling(LrScaling::linear)
                           .warmup_epochs(1)
                           .max_replicas(2));
  CoreLease lease(1);
  std::thread helper([&] { trainer->help(lease); });
  const auto result = trainer->fit(all);
  lease.ask_to_return();
  helper.join();
  ASSERT_EQ(result.train.status, JobStatus::done);
  EXPECT_EQ(result.peak_replicas, 2);
  std::printf("lenet5, %d epochs: batch 64 on one core %.4f, batch 256 on 2 replicas (linear, warm-up 1) %.4f\n",
              kEpochs, baseline.val.top1, result.train.val.top1);
  EXPECT_GE(result.train.val.top1, baseline.val.top1 - 0.01);
}
