// packtrain hogwild, run as a user runs it: a real process, real data, real files.
#include "common/test_util.hpp"
#include "packtrain_paths.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>

using packtrain::testing::read_file;
using packtrain::testing::run_command;
using packtrain::testing::TempDir;

TEST(HogwildCli, TrainsWritesResultsAndTheTraceRecordsTheWorkers) {
  TempDir dir;
  const auto out = dir / "run";
  const auto r = run_command({PACKTRAIN_CLI, "hogwild", "--model", "mlp", "--threads", "2", "--epochs", "2",
                              "--limit", "3000", "--quiet", "--out", out.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("epoch  workers  samples/s"), std::string::npos) << r.out;
  const auto json = nlohmann::json::parse(read_file(out / "results.json"));
  ASSERT_EQ(json["jobs"].size(), 1u);
  const auto& job = json["jobs"][0];
  EXPECT_EQ(job["status"], "done");
  EXPECT_GT(job["test_top1"].get<double>(), 0.5);
  EXPECT_EQ(job["metrics"]["minibatches_not_once"], 0);
  EXPECT_EQ(job["metrics"]["per_epoch"].size(), 2u);
  EXPECT_TRUE(json["summary"]["samples_per_s"].is_number());
  const auto csv = read_file(out / "results.csv");
  EXPECT_NE(csv.find("peak_workers"), std::string::npos) << csv;
  // Alone on the node, the job was lent the second core at once: its trace shows it.
  const auto trace = nlohmann::json::parse(read_file(out / "trace.json"));
  int lent = 0;
  for (const auto& e : trace["traceEvents"])
    if (e["ph"] == "X" && e["name"] == "mlp/hogwild (lent)") ++lent;
  EXPECT_EQ(lent, 1);
  EXPECT_EQ(job["metrics"]["peak_workers"], 2);
  EXPECT_TRUE(std::filesystem::exists(out / "report.html"));
}

TEST(HogwildCli, BadRequestsGetAOneLineErrorAndWriteNothing) {
  TempDir dir;
  const auto out = dir / "run";
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--threads", "0"}, "--threads must be at least 1"},
      {{"--threads", "1", "--min-threads", "2"}, "--min-threads 2 is more than --threads 1"},
      {{"--threads", "99"}, "is more than the"},
      {{"--optimizer", "adam"}, "plain SGD"},
      {{"--model", "nope"}, "nope"},
      {{"--epochs", "0"}, "epochs"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv = {PACKTRAIN_CLI, "hogwild", "--out", out.string()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    const auto r = run_command(argv);
    EXPECT_EQ(r.exit_code, 2) << c.args[0];
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(std::filesystem::exists(out / "journal.sqlite")) << c.args[0];
  }
}
