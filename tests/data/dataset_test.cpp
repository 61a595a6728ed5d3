#include "common/test_util.hpp"
#include "idx_files.hpp"
#include "one_thread.hpp"

#include <packtrain/data/dataset.hpp>
#include <packtrain/data/readers.hpp>
#include <packtrain/scheduler/error.hpp>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <barrier>
#include <random>
#include <thread>
#include <vector>

namespace {

using packtrain::testing::TempDir;
namespace pt = packtrain::testing;
namespace data = packtrain::data;

TEST(LoadDataset, IdxFolderIsNormalizedWithTrainStatistics) {
  TempDir dir;
  pt::write_idx_folder(dir.path(), 40, 10, 28, 28, 4);
  const auto split = data::load_dataset(dir.path().string());
  EXPECT_EQ(split.name, dir.path().filename().string());
  EXPECT_EQ(split.classes, 4);
  EXPECT_EQ(split.channels, 1);
  EXPECT_NEAR(split.train.images.mean().item<double>(), 0.0, 1e-4);
  EXPECT_NEAR(split.train.images.std(/*unbiased=*/false).item<double>(), 1.0, 1e-4);
  // The test part went through the same affine map: pixel 0 of image 0 is 0 in both parts.
  EXPECT_FLOAT_EQ(split.test.images[0][0][0][0].item<float>(), split.train.images[0][0][0][0].item<float>());
}

TEST(LoadDataset, CifarFolderIsNormalizedPerChannel) {
  TempDir dir;
  pt::write_raw(dir / "data_batch_1.bin", pt::cifar_bytes(20));
  pt::write_raw(dir / "test_batch.bin", pt::cifar_bytes(5));
  const auto split = data::load_dataset(dir.path().string());
  EXPECT_EQ(split.train.images.sizes(), (std::vector<std::int64_t>{20, 3, 32, 32}));
  for (int c = 0; c < 3; ++c) {
    const auto channel = split.train.images.select(1, c);
    EXPECT_NEAR(channel.mean().item<double>(), 0.0, 1e-4) << c;
    EXPECT_NEAR(channel.std(false).item<double>(), 1.0, 1e-4) << c;
  }
}

// load_dataset normalizes IDX and CIFAR-10 images from their bytes (one
// table lookup per pixel); the public readers give float images that
// normalize_with_train_statistics normalizes with LibTorch's std_mean. Both
// must give the same bits, or results would change with the path taken.
void expect_same_bits(const data::DatasetSplit& fast, data::DatasetSplit slow) {
  data::normalize_with_train_statistics(slow.train, slow.test);
  ASSERT_EQ(fast.train.images.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(fast.train.images, slow.train.images));
  EXPECT_TRUE(torch::equal(fast.test.images, slow.test.images));
  EXPECT_TRUE(torch::equal(fast.train.labels, slow.train.labels));
  EXPECT_TRUE(torch::equal(fast.test.labels, slow.test.labels));
}

TEST(LoadDataset, FashionMnistFromBytesHasTheFloatPathsBits) {
  expect_same_bits(data::load_dataset("fashion-mnist"),
                   data::read_idx_folder("/usr/share/datasets/fashion-mnist", "fashion-mnist"));
}

TEST(LoadDataset, CifarFromBytesHasTheFloatPathsBitsAndAConstantChannelStaysFinite) {
  TempDir dir;
  std::mt19937 random(7);
  const auto batch = [&](int n) {
    std::string bytes;
    for (int i = 0; i < n; ++i) {
      bytes.push_back(static_cast<char>(random() % 10));
      for (int c = 0; c < 3; ++c)
        for (int p = 0; p < 32 * 32; ++p) bytes.push_back(static_cast<char>(c == 2 ? 77 : random() % 256));
    }
    return bytes;
  };
  pt::write_raw(dir / "data_batch_1.bin", batch(30));
  pt::write_raw(dir / "data_batch_2.bin", batch(17));
  pt::write_raw(dir / "test_batch.bin", batch(9));
  const auto fast = data::load_dataset(dir.path().string());
  expect_same_bits(fast, data::read_cifar_folder(dir.path(), "cifar"));
  EXPECT_TRUE(torch::all(fast.train.images.select(1, 2) == 0).item<bool>()) << "a constant channel is 0, not NaN";
}

TEST(LoadDataset, UnknownFolderIsAnError) {
  TempDir dir;
  EXPECT_THROW(data::load_dataset((dir / "missing").string()), packtrain::Error);
  pt::write_file(dir / "readme.txt", "nothing here");
  try {
    data::load_dataset(dir.path().string());
    FAIL();
  } catch (const packtrain::Error& e) {
    EXPECT_NE(std::string(e.what()).find("neither IDX"), std::string::npos) << e.what();
  }
}

TEST(LoadDataset, FashionMnistIsTheDefault) {
  const auto split = data::load_dataset();
  EXPECT_EQ(split.name, "fashion-mnist");
  EXPECT_EQ(split.train.size(), 60000);
  EXPECT_EQ(split.test.size(), 10000);
  EXPECT_EQ(split.classes, 10);
  EXPECT_EQ(split.train.images.sizes(), (std::vector<std::int64_t>{60000, 1, 28, 28}));
  EXPECT_EQ(split.train.images.scalar_type(), torch::kFloat32);
  EXPECT_EQ(split.train.labels.scalar_type(), torch::kInt64);
  EXPECT_EQ(torch::bincount(split.test.labels).min().item<std::int64_t>(), 1000);  // 1,000 test images per class
}

TEST(LoadDataset, MnistDigitsByName) {
  const auto split = data::load_dataset("mnist-digits");
  EXPECT_EQ(split.name, "mnist-digits");
  EXPECT_EQ(split.train.size() + split.test.size(), 10000);
}

TEST(SharedDataset, ManyThreadsAskingAtOnceShareOneCopy) {
  TempDir dir;
  pt::write_idx_folder(dir.path(), 2000, 100);
  constexpr int kThreads = 8;
  std::vector<std::shared_ptr<const data::DatasetSplit>> got(kThreads);
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      got[t] = data::shared_dataset(dir.path().string());
    });
  for (auto& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_NE(got[t], nullptr);
    EXPECT_EQ(got[t].get(), got[0].get()) << "thread " << t << " got its own copy";
  }
  // Another spelling of the same folder is the same dataset.
  EXPECT_EQ(data::shared_dataset((dir.path() / ".").string()).get(), got[0].get());
}

TEST(SharedDataset, FailedLoadThrowsAndIsRetried) {
  TempDir dir;
  const auto folder = dir / "later";
  EXPECT_THROW(data::shared_dataset(folder.string()), packtrain::Error);
  pt::write_idx_folder(folder, 20, 10);
  const auto split = data::shared_dataset(folder.string());
  EXPECT_EQ(split->train.size(), 20);
}

TEST(IndexViews, AllIndicesCoverThePart) {
  data::Dataset part{torch::zeros({5, 1, 2, 2}), torch::zeros({5}, torch::kInt64)};
  EXPECT_TRUE(data::all_indices(part).equal(torch::arange(5, torch::kInt64)));
}

}  // namespace
