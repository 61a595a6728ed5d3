// Work sharing over real MPI: mpirun starts 1 to 4 ranks of mpi_driver
// (oversubscribed on this 2-core machine) and the tests read what they left.
#include <packtrain/scheduler/journal.hpp>

#include "common/test_util.hpp"

#include <gtest/gtest.h>

#include <map>
#include <sstream>

using namespace packtrain;
using packtrain::testing::read_file;
using packtrain::testing::run_command;
using packtrain::testing::TempDir;

namespace {

constexpr int kJobs = 32 + 1 + 4;  // work, producer, consumers

struct MpiRun {
  int ranks = 0;
  std::map<std::string, int> times_ran;   // job id -> how many times it ran, over all ranks
  std::vector<nlohmann::json> summaries;  // per rank
  std::vector<JobRecord> journal;         // rank 0's
  std::string output;
};

MpiRun run_driver(const TempDir& dir, int ranks, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {PACKTRAIN_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-np",
                                   std::to_string(ranks), PACKTRAIN_MPI_DRIVER, "--out", dir.path().string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const auto r = run_command(argv);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  MpiRun run;
  run.ranks = ranks;
  run.output = r.out + r.err;
  for (int k = 0; k < ranks; ++k) {
    const auto root = dir / ("rank-" + std::to_string(k));
    std::istringstream ran(read_file(root / "ran.txt"));
    for (std::string id; std::getline(ran, id);) ++run.times_ran[id];
    run.summaries.push_back(nlohmann::json::parse(read_file(root / "summary.json")));
  }
  run.journal = Journal::open(dir / "journal.sqlite")->records();
  return run;
}

// What a job computed, without where it ran.
std::map<std::string, nlohmann::json> results_of(const MpiRun& run) {
  std::map<std::string, nlohmann::json> out;
  for (const auto& r : run.journal) {
    auto m = r.metrics;
    m.erase("ran_on");
    out[r.id] = m;
  }
  return out;
}

}  // namespace

class MpiRanks : public ::testing::TestWithParam<int> {};

TEST_P(MpiRanks, EveryJobRunsExactlyOnceAndResultsEqualASingleProcessRun) {
  TempDir single_dir, dir;
  const auto single = run_driver(single_dir, 1);
  const auto run = run_driver(dir, GetParam());
  ASSERT_EQ(run.times_ran.size(), static_cast<std::size_t>(kJobs)) << run.output;
  for (const auto& [id, n] : run.times_ran) EXPECT_EQ(n, 1) << "job " << id << " ran " << n << " times";
  // Rank 0's journal has every job, done, with the rank that ran it.
  ASSERT_EQ(run.journal.size(), static_cast<std::size_t>(kJobs));
  std::set<int> ranks_used;
  for (const auto& r : run.journal) {
    EXPECT_EQ(r.status, JobStatus::done) << r.name << ": " << r.message;
    EXPECT_EQ(r.rank, r.metrics["ran_on"].get<int>()) << r.name;
    ranks_used.insert(r.rank);
  }
  EXPECT_EQ(static_cast<int>(ranks_used.size()), GetParam());
  // Every rank learned every job's end.
  for (const auto& s : run.summaries) EXPECT_EQ(s["done"], kJobs) << s.dump();
  EXPECT_EQ(results_of(run), results_of(single));
}

INSTANTIATE_TEST_SUITE_P(Mpi, MpiRanks, ::testing::Values(2, 3, 4));

TEST(Mpi, DependentsOnOtherRanksGetTheProducersFileOverMpi) {
  TempDir dir;
  const auto run = run_driver(dir, 3, {"--consumers-elsewhere"});
  int producer_rank = -1;
  for (const auto& r : run.journal)
    if (r.name == "producer") {
      producer_rank = r.rank;
      EXPECT_EQ(r.artifacts, std::vector<std::string>{"artifacts/producer/payload.txt"});
    }
  ASSERT_GE(producer_rank, 0);
  int elsewhere = 0;
  for (const auto& r : run.journal) {
    if (r.name.rfind("consumer", 0) != 0) continue;
    ASSERT_EQ(r.status, JobStatus::done) << r.message;
    EXPECT_EQ(r.metrics["payload"], "payload-from-rank-" + std::to_string(producer_rank));
    EXPECT_EQ(r.rank, 1 + r.spec["consumer"].get<int>() % 2) << r.name << " ran off the rank it was pinned to";
    elsewhere += r.rank != producer_rank;
  }
  // Two consumers are pinned to each of ranks 1 and 2; the producer ran on one rank.
  EXPECT_GE(elsewhere, 2) << "fewer than two consumers ran on another rank than the producer";
}

TEST(Mpi, ARankGivenEveryJobIsRelievedByStealing) {
  TempDir dir;
  const auto run = run_driver(dir, 2, {"--skew"});
  const auto& rank1 = run.summaries[1];
  EXPECT_GT(rank1["steals"].get<int>(), 0) << run.output;
  EXPECT_GT(rank1["jobs_received"].get<int>(), 0);
  EXPECT_EQ(run.summaries[0]["jobs_given"], rank1["jobs_received"]);
  int on_rank1 = 0;
  for (const auto& r : run.journal) on_rank1 += r.rank == 1;
  EXPECT_GT(on_rank1, 0);
  for (const auto& [id, n] : run.times_ran) EXPECT_EQ(n, 1) << id;
}

TEST(Mpi, AJobFileThatCannotBeSentStopsEveryRankWithOneLine) {
  TempDir dir;
  const auto r = run_command({PACKTRAIN_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-np", "2",
                              PACKTRAIN_MPI_DRIVER, "--out", dir.path().string(), "--lose-a-file"});
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  const auto output = r.out + r.err;
  EXPECT_NE(output.find("): its file artifacts/producer/never-written.txt is missing"), std::string::npos) << output;
  EXPECT_NE(output.find("aborting every rank"), std::string::npos) << output;
}
