// packtrain train under mpirun: one job trained by every rank at once (a
// gang), as users run it, against one process.
#include <packtrain/scheduler/journal.hpp>

#include "../data/idx_files.hpp"
#include "common/cli_run.hpp"
#include "packtrain_paths.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace packtrain;
using packtrain::testing::journal_by_id;
using packtrain::testing::run_command;
using packtrain::testing::TempDir;
namespace pt = packtrain::testing;

namespace {

// `packtrain train` on a small IDX dataset: 1024 training samples.
std::vector<std::string> train(const TempDir& dir, const std::string& out, std::vector<std::string> extra) {
  if (!std::filesystem::exists(dir / "data")) pt::write_idx_folder(dir / "data", 1024, 128, 28, 28, 10);
  return pt::packtrain_argv({"train", "--model", "lenet5", "--data", (dir / "data").string(), "--out", (dir / out).string()},
                            extra);
}

std::vector<std::string> mpirun(int ranks, const std::vector<std::string>& inner, std::vector<std::string> options = {}) {
  std::vector<std::string> argv = {PACKTRAIN_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none"};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.insert(argv.end(), {"-np", std::to_string(ranks)});
  argv.insert(argv.end(), inner.begin(), inner.end());
  return argv;
}

// The one job's record (rank 0's journal).
JobRecord the_job(const std::filesystem::path& out) {
  const auto records = journal_by_id(out);
  EXPECT_EQ(records.size(), 1u) << out;
  return records.empty() ? JobRecord{} : records.begin()->second;
}

// `train FLAGS --cores 1` in one process: what a gang must match.
pt::CommandResult one_process(const TempDir& dir, const std::string& out, std::vector<std::string> flags) {
  flags.insert(flags.end(), {"--cores", "1"});
  return run_command(train(dir, out, flags));
}

// Every epoch's `keys` of two runs' one job, to the last bit (JSON keeps doubles exactly).
void expect_same_epochs(const JobRecord& a, const JobRecord& b, std::initializer_list<const char*> keys) {
  ASSERT_EQ(a.metrics["per_epoch"].size(), b.metrics["per_epoch"].size());
  for (std::size_t e = 0; e < a.metrics["per_epoch"].size(); ++e)
    for (const char* key : keys)
      EXPECT_EQ(a.metrics["per_epoch"][e][key], b.metrics["per_epoch"][e][key]) << key << " epoch " << e + 1;
}

}  // namespace

// Batch 64 of micro-batches of 16: 4 a step, 2 per rank, each rank's block a
// whole subtree of the one-process tree: the same bits as one process.
TEST(TrainMpi, TwoRanksGiveOneProcesssBitsWhenEachRanksBlockIsASubtree) {
  TempDir dir;
  const std::vector<std::string> flags = {"--epochs", "2", "--batch-size", "64", "--micro-batch", "16"};
  const auto one = one_process(dir, "one", flags);
  ASSERT_EQ(one.exit_code, 0) << one.out << one.err;
  const auto two = run_command(mpirun(2, train(dir, "two", flags)));
  ASSERT_EQ(two.exit_code, 0) << two.out << two.err;
  EXPECT_NE(two.out.find("on each of 2 ranks"), std::string::npos) << two.out;
  // The flags' and weights' checks before the run, the trainer's start, 2 epochs of 16
  // steps (one bucket of lenet5's 240 KiB and a header each) and an
  // evaluation each, the end.
  EXPECT_NE(two.out.find("2 ranks, 70 exchanges of"), std::string::npos) << two.out;

  const auto a = the_job(dir / "one");
  const auto b = the_job(dir / "two");
  EXPECT_EQ(b.status, JobStatus::done) << b.message;
  EXPECT_EQ(a.id, b.id) << "the ranks are not part of the job's identity";
  ASSERT_EQ(a.metrics["per_epoch"].size(), 2u);
  expect_same_epochs(a, b, {"train_loss", "val_loss", "val_top1", "lr"});
  EXPECT_EQ(b.metrics["ranks"], 2);
  // One record, rank 0's; the other rank keeps no journal of its own.
  EXPECT_FALSE(std::filesystem::exists(dir / "two/ranks/rank-1/journal.sqlite"));
  EXPECT_TRUE(std::filesystem::exists(dir / "two/results.csv"));
}

// A TorchScript file's gang (its default --parallelism is threads; under
// mpirun the ranks train replicas without being asked): the bits of one
// process training replicas of it.
TEST(TrainMpi, ATorchScriptModelsGangGivesOneProcesssBits) {
  TempDir dir;
  const std::string file = std::string(PACKTRAIN_TORCHSCRIPT_FIXTURES) + "/lenet5_bn.pt";
  const auto of_file = [&](std::vector<std::string> argv) {  // train()'s argv, the file for lenet5
    std::replace(argv.begin(), argv.end(), std::string("lenet5"), file);
    return argv;
  };
  const std::vector<std::string> flags = {"--epochs", "2", "--micro-batch", "16"};
  auto alone = flags;
  alone.insert(alone.end(), {"--parallelism", "replicas", "--cores", "1"});
  const auto one = run_command(of_file(train(dir, "one", alone)));
  ASSERT_EQ(one.exit_code, 0) << one.out << one.err;
  const auto two = run_command(mpirun(2, of_file(train(dir, "two", flags))));
  ASSERT_EQ(two.exit_code, 0) << two.out << two.err;
  const auto a = the_job(dir / "one");
  const auto b = the_job(dir / "two");
  EXPECT_EQ(b.status, JobStatus::done) << b.message;
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(b.spec["model"], "lenet5_bn");
  expect_same_epochs(a, b, {"train_loss", "val_loss", "val_top1", "lr"});
}

// Horovod's timeline: rank 0's trace.json has, for every rank, a compute
// and an allreduce track with one slice per optimizer step; a rank's
// exchange starts within its compute and ends after it, and the ranks'
// exchanges of a step end together. steps.csv keeps them for `packtrain report`.
TEST(TrainMpi, TheTraceShowsEveryRanksComputeAndAllreducePerStep) {
  TempDir dir;
  const auto run = run_command(mpirun(2, train(dir, "two", {"--epochs", "1", "--batch-size", "128"})));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const auto trace = pt::read_json_file(dir / "two/trace.json");
  ASSERT_TRUE(trace.is_object());
  std::map<std::pair<int, std::string>, std::map<long long, nlohmann::json>> slices;  // (rank, track) -> step -> slice
  for (const auto& e : trace["traceEvents"])
    if (e["ph"] == "X" && e["cat"] == "step")
      slices[{e["pid"].get<int>(), e["name"].get<std::string>()}][e["args"]["step"].get<long long>()] = e;
  const auto end_of = [](const nlohmann::json& s) { return s["ts"].get<long long>() + s["dur"].get<long long>(); };
  for (int rank = 0; rank < 2; ++rank) {
    const auto& compute = slices[{rank, "compute"}];
    const auto& allreduce = slices[{rank, "allreduce"}];
    ASSERT_EQ(compute.size(), 8u) << "1024 samples in steps of 128, rank " << rank;
    ASSERT_EQ(allreduce.size(), 8u);
    long long previous_end = 0;
    for (long long step = 1; step <= 8; ++step) {
      const auto& c = compute.at(step);
      const auto& a = allreduce.at(step);
      EXPECT_GE(c["ts"].get<long long>(), previous_end - 1) << "rank " << rank << " step " << step;
      // The exchange starts during the compute (its buckets overlap backward) and ends after it.
      EXPECT_GE(a["ts"].get<long long>(), c["ts"].get<long long>() - 1) << "rank " << rank << " step " << step;
      EXPECT_GE(end_of(a), end_of(c) - 1) << "rank " << rank << " step " << step;
      EXPECT_EQ(end_of(a), end_of(slices[{0, "allreduce"}].at(step)));
      previous_end = end_of(a);
    }
  }
  const auto csv = pt::read_file(dir / "two/steps.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 16) << csv;
}

// Gradient buckets of 10 KiB (lenet5 in 3: fc3 and fc2, fc1, the
// convolutions) exchanged while backward goes
// on, or after it: neither changes a bit of one process's numbers. With
// overlap each rank's first bucket starts before its compute ends, every
// step; without, after.
TEST(TrainMpi, BucketsAndOverlapKeepOneProcesssBitsAndOverlapStartsTheExchangeDuringBackward) {
  TempDir dir;
  const std::vector<std::string> flags = {"--epochs", "1", "--batch-size", "64", "--micro-batch", "16"};
  const auto one = one_process(dir, "one", flags);
  ASSERT_EQ(one.exit_code, 0) << one.out << one.err;
  for (const std::string overlap : {"on", "off"}) {
    SCOPED_TRACE("--overlap " + overlap);
    auto gang_flags = flags;
    gang_flags.insert(gang_flags.end(), {"--bucket-cap-mb", "0.01", "--overlap", overlap});
    const auto two = run_command(mpirun(2, train(dir, overlap, gang_flags)));
    ASSERT_EQ(two.exit_code, 0) << two.out << two.err;
    // The flags' and weights' checks, the start, 16 steps of 3 buckets and a header, the evaluation, the end.
    EXPECT_NE(two.out.find("2 ranks, 69 exchanges of"), std::string::npos) << two.out;
    expect_same_epochs(the_job(dir / "one"), the_job(dir / overlap), {"train_loss", "val_loss", "val_top1", "lr"});
    std::istringstream csv(pt::read_file(dir / overlap / "steps.csv"));
    std::string line;
    std::getline(csv, line);  // the header
    int rows = 0;
    while (std::getline(csv, line)) {
      std::vector<std::string> cells;
      std::stringstream cell(line);
      for (std::string c; std::getline(cell, c, ',');) cells.push_back(c);
      ASSERT_EQ(cells.size(), 8u) << line;
      const double compute_end = std::stod(cells[5]), sync_begin = std::stod(cells[6]);
      if (overlap == "on") {
        EXPECT_LT(sync_begin, compute_end) << line;
      } else {
        EXPECT_GE(sync_begin, compute_end) << line;
      }
      ++rows;
    }
    EXPECT_EQ(rows, 2 * 16);
  }
}

// Four ranks on this 2-core machine, sharing its cores (--oversubscribe):
// one micro-batch a rank, each a leaf of the one-process tree, so one
// process's bits again; the run counts 2 cores, not 4.
TEST(TrainMpi, FourRanksSharingTwoCoresGiveOneProcesssBits) {
  TempDir dir;
  const std::vector<std::string> flags = {"--epochs", "1", "--batch-size", "64", "--micro-batch", "16"};
  const auto one = one_process(dir, "one", flags);
  ASSERT_EQ(one.exit_code, 0) << one.out << one.err;
  auto gang_flags = flags;
  gang_flags.push_back("--oversubscribe");
  const auto four = run_command(mpirun(4, train(dir, "four", gang_flags)));
  ASSERT_EQ(four.exit_code, 0) << four.out << four.err;
  EXPECT_NE(four.out.find("on each of 4 ranks"), std::string::npos) << four.out;
  const auto a = the_job(dir / "one");
  const auto b = the_job(dir / "four");
  EXPECT_EQ(b.metrics["ranks"], 4);
  expect_same_epochs(a, b, {"train_loss", "val_loss", "val_top1", "lr"});
  const auto summary = pt::read_json_file(dir / "four/results.json")["summary"];
  EXPECT_EQ(summary["cores"], 2) << summary.dump();
}

// The large-batch options apply to the global batch: a gang with linear
// scaling and a warm-up epoch has one process's rates and bits.
TEST(TrainMpi, LinearScalingAndWarmUpFollowTheGlobalBatch) {
  TempDir dir;
  const std::vector<std::string> flags = {"--epochs", "2", "--batch-size", "128", "--micro-batch", "32",
                                          "--lr-scaling", "linear", "--warmup-epochs", "1"};
  const auto one = one_process(dir, "one", flags);
  ASSERT_EQ(one.exit_code, 0) << one.out << one.err;
  const auto two = run_command(mpirun(2, train(dir, "two", flags)));
  ASSERT_EQ(two.exit_code, 0) << two.out << two.err;
  const auto a = the_job(dir / "one");
  const auto b = the_job(dir / "two");
  ASSERT_EQ(b.metrics["per_epoch"].size(), 2u);
  expect_same_epochs(a, b, {"lr", "train_loss", "val_loss"});
}

// Batch 96 of micro-batches of 16: 6 a step, 3 per rank, so each rank's sum
// is not a subtree of the one-process tree: within float tolerance of one
// process after 22 steps, and the same bits on every run of 2 ranks.
TEST(TrainMpi, UnalignedBlocksStayWithinFloatToleranceAndRepeatTheirBits) {
  TempDir dir;
  const std::vector<std::string> flags = {"--epochs", "2", "--batch-size", "96", "--micro-batch", "16"};
  const auto one = one_process(dir, "one", flags);
  ASSERT_EQ(one.exit_code, 0) << one.out << one.err;
  const auto first = run_command(mpirun(2, train(dir, "first", flags)));
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  const auto again = run_command(mpirun(2, train(dir, "again", flags)));
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  const auto a = the_job(dir / "one");
  const auto b = the_job(dir / "first");
  const auto c = the_job(dir / "again");
  EXPECT_EQ(b.metrics["steps"], 22);
  for (std::size_t e = 0; e < 2; ++e) {
    for (const char* key : {"train_loss", "val_loss"}) {
      const double x = a.metrics["per_epoch"][e][key], y = b.metrics["per_epoch"][e][key];
      EXPECT_LE(std::abs(x - y), 1e-5 * std::abs(x)) << key << " epoch " << e + 1 << ": " << x << " vs " << y;
      EXPECT_EQ(b.metrics["per_epoch"][e][key], c.metrics["per_epoch"][e][key]) << key << " epoch " << e + 1;
    }
  }
}

TEST(TrainMpi, BadRequestsAreOneLineOnEveryRankAndExit2) {
  TempDir dir;
  const auto lines = [](const std::string& err, const std::string& text) {
    std::size_t n = 0;
    for (auto at = err.find(text); at != std::string::npos; at = err.find(text, at + 1)) ++n;
    return n;
  };
  const auto refused = [&](const std::string& out, const std::vector<std::string>& flags, const std::string& line) {
    const auto plain = run_command(mpirun(2, train(dir, out, flags)));
    EXPECT_EQ(plain.exit_code, 2) << plain.out << plain.err;
    EXPECT_GE(lines(plain.err, line), 1u) << plain.err;
    // Every rank says it (mpirun may kill one before it prints, unless told not to).
    const auto both = run_command(mpirun(2, train(dir, out, flags), {"--mca", "orte_abort_on_non_zero_status", "0"}));
    EXPECT_EQ(lines(both.err, line), 2u) << "one line on every rank: " << both.err;
  };
  refused("few", {"--batch-size", "32", "--micro-batch", "32"},
          "packtrain train: error: --batch-size 32 is 1 micro-batch(es) of 32, fewer than the 2 ranks");
  refused("threads", {"--parallelism", "threads"}, "packtrain train: error: under mpirun the ranks train the model together");
  refused("world", {"--ranks-per-job", "3"},
          "packtrain train: error: --ranks-per-job 3: train runs one job, on every rank of the run (2)");
  // Ranks started with different flags: rank 0 with `a`, rank 1 with `b`.
  const auto mixed = [&](const std::vector<std::string>& a, const std::vector<std::string>& b,
                         std::vector<std::string> options) {
    auto argv = mpirun(1, train(dir, "mixed", a), std::move(options));
    argv.insert(argv.end(), {":", "-np", "1"});
    const auto second = train(dir, "mixed", b);
    argv.insert(argv.end(), second.begin(), second.end());
    return run_command(argv);
  };
  const auto refused_mixed = [&](const std::vector<std::string>& a, const std::vector<std::string>& b,
                                 const std::string& line) {
    const auto plain = mixed(a, b, {});
    EXPECT_EQ(plain.exit_code, 2) << plain.out << plain.err;
    EXPECT_GE(lines(plain.err, line), 1u) << plain.err;
    EXPECT_EQ(lines(mixed(a, b, {"--mca", "orte_abort_on_non_zero_status", "0"}).err, line), 2u);
    EXPECT_FALSE(std::filesystem::exists(dir / "mixed"));
  };
  // Other seeds would train different models; other epochs are another job.
  refused_mixed({"--seed", "1"}, {"--seed", "2"}, "packtrain train: error: rank 1 starts from other weights than rank 0");
  refused_mixed({"--epochs", "2"}, {"--epochs", "3"},
                "packtrain train: error: rank 1 was started with other flags than rank 0");
  EXPECT_FALSE(std::filesystem::exists(dir / "few"));
  EXPECT_FALSE(std::filesystem::exists(dir / "threads"));
  EXPECT_FALSE(std::filesystem::exists(dir / "world"));
}

// A rank killed mid-job: every rank ends within 10 s, rank 0's journal
// still opens, and --resume finishes with the numbers of a run never killed.
TEST(TrainMpi, AKilledRankEndsEveryRankBadCheckpointsFailEveryRankAndResumeFinishes) {
  TempDir dir;
  const std::vector<std::string> flags = {"--epochs", "6", "--batch-size", "64", "--micro-batch", "16",
                                          "--checkpoint-every", "1"};
  const auto one = one_process(dir, "one", flags);
  ASSERT_EQ(one.exit_code, 0) << one.out << one.err;

  // Rank 1 is killed once its first epoch's checkpoint is written.
  const auto marker = dir / "killed/ranks/rank-1/checkpoints/epoch-0001.pt";
  const auto argv = mpirun(2, train(dir, "killed", flags));
  std::string command;
  for (const auto& a : argv) command += "'" + a + "' ";
  const std::string script = command + "> " + (dir / "out.txt").string() + " 2>&1 & mpi=$!; " +
                             "while [ ! -e '" + marker.string() + "' ]; do kill -0 $mpi 2>/dev/null || break; sleep 0.05; done; " +
                             "rank=$(grep -l 'OMPI_COMM_WORLD_RANK=1' /proc/[0-9]*/environ 2>/dev/null | " +
                             "while read f; do p=${f#/proc/}; p=${p%/environ}; " +
                             "tr '\\0' ' ' < /proc/$p/cmdline | grep -q '" + (dir / "killed").string() + "' && echo $p; done | head -1); " +
                             "start=$(date +%s%N); kill -9 $rank; wait $mpi; code=$?; end=$(date +%s%N); " +
                             "echo \"$code $(( (end - start) / 1000000 ))\"";
  const auto killed = run_command({"/bin/sh", "-c", script});
  ASSERT_EQ(killed.exit_code, 0) << killed.err;
  int code = 0;
  long long ms = 0;
  ASSERT_EQ(std::sscanf(killed.out.c_str(), "%d %lld", &code, &ms), 2) << killed.out << pt::read_file(dir / "out.txt");
  EXPECT_NE(code, 0) << pt::read_file(dir / "out.txt");
  EXPECT_LT(ms, 10000) << "every rank ended within 10 s of the kill";
  const auto interrupted = journal_by_id(dir / "killed");  // opens and reads: intact
  ASSERT_EQ(interrupted.size(), 1u);
  EXPECT_NE(interrupted.begin()->second.status, JobStatus::done);

  auto resume_flags = flags;
  resume_flags.push_back("--resume");

  // A copy whose rank 1 cannot read its checkpoint: refused on every rank
  // with rank 1's message before the run opens (no rank waits), exit 2,
  // the journal as it was.
  std::filesystem::copy(dir / "killed", dir / "damaged", std::filesystem::copy_options::recursive);
  for (const auto& entry : std::filesystem::directory_iterator(dir / "damaged/ranks/rank-1/checkpoints"))
    std::filesystem::resize_file(entry.path(), 100);
  const auto journal_before = pt::read_file(dir / "damaged/journal.sqlite");
  const auto damaged = run_command(mpirun(2, train(dir, "damaged", resume_flags)));
  EXPECT_EQ(damaged.exit_code, 2) << damaged.out << damaged.err;
  EXPECT_NE(damaged.err.find("packtrain train: error: rank 1: "), std::string::npos) << damaged.err;
  EXPECT_EQ(pt::read_file(dir / "damaged/journal.sqlite"), journal_before);

  // A copy whose rank 1 holds another run's checkpoints (another --seed):
  // they load, but the ranks would train different models; the weight
  // check refuses the run on every rank, naming the rank: exit 2.
  auto other_flags = flags;
  other_flags.insert(other_flags.end(), {"--seed", "7"});
  ASSERT_EQ(one_process(dir, "other", other_flags).exit_code, 0);
  std::filesystem::copy(dir / "killed", dir / "foreign", std::filesystem::copy_options::recursive);
  for (const auto& entry : std::filesystem::directory_iterator(dir / "foreign/ranks/rank-1/checkpoints"))
    std::filesystem::copy_file(dir / "other/checkpoints" / entry.path().filename(), entry.path(),
                               std::filesystem::copy_options::overwrite_existing);
  const auto foreign = run_command(mpirun(2, train(dir, "foreign", resume_flags)));
  EXPECT_EQ(foreign.exit_code, 2) << foreign.out << foreign.err;
  EXPECT_NE(foreign.err.find("packtrain train: error: rank 1 starts from other weights than rank 0"), std::string::npos)
      << foreign.err;
  EXPECT_NE(the_job(dir / "foreign").status, JobStatus::done);

  const auto resumed = run_command(mpirun(2, train(dir, "killed", resume_flags)));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  const auto a = the_job(dir / "one");
  const auto b = the_job(dir / "killed");
  EXPECT_EQ(b.status, JobStatus::done) << b.message;
  EXPECT_EQ(a.metrics["val_loss"], b.metrics["val_loss"]);
  EXPECT_EQ(a.metrics["val_top1"], b.metrics["val_top1"]);
}
