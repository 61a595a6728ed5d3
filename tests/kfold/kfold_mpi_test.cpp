// packtrain kfold under mpirun, and split into --shard parts, as users run it.
#include <packtrain/scheduler/journal.hpp>

#include "common/cli_run.hpp"
#include "packtrain_paths.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>

using namespace packtrain;
using packtrain::testing::journal_by_id;
using packtrain::testing::run_command;
using packtrain::testing::TempDir;

namespace {

std::vector<std::string> sweep(const std::filesystem::path& out, const std::vector<std::string>& extra = {}) {
  return packtrain::testing::packtrain_argv(
      {"kfold", "--models", "mlp,lenet5", "--schedules", "cosine", "--folds", "3", "--epochs", "1", "--limit",
       "1500", "--out", out.string(), "--quiet"},
      extra);
}

}  // namespace

TEST(KFoldMpi, TwoRanksShareTheSweepAndMatchOneProcess) {
  TempDir dir;
  const auto single = run_command(sweep(dir / "single"));
  ASSERT_EQ(single.exit_code, 0) << single.err;
  std::vector<std::string> argv = {PACKTRAIN_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-np", "2"};
  const auto inner = sweep(dir / "mpi", {"--cores", "1"});
  argv.insert(argv.end(), inner.begin(), inner.end());
  const auto mpi = run_command(argv);
  ASSERT_EQ(mpi.exit_code, 0) << mpi.out << mpi.err;
  const auto one = journal_by_id(dir / "single");
  const auto two = journal_by_id(dir / "mpi");
  ASSERT_EQ(two.size(), 6u);
  std::set<int> ranks;
  for (const auto& [id, r] : two) {
    ASSERT_TRUE(one.count(id)) << r.name;
    EXPECT_EQ(r.status, JobStatus::done) << r.name << ": " << r.message;
    EXPECT_EQ(r.metrics["val_top1"], one.at(id).metrics["val_top1"]) << r.name;
    EXPECT_EQ(r.metrics["val_loss"], one.at(id).metrics["val_loss"]) << r.name;
    ranks.insert(r.rank);
  }
  EXPECT_EQ(ranks, (std::set<int>{0, 1}));
  // Only rank 0 writes the run's files; the results show each job's rank.
  EXPECT_TRUE(std::filesystem::exists(dir / "mpi/results.csv"));
  EXPECT_NE(packtrain::testing::read_file(dir / "mpi/results.csv").find(",1,1\n"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir / "mpi/ranks/rank-1/journal.sqlite"));
  // The speed line counts the cores of every rank: 1 each.
  EXPECT_NE(mpi.out.find("the speed of one job at a time on 2 cores (2 ranks)"), std::string::npos) << mpi.out;
}

// Ranks on one node divide its cores: started on 2 CPUs with no --cores,
// each rank runs its jobs on a CPU of its own, and the speed line counts 2
// cores, not 4. More ranks than CPUs: every rank refuses with one line.
TEST(KFoldMpi, RanksOnOneNodeDivideItsCoresAndRefuseWhenThereAreFewerCoresThanRanks) {
  TempDir dir;
  const auto mpirun = [&](const char* cpus, const char* ranks, const std::filesystem::path& out,
                          std::vector<std::string> mpirun_options = {}) {
    std::vector<std::string> argv = {"/usr/bin/taskset", "-c", cpus, PACKTRAIN_MPIEXEC, "--allow-run-as-root", "--oversubscribe",
                                     "--bind-to", "none"};
    argv.insert(argv.end(), mpirun_options.begin(), mpirun_options.end());
    argv.insert(argv.end(), {"-np", ranks});
    const auto inner = sweep(out);
    argv.insert(argv.end(), inner.begin(), inner.end());
    return run_command(argv);
  };
  const auto two = mpirun("0,1", "2", dir / "two");
  ASSERT_EQ(two.exit_code, 0) << two.out << two.err;
  std::map<int, std::set<int>> cpus_of_rank;
  for (const auto& [id, r] : journal_by_id(dir / "two")) {
    EXPECT_EQ(r.status, JobStatus::done) << r.name;
    cpus_of_rank[r.rank].insert(r.cores.begin(), r.cores.end());
  }
  ASSERT_EQ(cpus_of_rank.size(), 2u) << "both ranks ran jobs";
  EXPECT_EQ(cpus_of_rank[0], (std::set<int>{0}));
  EXPECT_EQ(cpus_of_rank[1], (std::set<int>{1}));
  EXPECT_NE(two.out.find("the speed of one job at a time on 2 cores (2 ranks)"), std::string::npos) << two.out;

  const std::string line = "packtrain kfold: error: this node has 1 usable core(s) for 2 processes";
  const auto count = [&](const std::string& err) {
    std::size_t n = 0;
    for (auto at = err.find(line); at != std::string::npos; at = err.find(line, at + 1)) ++n;
    return n;
  };
  const auto refused = mpirun("0", "2", dir / "refused");
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  EXPECT_GE(count(refused.err), 1u) << refused.err;
  // Every rank says it (mpirun may kill one before it prints, unless told not to).
  const auto both = mpirun("0", "2", dir / "refused", {"--mca", "orte_abort_on_non_zero_status", "0"});
  EXPECT_EQ(count(both.err), 2u) << "one line on every rank: " << both.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "refused")) << "a refused run left its folder";
}

