// Accuracy: the mlp (LeNet-300-100) on Fashion-MNIST has a winning ticket
// with at most 20% of its weights left (Frankle & Carbin found LeNet-300-100
// tickets from 21% down to 3.6% of the weights on MNIST).
#include "common/test_util.hpp"
#include "packtrain_paths.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <iostream>

using packtrain::testing::read_file;
using packtrain::testing::run_command;
using packtrain::testing::TempDir;

TEST(LthAccuracy, MlpOnFashionMnistHasATicketWithAtMost20PercentOfItsWeightsWithinHalfAPoint) {
  TempDir dir;
  const auto r = run_command({PACKTRAIN_CLI, "lth", "--model", "mlp", "--epochs", "6", "--reset-epochs", "0,1",
                              "--sparsities", "0.8,0.9", "--tolerance", "0.5", "--quiet", "--out",
                              (dir / "run").string()});
  std::cout << r.out;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto summary = nlohmann::json::parse(read_file(dir / "run/results.json"))["summary"];
  ASSERT_TRUE(summary["dense_top1"].is_number());
  const double dense = summary["dense_top1"];
  EXPECT_GT(dense, 0.86) << "the dense mlp itself trained (Fashion-MNIST's benchmark MLPs reach 0.87-0.88)";
  ASSERT_TRUE(summary.contains("winner")) << r.out;
  const auto& w = summary["winner"];
  EXPECT_GE(w["sparsity"].get<double>(), 0.8 - 1e-9) << "at most 20% of the weights left";
  EXPECT_GE(w["test_top1"].get<double>(), dense - 0.005);
}
