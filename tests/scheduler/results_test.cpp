#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/results.hpp>

#include "common/test_util.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

using namespace packtrain;
using packtrain::testing::read_file;
using packtrain::testing::TempDir;

namespace {

JobRecord record(const std::string& id, const std::string& model, int fold, double top1) {
  JobRecord r;
  r.id = id;
  r.name = model + "/fold" + std::to_string(fold);
  r.spec = {{"model", model}, {"schedule", "cosine"}, {"fold", fold}, {"epochs", 2}};
  r.status = JobStatus::done;
  r.started_at = 100;
  r.ended_at = 103.25;
  r.cores = {1};
  r.rank = 0;
  r.metrics = {{"val_top1", top1}, {"val_top5", 0.99}, {"val_loss", 0.4}};
  return r;
}

}  // namespace

TEST(Results, CsvHasTheSweepsColumnsFromRecordSpecAndMetrics) {
  TempDir dir;
  const std::vector<std::string> columns = {"job",      "status",   "model",    "schedule", "fold",
                                            "epochs",   "val_top1", "val_top5", "val_loss", "seconds",
                                            "cores",    "rank"};
  write_results_csv(dir / "results.csv", {record("aa", "mlp", 0, 0.875), record("bb", "lenet5", 1, 0.9)}, columns);
  EXPECT_EQ(read_file(dir / "results.csv"),
            "job,status,model,schedule,fold,epochs,val_top1,val_top5,val_loss,seconds,cores,rank\n"
            "aa,done,mlp,cosine,0,2,0.875,0.99,0.4,3.250,1,0\n"
            "bb,done,lenet5,cosine,1,2,0.9,0.99,0.4,3.250,1,0\n");
}

TEST(Results, CsvQuotesCellsWithCommasAndMissingValuesAreEmpty) {
  TempDir dir;
  auto r = record("aa", "mlp,wide", 0, 0.5);
  r.metrics = nlohmann::json::object();
  write_results_csv(dir / "r.csv", {r}, {"job", "model", "val_top1"});
  EXPECT_EQ(read_file(dir / "r.csv"), "job,model,val_top1\naa,\"mlp,wide\",\n");
}

TEST(Results, JsonHoldsRowsAndSummary) {
  TempDir dir;
  auto r = record("aa", "mlp", 0, 0.875);
  r.artifacts = {"checkpoints/aa/epoch-0001.pt"};
  write_results_json(dir / "results.json", {r}, {{"makespan_s", 12.5}}, {"job", "status", "model", "val_top1"});
  const auto j = nlohmann::json::parse(read_file(dir / "results.json"));
  EXPECT_DOUBLE_EQ(j["summary"]["makespan_s"].get<double>(), 12.5);
  ASSERT_EQ(j["jobs"].size(), 1u);
  EXPECT_EQ(j["jobs"][0]["job"], "aa");
  EXPECT_EQ(j["jobs"][0]["model"], "mlp");
  EXPECT_DOUBLE_EQ(j["jobs"][0]["val_top1"].get<double>(), 0.875);
  EXPECT_EQ(j["jobs"][0]["core_ids"], nlohmann::json::array({1}));
  EXPECT_EQ(j["jobs"][0]["artifacts"], nlohmann::json::array({"checkpoints/aa/epoch-0001.pt"}));
}

TEST(Results, UnwritableOrFileOutputIsRefused) {
  TempDir dir;
  packtrain::testing::write_file(dir / "file", "x");
  EXPECT_THROW(create_output_dir(dir / "file"), Error);
  std::filesystem::create_directories(dir / "ro");
  chmod((dir / "ro").c_str(), 0555);
  if (geteuid() == 0) {
    // root writes anywhere; a folder under a file still cannot be made.
    EXPECT_THROW(create_output_dir(dir / "file" / "sub"), Error);
  } else {
    EXPECT_THROW(create_output_dir(dir / "ro"), Error);
  }
  EXPECT_THROW(create_output_dir(""), Error);
  EXPECT_NO_THROW(create_output_dir(dir / "new" / "run"));
  EXPECT_TRUE(std::filesystem::is_directory(dir / "new" / "run"));
}