TEST(KFoldShards, ShardsCoverEveryJobExactlyOnce) {
  TempDir dir;
  std::map<std::string, int> seen;
  for (int i = 0; i < 3; ++i) {
    const auto r = run_command(sweep(dir / ("shard" + std::to_string(i)), {"--shard", std::to_string(i) + "/3"}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const auto& [id, rec] : journal_by_id(dir / ("shard" + std::to_string(i)))) {
      EXPECT_EQ(rec.status, JobStatus::done);
      ++seen[id];
    }
  }
  const auto full = run_command(sweep(dir / "full"));
  ASSERT_EQ(full.exit_code, 0) << full.err;
  const auto all = journal_by_id(dir / "full");
  ASSERT_EQ(seen.size(), all.size());
  for (const auto& [id, n] : seen) {
    EXPECT_EQ(n, 1) << id;
    EXPECT_TRUE(all.count(id)) << id;
  }
}

TEST(KFoldShards, BadShardIsOneLineExit2) {
  TempDir dir;
  for (const char* bad : {"3/3", "1/0", "x", "1/2/3", "-1/2"}) {
    const auto r = run_command(sweep(dir / "bad", {"--shard", bad}));
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_NE(r.err.find("--shard must be I/N"), std::string::npos) << bad << ": " << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "bad"));
}

TEST(KFoldMpi, RanksStartedWithDifferentFlagsBothRefuseWithOneLine) {
  TempDir dir;
  // One rank with --folds 2, the other with --folds 3 (mpirun's MPMD form).
  const auto start = [&](std::vector<std::string> mpirun_options) {
    std::vector<std::string> argv = {PACKTRAIN_MPIEXEC, "--allow-run-as-root", "--oversubscribe"};
    argv.insert(argv.end(), mpirun_options.begin(), mpirun_options.end());
    for (const char* folds : {"2", "3"}) {
      argv.insert(argv.end(), {"-np", "1", PACKTRAIN_CLI, "kfold", "--models", "mlp", "--schedules", "cosine", "--folds",
                               folds, "--epochs", "1", "--limit", "600", "--cores", "1", "--out", (dir / "run").string()});
      if (folds[0] == '2') argv.push_back(":");
    }
    return run_command(argv);
  };
  const std::string line = "packtrain kfold: error: the ranks built different jobs";
  const auto count = [&](const std::string& err) {
    std::size_t n = 0;
    for (auto at = err.find(line); at != std::string::npos; at = err.find(line, at + 1)) ++n;
    return n;
  };
  // mpirun passes on the ranks' exit status 2.
  const auto refused = start({});
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  EXPECT_GE(count(refused.err), 1u) << refused.err;
  EXPECT_NE(refused.err.find("on rank 0 but not on every rank"), std::string::npos) << refused.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "run")) << "a refused run left its folder";
  // Every rank says the same one line, naming the first job that differs
  // (mpirun would kill the other rank as soon as one exits non-zero, maybe
  // before it printed: here it lets both finish).
  const auto both = start({"--mca", "orte_abort_on_non_zero_status", "0"});
  EXPECT_EQ(count(both.err), 2u) << both.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "run"));
}
