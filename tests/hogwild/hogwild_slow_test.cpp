// Hogwild's accuracy: as good as single-thread SGD after as many epochs.
#include <packtrain/hogwild/hogwild.hpp>
#include <packtrain/train/trainer.hpp>

#include <gtest/gtest.h>

#include <thread>

using namespace packtrain;

TEST(HogwildAccuracy, TwoWorkersMatchSingleThreadSgdWithinOnePoint) {
  constexpr int kEpochs = 5;
  constexpr double kLr = 0.05;
  constexpr std::int64_t kBatch = 64;
  const auto data = data::shared_dataset("fashion-mnist");

  // Single-thread SGD: the same model, initial weights, rate and batch, no momentum or decay.
  models::ModelOptions shape{.channels = data->channels, .height = data->height, .width = data->width,
                             .classes = data->classes, .seed = 7};
  auto model = models::make_model("mlp", shape);
  train::Trainer sgd(model, train::TrainOptions()
                                .epochs(kEpochs)
                                .batch_size(kBatch)
                                .lr(kLr)
                                .momentum(0)
                                .weight_decay(0.0)
                                .schedule(train::Schedule::none)
                                .seed(7)
                                .threads(1));
  const auto single = sgd.fit(train::TrainData::train_test(*data));
  ASSERT_EQ(single.status, JobStatus::done) << single.message;

  // Hogwild: the run's thread and one helper, for every epoch.
  auto trainer = std::make_shared<hogwild::HogwildTrainer>(
      data, hogwild::HogwildOptions().model("mlp").epochs(kEpochs).batch_size(kBatch).lr(kLr).seed(7).max_workers(2));
  CoreLease lease(1);
  std::thread helper([&] { trainer->help(lease); });
  const auto hog = trainer->run();
  lease.ask_to_return();
  helper.join();
  ASSERT_EQ(hog.status, JobStatus::done);
  EXPECT_EQ(hog.peak_workers, 2);
  for (const auto& e : hog.epochs) EXPECT_EQ(e.not_once, 0);

  std::printf("after %d epochs: single-thread SGD %.2f%%, Hogwild x2 %.2f%% test top-1\n", kEpochs,
              100 * single.val.top1, 100 * hog.test_top1);
  EXPECT_GE(hog.test_top1, single.val.top1 - 0.01);
  EXPECT_GT(hog.test_top1, 0.80);
}
