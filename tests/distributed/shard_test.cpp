// --shard runs (SLURM job arrays, no MPI) and packtrain report --merge, as
// users run them: shards cover the sweep exactly once, keep lottery-ticket
// chains whole, and merge into one run equal to a single run.
#include <packtrain/scheduler/journal.hpp>

#include "common/cli_run.hpp"
#include "packtrain_paths.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

using namespace packtrain;
using packtrain::testing::journal_by_id;
using packtrain::testing::journal_records;
using packtrain::testing::read_file;
using packtrain::testing::run_command;
using packtrain::testing::TempDir;

namespace {

std::vector<std::string> kfold(const std::filesystem::path& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {PACKTRAIN_CLI, "kfold",  "--models", "mlp",        "--schedules", "cosine,step",
                                   "--folds",     "3",      "--epochs", "1",          "--limit",     "600",
                                   "--cores",     "1",      "--quiet",  "--out",      out.string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

// One dense job and one chain of two iterative rounds per reset epoch: every
// job depends on the dense one.
std::vector<std::string> lth(const std::filesystem::path& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {PACKTRAIN_CLI, "lth",     "--model", "mlp",   "--epochs", "2",
                                   "--reset-epochs", "0,1",  "--rounds", "2",    "--limit",  "600",
                                   "--cores",     "1",       "--quiet", "--out", out.string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

std::vector<std::string> merge(const std::vector<std::filesystem::path>& dirs, const std::filesystem::path& out) {
  std::vector<std::string> argv = {PACKTRAIN_CLI, "report", "--merge"};
  for (const auto& d : dirs) argv.push_back(d.string());
  argv.insert(argv.end(), {"--out", out.string(), "--quiet"});
  return argv;
}

void run_ok(const std::vector<std::string>& argv) {
  const auto r = run_command(argv);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
}

}  // namespace

TEST(ShardMerge, KFoldShardsMergeIntoOneRunEqualToASingleRun) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(run_ok(kfold(dir / "shard0", {"--shard", "0/2"})));
  ASSERT_NO_FATAL_FAILURE(run_ok(kfold(dir / "shard1", {"--shard", "1/2"})));
  ASSERT_NO_FATAL_FAILURE(run_ok(kfold(dir / "single")));
  const auto s0 = journal_records(dir / "shard0"), s1 = journal_records(dir / "shard1");
  ASSERT_FALSE(s0.empty());
  ASSERT_FALSE(s1.empty());
  ASSERT_EQ(s0.size() + s1.size(), 6u);

  ASSERT_NO_FATAL_FAILURE(run_ok(merge({dir / "shard0", dir / "shard1"}, dir / "merged")));
  const auto merged = journal_records(dir / "merged");
  const auto single = journal_by_id(dir / "single");
  ASSERT_EQ(merged.size(), 6u);
  EXPECT_EQ(journal_by_id(dir / "merged").size(), 6u) << "a job appears twice";
  for (const auto& r : merged) {
    ASSERT_TRUE(single.count(r.id)) << r.name;
    EXPECT_EQ(r.status, JobStatus::done) << r.name;
    EXPECT_EQ(r.metrics["val_top1"], single.at(r.id).metrics["val_top1"]) << r.name;
    EXPECT_EQ(r.metrics["val_loss"], single.at(r.id).metrics["val_loss"]) << r.name;
  }
  // The merged folder is a run `packtrain report` understands.
  const auto results = nlohmann::json::parse(read_file(dir / "merged/results.json"));
  EXPECT_EQ(results["jobs"].size(), 6u);
  EXPECT_EQ(results["summary"]["done"], 6);
  EXPECT_EQ(results["summary"]["command"], "kfold");
  const auto csv = read_file(dir / "merged/results.csv");
  for (const auto& [id, r] : single) EXPECT_NE(csv.find(id), std::string::npos) << r.name;
  EXPECT_NE(read_file(dir / "merged/report.html").find("id=\"job-count\""), std::string::npos);

  // The same shard twice: each job still once, with its done record.
  ASSERT_NO_FATAL_FAILURE(run_ok(merge({dir / "shard0", dir / "shard1", dir / "shard0"}, dir / "twice")));
  EXPECT_EQ(journal_records(dir / "twice").size(), 6u);
}

TEST(ShardMerge, RefusesMissingShardsOtherSweepsAndAFullOut) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(run_ok(kfold(dir / "shard0", {"--shard", "0/2"})));
  const auto s0 = journal_records(dir / "shard0");

  const auto missing = run_command(merge({dir / "shard0"}, dir / "merged"));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("the shards do not cover the sweep: " + std::to_string(6 - s0.size()) + " of 6 jobs"),
            std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("shard 1/2 not given"), std::string::npos) << missing.err;
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1) << missing.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "merged"));

  // Another sweep: same command, other options, so other job ids.
  ASSERT_NO_FATAL_FAILURE(run_ok(kfold(dir / "other", {"--shard", "1/2", "--plain-folds"})));
  const auto other = run_command(merge({dir / "shard0", dir / "other"}, dir / "merged"));
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.err.find("is not a shard of the same sweep"), std::string::npos) << other.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "merged"));

  packtrain::testing::write_file(dir / "full/notes.txt", "mine");
  const auto full = run_command(merge({dir / "shard0"}, dir / "full"));
  EXPECT_EQ(full.exit_code, 2);
  EXPECT_NE(full.err.find("is not an empty folder"), std::string::npos) << full.err;
  EXPECT_EQ(read_file(dir / "full/notes.txt"), "mine");

  const auto no_out = run_command({PACKTRAIN_CLI, "report", "--merge", (dir / "shard0").string()});
  EXPECT_EQ(no_out.exit_code, 2);
  EXPECT_NE(no_out.err.find("--merge needs --out"), std::string::npos) << no_out.err;
}

TEST(ShardMerge, LthShardsKeepChainsWholeAndMerge) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(run_ok(lth(dir / "shard0", {"--shard", "0/2"})));
  ASSERT_NO_FATAL_FAILURE(run_ok(lth(dir / "shard1", {"--shard", "1/2"})));
  ASSERT_NO_FATAL_FAILURE(run_ok(lth(dir / "single")));
  const auto single = journal_by_id(dir / "single");
  ASSERT_EQ(single.size(), 5u);
  // Every job depends on the dense one: one shard runs them all, the other
  // none (split, the second round would wait for a dense job it never runs).
  const auto s0 = journal_records(dir / "shard0"), s1 = journal_records(dir / "shard1");
  EXPECT_EQ(std::min(s0.size(), s1.size()), 0u);
  std::map<std::string, int> seen;
  for (const auto* shard : {&s0, &s1})
    for (const auto& r : *shard) {
      ++seen[r.id];
      EXPECT_EQ(r.status, JobStatus::done) << r.name << ": " << r.message;
      ASSERT_TRUE(single.count(r.id)) << r.name;
      EXPECT_EQ(r.metrics["test_top1"], single.at(r.id).metrics["test_top1"]) << r.name;
    }
  EXPECT_EQ(seen.size(), single.size());
  for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << id;

  ASSERT_NO_FATAL_FAILURE(run_ok(merge({dir / "shard0", dir / "shard1"}, dir / "merged")));
  EXPECT_EQ(journal_by_id(dir / "merged").size(), 5u);
  // The dense accuracy line of the plot comes from the shard that had it.
  EXPECT_TRUE(Journal::open(dir / "merged/journal.sqlite")->meta("plot_reference").has_value());
}
