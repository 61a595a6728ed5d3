// The examples, run as a user runs them.
#include <packtrain/scheduler/resources.hpp>

#include "common/test_util.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <sstream>
#include <thread>

using packtrain::testing::run_command;
using packtrain::testing::TempDir;

namespace {

// A CIFAR-10 binary file: records of 1 label byte + 3072 pixel bytes. Each
// class has its own colour (plus noise), so a model can learn it.
void write_cifar_file(const std::filesystem::path& path, int records, unsigned seed) {
  std::mt19937 rng(seed);
  std::string bytes;
  for (int r = 0; r < records; ++r) {
    const auto label = static_cast<std::uint8_t>(r % 10);
    bytes.push_back(static_cast<char>(label));
    for (int i = 0; i < 3072; ++i) {
      const int channel = i / 1024;
      const int value = (label * 23 + channel * 60) % 256 + static_cast<int>(rng() % 40);
      bytes.push_back(static_cast<char>(std::min(value, 255)));
    }
  }
  packtrain::testing::write_file(path, bytes);
}

}  // namespace

TEST(Examples, KFoldFashionMnistRunsItsSweep) {
  const auto r = run_command({PACKTRAIN_EXAMPLE_KFOLD_FASHION});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("dropout-mlp"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("lenet5       step"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3/3"), std::string::npos) << r.out;
}

TEST(Examples, KFoldCifarRunsOnCifarFormatFiles) {
  TempDir dir;
  write_cifar_file(dir / "cifar/data_batch_1.bin", 300, 1);
  write_cifar_file(dir / "cifar/test_batch.bin", 100, 2);
  const auto r = run_command({PACKTRAIN_EXAMPLE_KFOLD_CIFAR, (dir / "cifar").string(), "100"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("vgg11        cosine      5/5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("resnet18     cosine      5/5"), std::string::npos) << r.out;
}

TEST(Examples, KFoldCifarSaysWhatIsWrongWithABadFolder) {
  TempDir dir;
  const auto r = run_command({PACKTRAIN_EXAMPLE_KFOLD_CIFAR, (dir / "nothing").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("kfold_cifar: "), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(Examples, LthFashionMnistRunsItsSweepAndWritesTheTickets) {
  TempDir dir;
  const auto r = run_command({PACKTRAIN_EXAMPLE_LTH_FASHION, (dir / "run").string(), "1500"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("dense model: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("reset epoch |      50.0%      80.0%      90.0%      95.0%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("          0 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("          1 |"), std::string::npos) << r.out;
  // The sparsest mask by layer: 5% of the 266,200 weights are left in all.
  EXPECT_NE(r.out.find("weights left per layer in masks/sparsity-0.9500_reset-"), std::string::npos) << r.out;
  for (const char* layer : {"fc1.weight", "fc2.weight", "fc3.weight"})
    EXPECT_NE(r.out.find(layer), std::string::npos) << layer << "\n" << r.out;
  int tickets = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir / "run/tickets")) tickets += f.path().extension() == ".json";
  EXPECT_EQ(tickets, 8);  // 2 reset epochs x 4 sparsities
}

TEST(Examples, LthFashionMnistSaysWhatIsWrongWithItsArguments) {
  TempDir dir;
  const auto r = run_command({PACKTRAIN_EXAMPLE_LTH_FASHION, (dir / "run").string(), "many"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("lth_fashion_mnist: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "run"));
}

TEST(Examples, HogwildFashionMnistGrowsOntoTheCoresTheSweepLeaves) {
  const auto r = run_command({PACKTRAIN_EXAMPLE_HOGWILD_FASHION});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_NE(r.out.find("Hogwild (mlp/hogwild): test top-1"), std::string::npos) << r.out;
  // One line per epoch: "epoch  workers  test top-1". The last epochs run
  // after the sweep's 3 short jobs, on every core.
  const auto table = r.out.substr(r.out.find("epoch  workers"));
  int lines = 0, last_workers = 0;
  std::istringstream in(table);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    int epoch = 0, workers = 0;
    if (std::sscanf(line.c_str(), "%d %d", &epoch, &workers) == 2) {
      ++lines;
      last_workers = workers;
    }
  }
  EXPECT_EQ(lines, 4);
  // Every core the example's runner has: the same affinity and cgroup detection it uses.
  EXPECT_EQ(last_workers, packtrain::detect_node_resources().core_count());
}
