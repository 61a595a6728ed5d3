// packtrain lth under mpirun, as users run it: the dense job's checkpoints
// reach retrains on another rank through the job-end messages, and the
// results equal a single process's (job seeds come from job ids).
#include <packtrain/scheduler/journal.hpp>

#include "common/cli_run.hpp"
#include "packtrain_paths.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

using namespace packtrain;
using packtrain::testing::read_file;
using packtrain::testing::journal_by_id;
using packtrain::testing::run_command;
using packtrain::testing::TempDir;

namespace {

// 1 dense job and 4 retrains. Dealt longest first, rank 1 starts with two
// retrains that wait for the dense job rank 0 starts with.
std::vector<std::string> sweep(const std::filesystem::path& out) {
  return {PACKTRAIN_CLI, "lth",          "--model",       "mlp",     "--epochs", "2",     "--reset-epochs",
          "0,1",         "--sparsities", "0.5,0.8",       "--limit", "600",      "--out", out.string(),
          "--cores",     "1"};
}

}  // namespace

TEST(LthMpi, RetrainsOnAnotherRankThanTheDenseJobMatchOneProcess) {
  TempDir dir;
  const auto single = run_command(sweep(dir / "single"));
  ASSERT_EQ(single.exit_code, 0) << single.err;
  std::vector<std::string> argv = {PACKTRAIN_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-np", "2"};
  const auto inner = sweep(dir / "mpi");
  argv.insert(argv.end(), inner.begin(), inner.end());
  const auto mpi = run_command(argv);
  ASSERT_EQ(mpi.exit_code, 0) << mpi.out << mpi.err;

  const auto one = journal_by_id(dir / "single");
  const auto two = journal_by_id(dir / "mpi");
  ASSERT_EQ(one.size(), 5u);
  ASSERT_EQ(two.size(), 5u);
  std::string dense_id;
  int dense_rank = -1;
  for (const auto& [id, r] : two)
    if (r.spec["kind"] == "dense") dense_id = id, dense_rank = r.rank;
  ASSERT_FALSE(dense_id.empty());
  std::set<int> retrain_ranks;
  for (const auto& [id, r] : two) {
    ASSERT_TRUE(one.count(id)) << r.name;
    EXPECT_EQ(r.status, JobStatus::done) << r.name << ": " << r.message;
    EXPECT_EQ(r.metrics["test_top1"], one.at(id).metrics["test_top1"]) << r.name;
    EXPECT_EQ(r.metrics["val_loss"], one.at(id).metrics["val_loss"]) << r.name;
    EXPECT_EQ(r.metrics.value("weights_left", -1), one.at(id).metrics.value("weights_left", -1)) << r.name;
    if (id != dense_id) retrain_ranks.insert(r.rank);
  }
  // Some retrain ran where the dense job did not: its checkpoints travelled.
  EXPECT_TRUE(retrain_ranks.count(1 - dense_rank)) << "every retrain ran on rank " << dense_rank;

  // Each rank works in its own folder and got the other's files by message:
  // both hold the dense checkpoints and every mask and ticket.
  for (const auto& root : {dir / "mpi", dir / "mpi/ranks/rank-1"}) {
    for (const char* e : {"epoch-0000.pt", "epoch-0001.pt", "epoch-0002.pt"})
      EXPECT_TRUE(std::filesystem::exists(root / "checkpoints" / dense_id / e)) << root << " " << e;
    for (const char* stem : {"sparsity-0.5000_reset-0", "sparsity-0.8000_reset-1"}) {
      EXPECT_TRUE(std::filesystem::exists(root / "masks" / (std::string(stem) + ".pt"))) << root << " " << stem;
      EXPECT_TRUE(std::filesystem::exists(root / "tickets" / (std::string(stem) + ".json"))) << root << " " << stem;
    }
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "mpi/ranks/rank-1/journal.sqlite"));

  // Rank 0 reports the winning ticket of all ranks' results, once.
  const auto summary = [&](const char* run) {
    return nlohmann::json::parse(read_file(dir / run / "results.json"))["summary"];
  };
  ASSERT_TRUE(summary("single").contains("winner")) << read_file(dir / "single/results.json");
  EXPECT_EQ(summary("mpi")["winner"], summary("single")["winner"]);
  EXPECT_EQ(summary("mpi")["dense_top1"], summary("single")["dense_top1"]);
  const auto first = mpi.out.find("winning ticket");
  ASSERT_NE(first, std::string::npos) << mpi.out;
  EXPECT_EQ(mpi.out.find("winning ticket", first + 1), std::string::npos) << "printed by more than one rank";
}

