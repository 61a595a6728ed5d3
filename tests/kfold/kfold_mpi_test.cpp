// packtrain kfold under mpirun, and split into --shard parts, as users run it.
#include <packtrain/scheduler/journal.hpp>

#include "common/cli_run.hpp"
#include "packtrain_paths.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
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
  // 2 cores, as the 2 ranks below have: the same fused job.
  const auto single = run_command(sweep(dir / "single", {"--cores", "2"}));
  ASSERT_EQ(single.exit_code, 0) << single.err;
  std::vector<std::string> argv = {PACKTRAIN_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-np", "2"};
  const auto inner = sweep(dir / "mpi", {"--cores", "1"});
  argv.insert(argv.end(), inner.begin(), inner.end());
  const auto mpi = run_command(argv);
  ASSERT_EQ(mpi.exit_code, 0) << mpi.out << mpi.err;
  const auto one = journal_by_id(dir / "single");
  const auto two = journal_by_id(dir / "mpi");
  // 6 folds and one fused job of lenet5's 3 (6 jobs on 2 cores, one of
  // them at the 2 ranks' 1 core each): a fold that runs on another rank
  // than its fused job gets the job's file for it over MPI.
  ASSERT_EQ(two.size(), 7u);
  int fused = 0;
  std::set<int> ranks;
  for (const auto& [id, r] : two) {
    ASSERT_TRUE(one.count(id)) << r.name;
    EXPECT_EQ(r.status, JobStatus::done) << r.name << ": " << r.message;
    ranks.insert(r.rank);
    if (r.name == "lenet5/cosine/fused0-2") {
      ++fused;
      continue;  // no metrics of a fold
    }
    EXPECT_EQ(r.metrics["val_top1"], one.at(id).metrics["val_top1"]) << r.name;
    EXPECT_EQ(r.metrics["val_loss"], one.at(id).metrics["val_loss"]) << r.name;
  }
  EXPECT_EQ(fused, 1);
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
    // Unfused: shards plan fused folds for the cores of all shards, one run for its own.
    const auto r = run_command(
        sweep(dir / ("shard" + std::to_string(i)), {"--shard", std::to_string(i) + "/3", "--fuse", "off"}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const auto& [id, rec] : journal_by_id(dir / ("shard" + std::to_string(i)))) {
      EXPECT_EQ(rec.status, JobStatus::done);
      ++seen[id];
    }
  }
  const auto full = run_command(sweep(dir / "full", {"--fuse", "off"}));
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

// Fused folds in shards: 3 shards of 1 core plan for 3 cores (6 jobs: a
// fused job of lenet5's folds 0-1, fold 2 alone), and a fused job's folds
// run in its shard.
TEST(KFoldShards, FusedFoldsRunInTheShardOfTheirFusedJob) {
  TempDir dir;
  std::map<std::string, int> shard_of;
  std::map<std::string, JobRecord> records;
  for (int i = 0; i < 3; ++i) {
    const auto out = dir / ("shard" + std::to_string(i));
    const auto r = run_command(sweep(out, {"--shard", std::to_string(i) + "/3", "--cores", "1"}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const auto& [id, rec] : journal_by_id(out)) {
      EXPECT_EQ(rec.status, JobStatus::done) << rec.name;
      EXPECT_TRUE(shard_of.emplace(id, i).second) << rec.name << " ran in two shards";
      records[id] = rec;
    }
  }
  ASSERT_EQ(records.size(), 7u);
  int followers = 0;
  for (const auto& [id, rec] : records) {
    if (!rec.metrics.contains("fused_job")) continue;
    ++followers;
    const auto fused = rec.metrics["fused_job"].get<std::string>();
    ASSERT_TRUE(records.count(fused)) << rec.name;
    EXPECT_EQ(records.at(fused).name, "lenet5/cosine/fused0-1");
    EXPECT_EQ(shard_of.at(id), shard_of.at(fused)) << rec.name;
  }
  EXPECT_EQ(followers, 2);
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

namespace {

// `kfold` under mpirun with `ranks` ranks sharing this machine's cores.
std::vector<std::string> mpirun_kfold(int ranks, const std::vector<std::string>& kfold_argv,
                                      const std::vector<std::string>& mpirun_options = {}) {
  std::vector<std::string> argv = {PACKTRAIN_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none"};
  argv.insert(argv.end(), mpirun_options.begin(), mpirun_options.end());
  argv.insert(argv.end(), {"-np", std::to_string(ranks)});
  argv.insert(argv.end(), kfold_argv.begin(), kfold_argv.end());
  return argv;
}

std::vector<std::string> gang_sweep(const std::filesystem::path& out, const std::vector<std::string>& extra = {}) {
  // 1536 samples in 3 folds: 1024 to train on, 16 whole steps of 64 (4
  // micro-batches of 16: 2 a rank, a subtree of one process's sum).
  return packtrain::testing::packtrain_argv({"kfold", "--models", "lenet5", "--schedules", "cosine", "--folds", "3",
                                             "--epochs", "1", "--limit", "1536", "--out", out.string(), "--quiet"},
                                            extra);
}

std::size_t count_of(const std::string& text, const std::string& line) {
  std::size_t n = 0;
  for (auto at = text.find(line); at != std::string::npos; at = text.find(line, at + 1)) ++n;
  return n;
}

}  // namespace

// --ranks-per-job 2 under 3 ranks: ranks 0 and 1 form a group whose gang
// jobs train on both at once; rank 2 runs jobs alone. Every job runs once,
// is recorded once (a gang job with its ranks), and each equals the same
// job trained by one process (the same replicas' micro-batches).
TEST(KFoldMpi, GangJobsOfTwoRanksBesideASoloRankRunEveryJobOnceAndMatchOneProcess) {
  TempDir dir;
  const auto single = run_command(gang_sweep(dir / "single", {"--max-cores-per-job", "2", "--parallelism", "replicas"}));
  ASSERT_EQ(single.exit_code, 0) << single.err;
  const auto mpi = run_command(mpirun_kfold(3, gang_sweep(dir / "gangs", {"--ranks-per-job", "2", "--oversubscribe"})));
  ASSERT_EQ(mpi.exit_code, 0) << mpi.out << mpi.err;
  const auto one = journal_by_id(dir / "single");
  const auto gangs = journal_by_id(dir / "gangs");
  ASSERT_EQ(gangs.size(), 3u);
  int gang_jobs = 0, solo_jobs = 0;
  for (const auto& [id, r] : gangs) {
    ASSERT_TRUE(one.count(id)) << r.name << ": the same job (spec) as one process's";
    EXPECT_EQ(r.status, JobStatus::done) << r.name << ": " << r.message;
    EXPECT_EQ(r.attempts, 1) << r.name;
    const auto& mine = r.metrics;
    const auto& theirs = one.at(id).metrics;
    EXPECT_NEAR(mine["val_top1"].get<double>(), theirs["val_top1"].get<double>(), 0.003) << r.name;
    EXPECT_NEAR(mine["val_loss"].get<double>(), theirs["val_loss"].get<double>(),
                1e-5 * std::abs(theirs["val_loss"].get<double>()))
        << r.name;
    if (mine.contains("gang_ranks")) {
      ++gang_jobs;
      EXPECT_EQ(mine["gang_ranks"], nlohmann::json::array({0, 1})) << r.name;
      EXPECT_EQ(mine["ranks"], 2) << r.name;
      EXPECT_EQ(r.rank, 0) << r.name << ": recorded by the gang's first rank";
    } else {
      ++solo_jobs;
      EXPECT_EQ(r.rank, 2) << r.name << ": the solo rank's";
    }
  }
  EXPECT_GE(gang_jobs, 1);
  EXPECT_GE(solo_jobs, 1);
  EXPECT_FALSE(std::filesystem::exists(dir / "gangs/ranks/rank-1/journal.sqlite"));
}

TEST(KFoldMpi, BadGangRequestsAreOneLineOnEveryRankAndExit2) {
  TempDir dir;
  const auto refused = [&](int ranks, const std::vector<std::string>& flags, const std::string& line) {
    const auto plain = run_command(mpirun_kfold(ranks, gang_sweep(dir / "bad", flags)));
    EXPECT_EQ(plain.exit_code, 2) << plain.out << plain.err;
    EXPECT_GE(count_of(plain.err, "packtrain kfold: error: " + line), 1u) << plain.err;
    // Every rank says it, when mpirun lets each finish (it kills the others
    // at the first non-zero exit, maybe before they print; it then exits 0).
    const auto every = run_command(
        mpirun_kfold(ranks, gang_sweep(dir / "bad", flags), {"--mca", "orte_abort_on_non_zero_status", "0"}));
    EXPECT_EQ(count_of(every.err, "packtrain kfold: error: " + line), static_cast<std::size_t>(ranks)) << every.err;
    EXPECT_FALSE(std::filesystem::exists(dir / "bad")) << line;
  };
  refused(2, {"--ranks-per-job", "3"}, "--ranks-per-job 3 is more than the 2 rank(s) of this run");
  refused(2, {"--ranks-per-job", "2", "--parallelism", "threads"},
          "--ranks-per-job trains every job as replicas over its ranks");
  refused(2, {"--ranks-per-job", "2", "--checkpoint-every", "1"}, "--checkpoint-every is not for gang jobs");
  refused(2, {"--ranks-per-job", "2", "--batch-size", "32", "--micro-batch", "32"},
          "--batch-size 32 is 1 micro-batch(es) of 32, fewer than the 2 ranks");
  refused(2, {"--ranks-per-job", "2", "--cores-per-job", "2"}, "--cores-per-job 2 is more than the 1 core(s)");
  refused(2, {"--ranks-per-job", "0"}, "--ranks-per-job must be at least 1, not 0");
  // Without mpirun there are no ranks to make a gang of.
  const auto alone = run_command(gang_sweep(dir / "bad", {"--ranks-per-job", "2"}));
  EXPECT_EQ(alone.exit_code, 2) << alone.err;
  EXPECT_NE(alone.err.find("packtrain kfold: error: --ranks-per-job is for runs under mpirun or srun"), std::string::npos)
      << alone.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "bad"));
}

// A rank of a gang dies mid-job (a crash: SIGSEGV on its job's thread, the
// test hook of the supervisor's tests; under mpirun there is no supervising
// parent): every rank ends non-zero within 10 s, rank 0's journal opens,
// and --resume finishes the sweep with the numbers of a run never killed.
TEST(KFoldMpi, ARankOfAGangKilledMidJobEndsEveryRankAndResumeFinishesTheSweep) {
  TempDir dir;
  const auto single = run_command(gang_sweep(dir / "single", {"--max-cores-per-job", "2", "--parallelism", "replicas"}));
  ASSERT_EQ(single.exit_code, 0) << single.err;
  const auto crashed_at = dir / "crashed";  // the hook writes it just before the signal
  const std::vector<std::string> flags = {"--ranks-per-job", "2", "--oversubscribe"};
  std::vector<std::string> argv = {PACKTRAIN_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none"};
  for (int rank = 0; rank < 3; ++rank) {
    if (rank > 0) argv.push_back(":");
    argv.insert(argv.end(), {"-np", "1"});
    if (rank == 1)  // rank 1 runs only gang jobs at first: its first one crashes after the gang's start check
      argv.insert(argv.end(), {"/usr/bin/env", "PACKTRAIN_TEST_CRASH_JOB=lenet5",
                               "PACKTRAIN_TEST_CRASH_ONCE=" + crashed_at.string()});
    const auto inner = gang_sweep(dir / "gangs", flags);
    argv.insert(argv.end(), inner.begin(), inner.end());
  }
  const auto killed = run_command(argv);
  const auto ended = std::filesystem::file_time_type::clock::now();
  EXPECT_NE(killed.exit_code, 0) << killed.out << killed.err;
  ASSERT_TRUE(std::filesystem::exists(crashed_at)) << "the gang job on rank 1 never started: " << killed.err;
  EXPECT_LT(ended - std::filesystem::last_write_time(crashed_at), std::chrono::seconds(10))
      << "every rank ended within 10 s of the crash";
  const auto interrupted = journal_by_id(dir / "gangs");  // opens and reads: intact
  EXPECT_EQ(interrupted.size(), 3u);
  EXPECT_TRUE(std::any_of(interrupted.begin(), interrupted.end(),
                          [](const auto& row) { return row.second.status != JobStatus::done; }))
      << "the crashed gang job is not recorded done";

  auto resume = flags;
  resume.push_back("--resume");
  const auto resumed = run_command(mpirun_kfold(3, gang_sweep(dir / "gangs", resume)));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  const auto one = journal_by_id(dir / "single");
  const auto after = journal_by_id(dir / "gangs");
  ASSERT_EQ(after.size(), 3u);
  for (const auto& [id, r] : after) {
    EXPECT_EQ(r.status, JobStatus::done) << r.name << ": " << r.message;
    EXPECT_NEAR(r.metrics["val_loss"].get<double>(), one.at(id).metrics["val_loss"].get<double>(),
                1e-5 * std::abs(one.at(id).metrics["val_loss"].get<double>()))
        << r.name;
  }
}

// A gang job that fails on one rank alone after its exchanges (the test
// hook's THROW_AFTER on rank 1: a save in its own folder failing, say):
// every member ends it failed with that rank's message, rank 0 records it
// so, the sweep's other jobs are done and the run ends (exit 1), no rank
// left waiting in the lane.
TEST(KFoldMpi, AGangJobFailingOnOneRankAfterItsExchangesFailsOnEveryRankAndTheSweepGoesOn) {
  TempDir dir;
  const auto failed_at = dir / "failed";
  std::vector<std::string> argv = {PACKTRAIN_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none"};
  for (int rank = 0; rank < 3; ++rank) {
    if (rank > 0) argv.push_back(":");
    argv.insert(argv.end(), {"-np", "1"});
    if (rank == 1)
      argv.insert(argv.end(), {"/usr/bin/env", "PACKTRAIN_TEST_CRASH_JOB=lenet5", "PACKTRAIN_TEST_CRASH_SIGNAL=THROW_AFTER",
                               "PACKTRAIN_TEST_CRASH_ONCE=" + failed_at.string()});
    const auto inner = gang_sweep(dir / "gangs", {"--ranks-per-job", "2", "--oversubscribe"});
    argv.insert(argv.end(), inner.begin(), inner.end());
  }
  const auto run = run_command(argv);
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  ASSERT_TRUE(std::filesystem::exists(failed_at)) << run.err;
  const auto jobs = journal_by_id(dir / "gangs");
  ASSERT_EQ(jobs.size(), 3u);
  int failed = 0;
  for (const auto& [id, r] : jobs) {
    if (r.status == JobStatus::failed) {
      ++failed;
      EXPECT_EQ(r.message, "rank 1 of the gang: test hook: a failure after training") << r.name;
      EXPECT_EQ(id + "\n", packtrain::testing::read_file(failed_at)) << "the job rank 1 failed";
    } else {
      EXPECT_EQ(r.status, JobStatus::done) << r.name << ": " << r.message;
    }
  }
  EXPECT_EQ(failed, 1);
}
