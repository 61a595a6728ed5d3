// packtrain batch under mpirun, and split into --shard parts, as users run it.
#include <packtrain/scheduler/journal.hpp>

#include "common/cli_run.hpp"
#include "packtrain_paths.hpp"

#include <gtest/gtest.h>

#include <map>

using namespace packtrain;
using packtrain::testing::journal_by_id;
using packtrain::testing::run_command;
using packtrain::testing::TempDir;
using packtrain::testing::write_file;

namespace {

const char* kPlan = R"(seed = 2
[[kfold]]
name = "sweep"
models = ["mlp", "lenet5"]
schedules = "cosine"
folds = 2
epochs = 1
limit = 1500

[[lth]]
name = "tickets"
model = "mlp"
epochs = 2
sparsities = 0.5
limit = 1500
)";

std::vector<std::string> batch(const std::filesystem::path& plan, const std::filesystem::path& out,
                               const std::vector<std::string>& extra) {
  return packtrain::testing::packtrain_argv({"batch", plan.string(), "--out", out.string(), "--quiet"}, extra);
}

std::vector<std::string> under_mpirun(const std::vector<std::string>& inner) {
  std::vector<std::string> argv = {PACKTRAIN_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-np", "2"};
  argv.insert(argv.end(), inner.begin(), inner.end());
  return argv;
}

}  // namespace

// Two ranks of one core each share every entry's jobs: the same jobs and
// numbers as one process of two cores, every job recorded once, by entry.
TEST(BatchMpi, TwoRanksShareThePlansJobsAndMatchOneProcess) {
  TempDir dir;
  const auto plan = dir / "plan.toml";
  write_file(plan, kPlan);
  const auto single = run_command(batch(plan, dir / "single", {"--cores", "2"}));
  ASSERT_EQ(single.exit_code, 0) << single.err;
  const auto mpi = run_command(under_mpirun(batch(plan, dir / "mpi", {"--cores", "1"})));
  ASSERT_EQ(mpi.exit_code, 0) << mpi.out << mpi.err;
  const auto one = journal_by_id(dir / "single");
  const auto two = journal_by_id(dir / "mpi");
  ASSERT_EQ(two.size(), one.size());
  ASSERT_EQ(two.size(), 5u + 2u);  // kfold: 4 folds and a fused job; lth: dense and one ticket
  std::set<int> ranks;
  for (const auto& [id, r] : two) {
    ASSERT_TRUE(one.count(id)) << r.name;
    EXPECT_EQ(r.status, JobStatus::done) << r.name << ": " << r.message;
    ranks.insert(r.rank);
    for (const char* metric : {"val_top1", "test_top1"})
      EXPECT_EQ(r.metrics.value(metric, nlohmann::json()), one.at(id).metrics.value(metric, nlohmann::json()))
          << r.name << " " << metric;
  }
  EXPECT_EQ(ranks, std::set<int>({0, 1}));
  std::map<std::string, int> by_entry;
  for (const auto& [id, row] : packtrain::testing::results_by_id(dir / "mpi/results.csv")) ++by_entry[row.at("entry")];
  EXPECT_EQ(by_entry["sweep"], 5);
  EXPECT_EQ(by_entry["tickets"], 2);
}

// --shard i/n: every job of every entry in exactly one shard.
TEST(BatchShards, ShardsCoverEveryJobOfEveryEntryExactlyOnce) {
  TempDir dir;
  const auto plan = dir / "plan.toml";
  write_file(plan, kPlan);
  std::map<std::string, int> seen;
  for (int i = 0; i < 2; ++i) {
    const auto out = dir / ("shard" + std::to_string(i));
    const auto r = run_command(batch(plan, out, {"--shard", std::to_string(i) + "/2", "--cores", "1"}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const auto& [id, rec] : journal_by_id(out)) {
      EXPECT_EQ(rec.status, JobStatus::done) << rec.name;
      ++seen[id];
    }
  }
  const auto full = run_command(batch(plan, dir / "full", {"--cores", "2"}));
  ASSERT_EQ(full.exit_code, 0) << full.err;
  const auto all = journal_by_id(dir / "full");
  ASSERT_EQ(seen.size(), all.size());
  for (const auto& [id, n] : seen) {
    EXPECT_EQ(n, 1) << id;
    EXPECT_TRUE(all.count(id)) << id;
  }
}

// best:ENTRY needs every job's result in one process: refused under mpirun
// and with --shard, one line, nothing started.
TEST(BatchMpi, BestEntryUnderMpirunOrShardsIsRefused) {
  TempDir dir;
  const auto plan = dir / "plan.toml";
  write_file(plan, std::string(kPlan) + "\n[[hogwild]]\nname = \"h\"\nmodel = \"best:sweep\"\n");
  const auto mpi = run_command(under_mpirun(batch(plan, dir / "mpi", {"--cores", "1"})));
  EXPECT_EQ(mpi.exit_code, 2) << mpi.err;
  EXPECT_NE(mpi.err.find("not with --shard or under mpirun"), std::string::npos) << mpi.err;
  const auto shard = run_command(batch(plan, dir / "shard", {"--shard", "0/2"}));
  EXPECT_EQ(shard.exit_code, 2) << shard.err;
  EXPECT_TRUE(packtrain::testing::one_line(shard.err)) << shard.err;
  EXPECT_NE(shard.err.find(plan.string() + ":19:"), std::string::npos) << shard.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "shard"));
  EXPECT_FALSE(std::filesystem::exists(dir / "mpi"));
}