// A run stopped after its dense job, resumed under mpirun: the dense job is
// not run again, and the retrains dealt to rank 1 find its checkpoints
// there, sent by rank 0 (no shared filesystem).
TEST(LthMpi, ResumeUnderMpirunSendsTheDoneJobsFilesToTheOtherRanks) {
  TempDir dir;
  const auto first = run_command(sweep(dir / "run"));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  // As if the first run had stopped once its dense job was done: the
  // retrains are recorded failed, which --resume runs again.
  std::string dense_id;
  {
    auto journal = Journal::open(dir / "run/journal.sqlite");
    for (auto r : journal->records()) {
      if (r.spec["kind"] == "dense") {
        dense_id = r.id;
        continue;
      }
      r.status = JobStatus::failed;
      r.message = "stopped";
      journal->put(r);
    }
  }
  ASSERT_FALSE(dense_id.empty());
  std::vector<std::string> argv = {PACKTRAIN_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-np", "2"};
  auto inner = sweep(dir / "run");
  inner.push_back("--resume");
  argv.insert(argv.end(), inner.begin(), inner.end());
  const auto resumed = run_command(argv);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;

  const auto after = journal_by_id(dir / "run");
  ASSERT_EQ(after.size(), 5u);
  std::set<int> retrain_ranks;
  for (const auto& [id, r] : after) {
    EXPECT_EQ(r.status, JobStatus::done) << r.name << ": " << r.message;
    if (id == dense_id) EXPECT_EQ(r.attempts, 1) << "the dense job ran again";
    else retrain_ranks.insert(r.rank);
  }
  EXPECT_TRUE(retrain_ranks.count(1)) << "no retrain ran on rank 1";
  for (const char* e : {"epoch-0000.pt", "epoch-0001.pt", "epoch-0002.pt"})
    EXPECT_TRUE(std::filesystem::exists(dir / "run/ranks/rank-1/checkpoints" / dense_id / e)) << e;
}

// --ranks-per-job 2 under 3 ranks: the dense run and the retrains go to the
// gang of ranks 0 and 1 or to rank 2 alone; the rewind checkpoints reach
// whoever retrains, and every job equals one process's (replicas of the
// same micro-batches).
TEST(LthMpi, GangJobsAndSoloJobsOfALotteryTicketSweepMatchOneProcess) {
  TempDir dir;
  const auto lth = [&](const std::string& out, const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {PACKTRAIN_CLI, "lth", "--model", "lenet5", "--epochs", "2", "--reset-epochs", "0,1",
                                     "--sparsities", "0.5,0.8", "--limit", "1024", "--out", (dir / out).string(),
                                     "--quiet"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  };
  const auto single = run_command(lth("single", {"--max-cores-per-job", "2", "--parallelism", "replicas"}));
  ASSERT_EQ(single.exit_code, 0) << single.err;
  std::vector<std::string> argv = {PACKTRAIN_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
                                   "-np", "3"};
  const auto inner = lth("gangs", {"--ranks-per-job", "2", "--oversubscribe"});
  argv.insert(argv.end(), inner.begin(), inner.end());
  const auto mpi = run_command(argv);
  ASSERT_EQ(mpi.exit_code, 0) << mpi.out << mpi.err;
  const auto one = journal_by_id(dir / "single");
  const auto gangs = journal_by_id(dir / "gangs");
  ASSERT_EQ(gangs.size(), 5u);
  std::set<std::string> where;  // "gang" and "solo"
  for (const auto& [id, r] : gangs) {
    ASSERT_TRUE(one.count(id)) << r.name;
    EXPECT_EQ(r.status, JobStatus::done) << r.name << ": " << r.message;
    EXPECT_NEAR(r.metrics["test_top1"].get<double>(), one.at(id).metrics["test_top1"].get<double>(), 0.003) << r.name;
    EXPECT_NEAR(r.metrics["val_loss"].get<double>(), one.at(id).metrics["val_loss"].get<double>(),
                1e-5 * std::abs(one.at(id).metrics["val_loss"].get<double>()))
        << r.name;
    EXPECT_EQ(r.metrics.value("weights_left", -1), one.at(id).metrics.value("weights_left", -1)) << r.name;
    where.insert(r.metrics.contains("gang_ranks") ? "gang" : "solo");
    if (r.metrics.contains("gang_ranks")) {
      EXPECT_EQ(r.rank, 0) << r.name;
    }
  }
  EXPECT_EQ(where, (std::set<std::string>{"gang", "solo"}));
}
