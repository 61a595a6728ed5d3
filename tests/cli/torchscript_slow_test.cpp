// Accuracy with your own model and data: a LeNet-300-100 written in Python
// and scripted (tests/fixtures/torchscript/lenet_300_100.pt), and the zoo's
// mlp (the same architecture), each trained 10 epochs on Fashion-MNIST given
// as .npy arrays, both reach 0.88 test top-1 (about 25 s each on one core;
// they run side by side).
#include "common/cli_run.hpp"
#include "common/fashion_arrays.hpp"

#include <gtest/gtest.h>

#include <string>

using packtrain::testing::TempDir;

TEST(TorchScriptSlow, PythonLeNet300100AndTheZoosMlpReach088OnFashionMnistArrays) {
  TempDir dir;
  packtrain::testing::write_fashion_arrays(dir / "arrays", 60000, 10000);
  const auto argv = [&](const std::string& model, const std::string& out) {
    return packtrain::testing::packtrain_argv({"train", "--model", model, "--data", (dir / "arrays").string(),
                                               "--epochs", "10", "--cores", "1", "--out", (dir / out).string(),
                                               "--quiet"});
  };
  const int scripted = packtrain::testing::start_command(
      argv(std::string(PACKTRAIN_TORCHSCRIPT_FIXTURES) + "/lenet_300_100.pt", "scripted"), dir / "scripted.log");
  const int zoo = packtrain::testing::start_command(argv("mlp", "zoo"), dir / "zoo.log");
  const auto a = packtrain::testing::wait_command(scripted), b = packtrain::testing::wait_command(zoo);
  ASSERT_EQ(a.exit_code, 0) << packtrain::testing::read_file(dir / "scripted.log");
  ASSERT_EQ(b.exit_code, 0) << packtrain::testing::read_file(dir / "zoo.log");
  for (const auto& [out, model] : {std::pair{"scripted", "lenet_300_100"}, std::pair{"zoo", "mlp"}}) {
    const auto rows = packtrain::testing::results_by_id(dir / out / "results.csv");
    ASSERT_EQ(rows.size(), 1u) << out;
    const auto& row = rows.begin()->second;
    EXPECT_EQ(row.at("model"), model);
    EXPECT_EQ(row.at("status"), "done");
    EXPECT_GE(std::stod(row.at("val_top1")), 0.88) << out;
  }
}
