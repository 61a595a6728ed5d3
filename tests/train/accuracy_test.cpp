// Accuracy on Fashion-MNIST's test set with the default hyperparameters
// (SGD, momentum 0.9, lr 0.05, cosine over the run, batch 64), one thread,
// fixed seeds. Reference: the dataset's benchmark table has MLP 256-128-100
// at 0.883 and 2 conv + pooling at 0.876-0.916.
#include <packtrain/data/dataset.hpp>
#include <packtrain/train/trainer.hpp>

#include <gtest/gtest.h>

#include <cstdio>

namespace {

namespace train = packtrain::train;

double test_top1(const std::string& model_name, int epochs) {
  const auto data = packtrain::data::shared_dataset("fashion-mnist");
  auto model = packtrain::models::make_model(model_name, {.channels = 1, .height = 28, .width = 28, .classes = 10, .seed = 1});
  train::Trainer trainer(model, train::TrainOptions().epochs(epochs).threads(1).seed(1));
  train::TrainCallbacks callbacks;
  callbacks.on_epoch = [&](const train::EpochMetrics& m) {
    std::printf("%s epoch %d/%d: train loss %.4f, test top-1 %.4f, %.1fs\n", model_name.c_str(), m.epoch, epochs,
                m.train_loss, m.val_top1, m.seconds);
  };
  const auto result = trainer.fit(train::TrainData::train_test(*data), callbacks);
  EXPECT_EQ(result.status, packtrain::JobStatus::done);
  ::testing::Test::RecordProperty("test_top1", std::to_string(result.val.top1));
  return result.val.top1;
}

TEST(FashionMnist, MlpReaches88PercentWithinTenEpochs) { EXPECT_GE(test_top1("mlp", 10), 0.88); }

TEST(FashionMnist, LeNet5Reaches89PercentInFiveEpochs) { EXPECT_GE(test_top1("lenet5", 5), 0.89); }

}  // namespace
