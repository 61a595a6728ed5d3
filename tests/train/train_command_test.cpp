// `packtrain train` end to end: the binary, run as a user would.
#include "common/test_util.hpp"
#include "../data/idx_files.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

using packtrain::testing::TempDir;
namespace pt = packtrain::testing;

struct Run {
  int status = -1;
  std::string out, err;
};

// Runs `packtrain train ARGS` with stdout and stderr captured.
Run packtrain_train(const TempDir& tmp, const std::string& args) {
  const auto out = tmp / "stdout.txt", err = tmp / "stderr.txt";
  const std::string command = std::string(PACKTRAIN_BINARY) + " train " + args + " > " + out.string() + " 2> " + err.string();
  const int raw = std::system(command.c_str());
  return Run{WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, pt::read_file(out), pt::read_file(err)};
}

void expect_usage_error(const Run& run, const std::string& mention) {
  EXPECT_EQ(run.status, 2) << run.out << run.err;
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << "one line: " << run.err;
  EXPECT_NE(run.err.find("error"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find(mention), std::string::npos) << "'" << mention << "' not in: " << run.err;
}

TEST(TrainCommand, HelpDescribesEveryOption) {
  TempDir tmp;
  const auto run = packtrain_train(tmp, "--help");
  EXPECT_EQ(run.status, 0) << run.err;
  for (const auto* option : {"--model", "--epochs", "--schedule", "--checkpoint-every", "--data", "--out", "--cores",
                             "--seed", "--batch-size", "--optimizer", "--lr", "--resume", "--quiet", "--augment",
                             "--max-cores", "--micro-batch", "--parallelism", "--lr-scaling", "--warmup-epochs",
                             "--bucket-cap-mb", "--overlap", "--oversubscribe"})
    EXPECT_NE(run.out.find(option), std::string::npos) << option;
}

TEST(TrainCommand, TrainsOnAFolderAndWritesResultsAndCheckpoint) {
  TempDir tmp;
  pt::write_idx_folder(tmp / "data", 256, 64, 28, 28, 10);
  const auto out = tmp / "run";
  const auto run = packtrain_train(tmp, "--model lenet5 --epochs 2 --cores 1 --data " + (tmp / "data").string() +
                                            " --out " + out.string());
  ASSERT_EQ(run.status, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("lenet5"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("epoch   1/2"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("epoch   2/2"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("test top-1"), std::string::npos) << run.out;
  std::istringstream csv(pt::read_file(out / "results.csv"));
  std::string header, row, extra;
  std::getline(csv, header);
  std::getline(csv, row);
  EXPECT_EQ(header, "job,status,model,schedule,fold,epochs,val_top1,val_top5,val_loss,seconds,cores,rank");
  EXPECT_NE(row.find(",done,lenet5,cosine,,2,"), std::string::npos) << row;
  EXPECT_FALSE(std::getline(csv, extra) && !extra.empty()) << "one job, one row";
  EXPECT_TRUE(std::filesystem::exists(out / "checkpoints" / "epoch-0002.pt"));
  for (const auto* file : {"results.json", "journal.sqlite", "trace.json", "report.html"})
    EXPECT_TRUE(std::filesystem::exists(out / file)) << file;

  // The same folder again is refused without --resume; with it, the finished job is kept.
  const auto again = packtrain_train(tmp, "--model lenet5 --epochs 2 --cores 1 --data " + (tmp / "data").string() +
                                              " --out " + out.string());
  expect_usage_error(again, "--resume");
  const auto resumed = packtrain_train(tmp, "--model lenet5 --epochs 2 --cores 1 --resume --quiet --data " +
                                                (tmp / "data").string() + " --out " + out.string());
  EXPECT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_EQ(resumed.out.find("epoch "), std::string::npos) << "nothing retrained: " << resumed.out;
}

TEST(TrainCommand, TrainsOnCifarFormatWithAugmentation) {
  TempDir tmp;
  pt::write_raw(tmp / "cifar" / "data_batch_1.bin", pt::cifar_bytes(128));
  pt::write_raw(tmp / "cifar" / "test_batch.bin", pt::cifar_bytes(32, 500));
  const auto run = packtrain_train(tmp, "--model lenet5 --epochs 1 --augment --cores 1 --quiet --data " +
                                            (tmp / "cifar").string() + " --out " + (tmp / "run").string());
  ASSERT_EQ(run.status, 0) << run.out << run.err;
  EXPECT_NE(pt::read_file(tmp / "run" / "results.csv").find(",done,lenet5,"), std::string::npos);
  EXPECT_EQ(run.out.find("epoch "), std::string::npos) << "--quiet: " << run.out;
}

// Replicas: the numbers depend on the micro-batch, never on the cores; one
// core and two print the same figures to the last digit (DESIGN.md decision 10).
TEST(TrainCommand, OneCoreAndTwoCoresPrintTheSameNumbers) {
  TempDir tmp;
  pt::write_idx_folder(tmp / "data", 512, 64, 28, 28, 10);
  const std::string common = "--model lenet5 --epochs 2 --batch-size 64 --micro-batch 16 --data " + (tmp / "data").string();
  const auto one = packtrain_train(tmp, common + " --cores 1 --out " + (tmp / "one").string());
  ASSERT_EQ(one.status, 0) << one.out << one.err;
  const auto two = packtrain_train(tmp, common + " --cores 2 --out " + (tmp / "two").string());
  ASSERT_EQ(two.status, 0) << two.out << two.err;
  EXPECT_NE(one.out.find("1 replica, micro-batches of 16"), std::string::npos) << one.out;
  EXPECT_NE(two.out.find("2 replicas, micro-batches of 16"), std::string::npos) << two.out;
  // Each epoch line up to its time: losses, top-1, top-5 and lr.
  const auto figures = [](const std::string& out) {
    std::vector<std::string> lines;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);)
      if (line.rfind("epoch ", 0) == 0) lines.push_back(line.substr(0, line.find("  lr ") + 14));
    return lines;
  };
  ASSERT_EQ(figures(one.out).size(), 2u) << one.out;
  EXPECT_EQ(figures(one.out), figures(two.out));
  // results.csv: every column but the times and cores (the job id too: the
  // cores are not part of a job's identity).
  const auto cells = [&](const char* dir) {
    std::istringstream csv(pt::read_file(tmp / dir / "results.csv"));
    std::string header, row;
    std::getline(csv, header);
    std::getline(csv, row);
    std::istringstream h(header), r(row);
    std::map<std::string, std::string> out;
    for (std::string column, cell; std::getline(h, column, ',') && std::getline(r, cell, ',');)
      if (column != "seconds" && column != "cores") out[column] = cell;
    return out;
  };
  EXPECT_EQ(cells("one"), cells("two"));
  EXPECT_EQ(cells("one").at("status"), "done");
}

TEST(TrainCommand, BadInputIsOneLineExitTwoAndWritesNothing) {
  TempDir tmp;
  pt::write_idx_folder(tmp / "data", 32, 8, 28, 28, 10);
  pt::write_idx_folder(tmp / "tiny", 32, 8, 6, 6, 10);  // 6x6 images: too small for lenet5's pooling
  pt::write_file(tmp / "file", "a file, not a folder");
  const std::string data = " --data " + (tmp / "data").string();
  const auto out = tmp / "out";
  struct Case {
    std::string args, mention;
  };
  const Case cases[] = {
      {"--model alexnet --out " + out.string() + data, "alexnet"},
      {"--epochs 0 --out " + out.string() + data, "--epochs"},
      {"--data " + (tmp / "missing").string() + " --out " + out.string(), "missing"},
      {"--model lenet5 --data " + (tmp / "tiny").string() + " --out " + out.string(), "6x6"},
      {"--schedule linear --out " + out.string() + data, "linear"},
      {"--cores 0 --out " + out.string() + data, "0"},
      {"--out " + (tmp / "file" / "sub").string() + data, "file"},
      {data, "--out"},
      {"--augment --out " + out.string() + data, "3x32x32"},
      {"--micro-batch 48 --out " + out.string() + data, "--micro-batch 48 does not divide --batch-size 64"},
      {"--micro-batch 128 --out " + out.string() + data, "--micro-batch 128 is larger than --batch-size 64"},
      {"--micro-batch 0 --out " + out.string() + data, "--micro-batch must be at least 1"},
      {"--model lenet5 --cores 2 --max-cores 1 --out " + out.string() + data, "--max-cores 1 is below --cores 2"},
      {"--model lenet5 --max-cores 100000 --out " + out.string() + data, "--max-cores 100000 is above the"},
      {"--parallelism pipelines --out " + out.string() + data, "pipelines"},
      {"--lr-scaling sqrt --out " + out.string() + data, "sqrt"},
      {"--warmup-epochs 6 --out " + out.string() + data, "--warmup-epochs must be in 0..5"},
      {"--parallelism threads --micro-batch 16 --out " + out.string() + data, "--micro-batch is for --parallelism replicas"},
      {"--model mlp --max-cores 2 --out " + out.string() + data, "--max-cores is for --parallelism replicas"},
      {"--bucket-cap-mb 4 --out " + out.string() + data, "--bucket-cap-mb is for a model trained by several ranks"},
      {"--overlap off --out " + out.string() + data, "--overlap is for a model trained by several ranks"},
      {"--overlap sometimes --out " + out.string() + data, "--overlap must be on or off"},
      {"--oversubscribe --out " + out.string() + data, "--oversubscribe is for runs under mpirun"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    expect_usage_error(packtrain_train(tmp, c.args), c.mention);
    EXPECT_FALSE(std::filesystem::exists(out)) << "bad input wrote " << out;
  }
}

}  // namespace
