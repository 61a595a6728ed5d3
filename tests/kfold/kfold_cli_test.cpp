// packtrain kfold, run as a user runs it: a real process, real data, real files.
#include <packtrain/scheduler/journal.hpp>

#include "common/cli_run.hpp"
#include "packtrain_paths.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <thread>

using namespace packtrain;
using packtrain::testing::read_file;
using packtrain::testing::run_command;
using packtrain::testing::TempDir;

namespace {

// A small sweep: 2 models x 2 schedules x 2 folds on 2,000 samples, 1 epoch.
std::vector<std::string> small_sweep(const std::filesystem::path& out, const std::vector<std::string>& extra = {}) {
  return packtrain::testing::packtrain_argv(
      {"kfold", "--models", "mlp,lenet5", "--schedules", "cosine,warm", "--folds", "2", "--epochs", "1",
       "--limit", "2000", "--out", out.string(), "--quiet"},
      extra);
}

void expect_same_numbers(const std::filesystem::path& a, const std::filesystem::path& b) {
  const auto ra = packtrain::testing::results_by_id(a), rb = packtrain::testing::results_by_id(b);
  ASSERT_EQ(ra.size(), rb.size());
  for (const auto& [id, row] : ra) {
    ASSERT_TRUE(rb.count(id)) << "job " << id << " missing";
    for (const char* col : {"status", "model", "schedule", "fold", "val_top1", "val_top5", "val_loss"})
      EXPECT_EQ(row.at(col), rb.at(id).at(col)) << "job " << id << " column " << col;
  }
}

}  // namespace

TEST(KFoldCli, PackedAndSerialGiveTheSameNumbers) {
  TempDir dir;
  // Unfused (fused folds give their numbers within float rounding: KFoldFuse).
  const auto packed = run_command(small_sweep(dir / "packed", {"--fuse", "off"}));
  ASSERT_EQ(packed.exit_code, 0) << packed.err;
  const auto serial = run_command(small_sweep(dir / "serial", {"--serial"}));
  ASSERT_EQ(serial.exit_code, 0) << serial.err;
  const auto rows = packtrain::testing::results_by_id(dir / "packed/results.csv");
  ASSERT_EQ(rows.size(), 8u);
  std::set<std::string> cores_used;
  for (const auto& [id, row] : rows) {
    EXPECT_EQ(row.at("status"), "done");
    EXPECT_EQ(row.at("cores"), "1");
  }
  expect_same_numbers(dir / "packed/results.csv", dir / "serial/results.csv");
  // The summary table names every (model, schedule) and marks one best.
  EXPECT_NE(packed.out.find("lenet5       warm"), std::string::npos) << packed.out;
  EXPECT_NE(packed.out.find("<- best"), std::string::npos) << packed.out;
  EXPECT_NE(packed.out.find("makespan"), std::string::npos) << packed.out;
  // results.json has the same rows and the summary's groups.
  const auto json = nlohmann::json::parse(read_file(dir / "packed/results.json"));
  EXPECT_EQ(json["jobs"].size(), 8u);
  EXPECT_EQ(json["summary"]["groups"].size(), 4u);
  EXPECT_EQ(json["summary"]["done"], 8);
}

TEST(KFoldCli, ResumeAfterSigkillRunsOnlyTheMissingJobsAndMatchesAnUninterruptedRun) {
  TempDir dir;
  // 2 cores and 1 group lenet5's folds alike, in pairs; the resume below
  // (every core) keeps the killed run's grouping, whatever the machine.
  const auto full = run_command(small_sweep(dir / "full", {"--cores", "2"}));
  ASSERT_EQ(full.exit_code, 0) << full.err;

  const auto out = dir / "killed";
  const int pid = packtrain::testing::start_command(small_sweep(out, {"--cores", "1"}), dir / "killed.log");
  std::map<std::string, double> started_before;  // done before the kill: id -> started_at
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!std::filesystem::exists(out / "journal.sqlite")) continue;
    started_before.clear();
    try {
      auto journal = Journal::open(out / "journal.sqlite");
      for (const auto& r : journal->records())
        if (r.status == JobStatus::done) started_before[r.id] = r.started_at;
    } catch (const std::exception&) {
      continue;
    }
    if (started_before.size() >= 2) break;
  }
  kill(pid, SIGKILL);
  const auto killed = packtrain::testing::wait_command(pid);
  ASSERT_EQ(killed.signal, SIGKILL);
  ASSERT_GE(started_before.size(), 2u);
  ASSERT_LT(started_before.size(), 8u) << "the sweep finished before it could be killed";
  EXPECT_FALSE(std::filesystem::exists(out / "results.csv"));

  const auto resumed = run_command(small_sweep(out, {"--resume"}));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  auto journal = Journal::open(out / "journal.sqlite");
  int done = 0;
  for (const auto& r : journal->records()) {
    done += r.status == JobStatus::done;
    if (started_before.count(r.id)) {
      // Finished before the kill: not run again.
      EXPECT_EQ(r.started_at, started_before[r.id]) << r.name;
      EXPECT_EQ(r.attempts, 1) << r.name;
    }
  }
  // 8 folds and the 2 fused jobs of lenet5's folds (a pair a schedule): resume goes on with fused jobs too.
  EXPECT_EQ(done, 10);
  int fused = 0;
  for (const auto& [id, r] : packtrain::testing::journal_by_id(out)) fused += r.name.find("/fused") != std::string::npos;
  EXPECT_EQ(fused, 2);
  expect_same_numbers(dir / "full/results.csv", out / "results.csv");
}

// Replicas: a job's numbers do not depend on its cores. Jobs of one core
// that grow onto idle ones (--max-cores-per-job) and jobs of two cores give
// the same bits; the lenet5 jobs ran replicas (the results say so).
TEST(KFoldCli, ReplicaJobsGiveTheSameNumbersOnOneCoreGrowingAndOnTwo) {
  TempDir dir;
  const std::vector<std::string> sweep = {PACKTRAIN_CLI, "kfold",  "--models", "lenet5", "--schedules", "cosine",
                                          "--folds",     "2",      "--epochs", "1",      "--limit",     "1200",
                                          "--micro-batch", "16", "--quiet"};
  auto growing = sweep, two = sweep;
  growing.insert(growing.end(), {"--cores-per-job", "1", "--max-cores-per-job", "2", "--out", (dir / "growing").string()});
  two.insert(two.end(), {"--cores-per-job", "2", "--out", (dir / "two").string()});
  const auto a = run_command(growing);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const auto b = run_command(two);
  ASSERT_EQ(b.exit_code, 0) << b.err;
  expect_same_numbers(dir / "growing/results.csv", dir / "two/results.csv");
  for (const auto& [id, r] : packtrain::testing::journal_by_id(dir / "two")) {
    EXPECT_EQ(r.status, JobStatus::done) << r.name;
    EXPECT_EQ(r.spec.value("micro_batch", 0), 16) << r.name << " trained replicas";
    EXPECT_EQ(r.metrics.value("peak_replicas", 0), 2) << r.name;
    EXPECT_EQ(r.cores.size(), 2u) << r.name;
  }
}

TEST(KFoldCli, BadInputIsOneLineExit2AndLeavesAnEarlierRunAlone) {
  TempDir dir;
  const auto first = run_command({PACKTRAIN_CLI, "kfold", "--models", "mlp", "--schedules", "none", "--folds", "2",
                                  "--epochs", "1", "--limit", "300", "--out", (dir / "run").string(), "--quiet"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const auto journal_before = read_file(dir / "run/journal.sqlite");
  const auto csv_before = read_file(dir / "run/results.csv");

  const std::vector<std::vector<std::string>> bad = {
      {"--out", (dir / "run").string()},                             // a finished run, no --resume
      {"--out", (dir / "new").string(), "--cores", "0"},
      {"--out", (dir / "new").string(), "--cores", "999"},
      {"--out", (dir / "new").string(), "--models", "mlp,nosuchnet"},
      {"--out", (dir / "new").string(), "--schedules", "sometimes"},
      {"--out", (dir / "new").string(), "--folds", "1"},
      {"--out", (dir / "new").string(), "--epochs", "0"},
      {"--out", (dir / "new").string(), "--data", (dir / "missing").string()},
      {"--out", (dir / "new").string(), "--optimizer", "lbfgs"},
      {"--out", (dir / "new").string(), "--no-such-flag"},
      {"--out", (dir / "run/results.csv").string()},                 // a file, not a folder
      {},                                                            // no --out
      {"--out", (dir / "new").string(), "--cores-per-job", "2", "--micro-batch", "48"},
      {"--out", (dir / "new").string(), "--micro-batch", "16"},      // one-core jobs: no replicas
      {"--out", (dir / "new").string(), "--cores-per-job", "2", "--max-cores-per-job", "1"},
      {"--out", (dir / "new").string(), "--max-cores-per-job", "999"},
      {"--out", (dir / "new").string(), "--parallelism", "pipelines"},
      {"--out", (dir / "new").string(), "--oversubscribe"},          // without mpirun
      {"--out", (dir / "new").string(), "--ranks-per-job", "2"},     // without mpirun
      {"--out", (dir / "new").string(), "--memory-per-job", "999999999"},
      {"--out", (dir / "new").string(), "--memory-per-job", "-1"},
      {"--out", (dir / "new").string(), "--fuse", "always"},
  };
  for (const auto& args : bad) {
    std::vector<std::string> argv = {PACKTRAIN_CLI, "kfold"};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = run_command(argv);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(r.exit_code, 2) << joined << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << joined << r.err;
    EXPECT_EQ(r.err.rfind("packtrain kfold: error: ", 0), 0u) << joined << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "new"));
  EXPECT_EQ(read_file(dir / "run/journal.sqlite"), journal_before);
  EXPECT_EQ(read_file(dir / "run/results.csv"), csv_before);
}

TEST(KFoldCli, HelpDescribesEveryOption) {
  const auto r = run_command({PACKTRAIN_CLI, "kfold", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"--models", "--schedules", "--folds", "--epochs", "--serial", "--resume", "--cores",
                           "--seed", "--config", "--quiet", "--data", "--out", "--batch-size", "--optimizer", "--lr",
                           "--serve", "--cores-per-job", "--max-cores-per-job", "--micro-batch", "--parallelism",
                           "--oversubscribe", "--ranks-per-job", "--memory-per-job", "--fuse"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
}

TEST(KFoldCli, ConfigFileGivesTheSameOptions) {
  TempDir dir;
  packtrain::testing::write_file(dir / "sweep.conf", "models = mlp\nschedules = step\nfolds = 2\nepochs = 1\nlimit = 300\n");
  const auto r = run_command({PACKTRAIN_CLI, "kfold", "--config", (dir / "sweep.conf").string(), "--out",
                              (dir / "run").string(), "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = packtrain::testing::results_by_id(dir / "run/results.csv");
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& [id, row] : rows) {
    EXPECT_EQ(row.at("model"), "mlp");
    EXPECT_EQ(row.at("schedule"), "step");
  }
}

TEST(KFoldCli, CtrlCRecordsWhatFinishedExits130AndResumeFinishes) {
  TempDir dir;
  const auto out = dir / "run";
  const int pid = packtrain::testing::start_command(small_sweep(out, {"--cores", "1"}), dir / "run.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  int done = 0;
  while (std::chrono::steady_clock::now() < deadline && done < 1) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!std::filesystem::exists(out / "journal.sqlite")) continue;
    try {
      done = 0;
      for (const auto& r : Journal::open(out / "journal.sqlite")->records()) done += r.status == JobStatus::done;
    } catch (const std::exception&) {
    }
  }
  ASSERT_GE(done, 1);
  kill(pid, SIGINT);
  const auto interrupted = packtrain::testing::wait_command(pid);
  EXPECT_EQ(interrupted.exit_code, 130) << read_file(dir / "run.log");
  // It says what happens: running jobs stop now, recorded cancelled.
  EXPECT_NE(read_file(dir / "run.log").find("stopping the running jobs (recorded as cancelled"), std::string::npos)
      << read_file(dir / "run.log");
  int done_after = 0, running = 0;
  for (const auto& r : Journal::open(out / "journal.sqlite")->records()) {
    done_after += r.status == JobStatus::done;
    running += r.status == JobStatus::running;
  }
  EXPECT_GE(done_after, done);
  EXPECT_LT(done_after, 10);  // 8 folds and lenet5's 2 fused jobs
  EXPECT_EQ(running, 0);  // the running job stopped at a checkpoint and was recorded
  const auto resumed = run_command(small_sweep(out, {"--resume"}));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(packtrain::testing::results_by_id(out / "results.csv").size(), 10u);
  // attempts.csv numbers a job's attempts on across runs: a cancelled
  // attempt 1 is followed by attempt 2, never a second attempt 1.
  std::map<std::string, std::set<std::string>> attempts;  // job -> attempt numbers
  int cancelled = 0;
  std::istringstream rows(read_file(out / "attempts.csv"));
  std::string row;
  std::getline(rows, row);  // header
  while (std::getline(rows, row)) {
    std::stringstream cells(row);
    std::string job, attempt, status;
    std::getline(cells, job, ',');
    std::getline(cells, attempt, ',');
    std::getline(cells, status, ',');
    EXPECT_TRUE(attempts[job].insert(attempt).second) << "job " << job << " has two attempts numbered " << attempt;
    if (status == "cancelled") {
      ++cancelled;
      EXPECT_EQ(attempt, "1") << row;
    }
  }
  EXPECT_GE(cancelled, 1) << read_file(out / "attempts.csv");
}

namespace {

// A sweep whose jobs take a few seconds: 3 lenet5 folds, 3 epochs each, with
// epoch checkpoints (the test's cue that a job is past its first epoch).
std::vector<std::string> preemptible_sweep(const std::filesystem::path& out, const std::vector<std::string>& extra = {}) {
  return packtrain::testing::packtrain_argv(
      {"kfold", "--models", "lenet5", "--schedules", "cosine", "--folds", "3", "--epochs", "3", "--limit", "9000",
       "--checkpoint-every", "1", "--cores", "2", "--out", out.string(), "--quiet"},
      extra);
}

// Waits (up to two minutes) until some job of the run in `out` has written
// its first epoch's checkpoint, so it is in its second epoch now.
bool wait_for_second_epoch(const std::filesystem::path& out) {
  return packtrain::testing::wait_until(
      [&] {
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(out / "checkpoints", ec))
          if (std::filesystem::exists(entry.path() / "epoch-0001.pt")) return true;
        return false;
      },
      std::chrono::seconds(120));
}

// CPU seconds process `pid` and its children have used (user + system,
// /proc/PID/stat; the run is packtrain's supervised child): how far its
// jobs got, whatever the machine's load.
double cpu_seconds(int pid) {
  double children = 0;
  std::istringstream kids(read_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children"));
  for (int child = 0; kids >> child;) children += cpu_seconds(child);
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/stat"));
  std::string field;
  // The name (field 2) may hold spaces: skip past its closing parenthesis.
  std::getline(in, field, ')');
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return children + (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Then waits until it has worked `seconds` of CPU more: its jobs are a few
// batches into the epoch (one takes about a CPU second), not at its start.
void wait_for_cpu(int pid, double seconds) {
  const double from = cpu_seconds(pid);
  (void)packtrain::testing::wait_until([&] { return cpu_seconds(pid) >= from + seconds; }, std::chrono::seconds(60));
}

}  // namespace

TEST(KFoldCli, SigtermSavesEachRunningJobsStepExits143AndResumeGivesTheUninterruptedBits) {
  TempDir dir;
  const auto whole = dir / "whole";
  const auto cut = dir / "cut";
  const auto uninterrupted = run_command(preemptible_sweep(whole));
  ASSERT_EQ(uninterrupted.exit_code, 0) << uninterrupted.err;

  const int pid = packtrain::testing::start_command(preemptible_sweep(cut), dir / "cut.log");
  ASSERT_TRUE(wait_for_second_epoch(cut)) << read_file(dir / "cut.log");
  wait_for_cpu(pid, 0.3);
  kill(pid, SIGTERM);
  // A second SIGTERM (SLURM's at the time limit) once the first is taken: ignored, the saves go on.
  (void)packtrain::testing::wait_until(
      [&] { return read_file(dir / "cut.log").find("asked to stop") != std::string::npos; }, std::chrono::seconds(60));
  kill(pid, SIGTERM);
  const auto stopped = packtrain::testing::wait_command(pid);
  const auto log = read_file(dir / "cut.log");
  ASSERT_EQ(stopped.exit_code, 143) << log;

  // One line names the command that goes on.
  const std::string marker = "resume with: ";
  const auto at = log.find(marker);
  ASSERT_NE(at, std::string::npos) << log;
  const auto line = log.substr(at + marker.size(), log.find('\n', at) - at - marker.size());
  EXPECT_NE(line.find("--resume"), std::string::npos) << line;
  EXPECT_NE(line.find(cut.string()), std::string::npos) << line;

  // The running jobs saved their place mid-epoch and stay resumable.
  const auto before = packtrain::testing::journal_by_id(cut);
  std::map<std::string, nlohmann::json> saved;  // job -> checkpointed_at
  int mid_epoch = 0;
  for (const auto& [id, r] : before) {
    EXPECT_NE(r.status, JobStatus::running) << id;
    if (r.status != JobStatus::cancelled || !r.metrics.contains("checkpointed_at")) continue;
    saved[id] = r.metrics["checkpointed_at"];
    mid_epoch += saved[id]["batch"].get<int>() > 0;
    EXPECT_TRUE(std::filesystem::exists(cut / "checkpoints" / id / "preempted.pt")) << id;
  }
  ASSERT_GE(saved.size(), 1u) << log;
  EXPECT_GE(mid_epoch, 1) << log;

  // The printed line itself resumes the run.
  const auto resumed = run_command({"/bin/sh", "-c", line});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  expect_same_numbers(whole / "results.csv", cut / "results.csv");
  const auto a = packtrain::testing::journal_by_id(whole), b = packtrain::testing::journal_by_id(cut);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [id, r] : a) {
    ASSERT_EQ(b.at(id).status, JobStatus::done) << id;
    // Bit for bit: the journal keeps every double's 17 digits.
    for (const char* m : {"val_loss", "val_top1", "val_top5", "train_loss"})
      EXPECT_EQ(r.metrics[m].get<double>(), b.at(id).metrics[m].get<double>()) << id << " " << m;
  }
  for (const auto& [id, position] : saved) {
    const auto& m = b.at(id).metrics;
    EXPECT_EQ(m.value("resumed_from", ""), "preempted.pt") << id;
    // It went on from its step: only the steps after the checkpoint were trained again.
    const auto done_before = position["epoch"].get<std::int64_t>() * position["batches_per_epoch"].get<std::int64_t>() +
                             position["batch"].get<std::int64_t>();
    EXPECT_EQ(m["steps"].get<std::int64_t>(), a.at(id).metrics["steps"].get<std::int64_t>() - done_before) << id;
    EXPECT_FALSE(std::filesystem::exists(cut / "checkpoints" / id / "preempted.pt")) << id;
  }
}

// --memory-per-job: a job that would pass its budget (vgg11 needs about
// 60 MiB at batch 64; mlp 5) fails `over memory` at that allocation; the
// others are done, exit 1, and each job's peak is in its metrics. --resume
// with a larger budget runs only the failed jobs.
TEST(KFoldCli, AJobPastItsMemoryBudgetFailsOverMemoryTheOthersAreDoneAndResumeWithMoreFinishes) {
  TempDir dir;
  const auto sweep = [&](const std::string& budget, std::vector<std::string> extra = {}) {
    extra.insert(extra.end(), {"--memory-per-job", budget});
    return packtrain::testing::packtrain_argv({"kfold", "--models", "mlp,vgg11", "--schedules", "cosine", "--folds",
                                               "3", "--epochs", "1", "--limit", "600", "--out",
                                               (dir / "run").string(), "--quiet"},
                                              extra);
  };
  const auto first = run_command(sweep("32"));
  EXPECT_EQ(first.exit_code, 1) << first.out << first.err;
  auto jobs = packtrain::testing::journal_by_id(dir / "run");
  ASSERT_EQ(jobs.size(), 6u);
  for (const auto& [id, r] : jobs) {
    if (r.spec["model"] == "mlp") {
      EXPECT_EQ(r.status, JobStatus::done) << r.name << ": " << r.message;
      EXPECT_GT(r.metrics.value("peak_memory_mb", 0.0), 0.0) << r.name;
      EXPECT_LE(r.metrics.value("peak_memory_mb", 99.0), 32.0) << r.name;
    } else {
      EXPECT_EQ(r.status, JobStatus::failed) << r.name;
      EXPECT_EQ(r.message.rfind("over memory: the job held up to ", 0), 0u) << r.message;
      EXPECT_NE(r.message.find("of its 32 MiB budget"), std::string::npos) << r.message;
    }
  }
  const auto more = run_command(sweep("0", {"--resume"}));  // no budget
  EXPECT_EQ(more.exit_code, 0) << more.out << more.err;
  jobs = packtrain::testing::journal_by_id(dir / "run");
  for (const auto& [id, r] : jobs) {
    EXPECT_EQ(r.status, JobStatus::done) << r.name << ": " << r.message;
    EXPECT_EQ(r.attempts, r.spec["model"] == "mlp" ? 1 : 2) << r.name << ": the done jobs ran once";
    if (r.spec["model"] == "vgg11") {
      EXPECT_GT(r.metrics.value("peak_memory_mb", 0.0), 32.0) << r.name;
    }
  }
}

// Fused folds (--fuse auto, the default): lenet5's folds train as fused
// jobs, mlp's alone (fusing does not pay for it); every fold keeps its row,
// id and seed, and its numbers are its unfused run's within float rounding.
TEST(KFoldFuse, FusedFoldsKeepTheirRowsIdsAndUnfusedNumbers) {
  TempDir dir;
  const auto sweep = [&](const std::string& out, const std::string& fuse) {
    return packtrain::testing::packtrain_argv({"kfold", "--models", "mlp,lenet5", "--schedules", "cosine", "--folds",
                                               "4", "--epochs", "1", "--limit", "2000", "--cores", "2", "--out",
                                               (dir / out).string(), "--quiet", "--fuse", fuse});
  };
  const auto fused = run_command(sweep("fused", "auto"));
  ASSERT_EQ(fused.exit_code, 0) << fused.err;
  const auto plain = run_command(sweep("plain", "off"));
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  const auto f = packtrain::testing::results_by_id(dir / "fused/results.csv");
  const auto p = packtrain::testing::results_by_id(dir / "plain/results.csv");
  ASSERT_EQ(p.size(), 8u);
  // 8 jobs on 2 cores: lenet5's 4 folds are one fused job of 4.
  ASSERT_EQ(f.size(), 9u);
  const auto journal = packtrain::testing::journal_by_id(dir / "fused");
  std::string fused_id;
  for (const auto& [id, row] : f)
    if (!p.count(id)) fused_id = id;
  ASSERT_FALSE(fused_id.empty());
  EXPECT_EQ(journal.at(fused_id).name, "lenet5/cosine/fused0-3");
  EXPECT_EQ(f.at(fused_id).at("status"), "done");
  for (const auto& [id, row] : p) {
    SCOPED_TRACE(journal.count(id) ? journal.at(id).name : id);
    ASSERT_TRUE(f.count(id)) << "the fused run has every fold's row, under the same id";
    const auto& g = f.at(id);
    EXPECT_EQ(g.at("status"), "done");
    EXPECT_NEAR(std::stod(g.at("val_top1")), std::stod(row.at("val_top1")), 0.002);  // a sample of 500 at most
    EXPECT_NEAR(std::stod(g.at("val_loss")), std::stod(row.at("val_loss")), 1e-3);
    const auto& metrics = journal.at(id).metrics;
    if (row.at("model") == "lenet5") {
      EXPECT_EQ(metrics.value("fused_job", ""), fused_id);
    } else {
      EXPECT_FALSE(metrics.contains("fused_job")) << "mlp's folds train alone";
      EXPECT_EQ(g.at("val_top1"), row.at("val_top1"));
    }
  }
  // The summary's groups are the folds' (the fused job's row is no fold).
  const auto json = nlohmann::json::parse(read_file(dir / "fused/results.json"));
  ASSERT_EQ(json["summary"]["groups"].size(), 2u);
  for (const auto& g : json["summary"]["groups"]) EXPECT_EQ(g["folds_total"], 4);
  EXPECT_NE(fused.out.find("lenet5       cosine      4/4"), std::string::npos) << fused.out;
}

// A resumed run keeps its fused groups: they were planned for its first
// run's cores, and --resume with other --cores (or on another node) finds
// the same jobs, where planning for its own would refuse the run.
TEST(KFoldFuse, ResumeWithOtherCoresKeepsTheRunsFusedJobs) {
  TempDir dir;
  const auto sweep = [&](const std::vector<std::string>& extra) {
    return packtrain::testing::packtrain_argv({"kfold", "--models", "lenet5", "--schedules", "cosine", "--folds", "4",
                                               "--epochs", "1", "--limit", "800", "--out", (dir / "run").string(),
                                               "--quiet"},
                                              extra);
  };
  const auto first = run_command(sweep({"--cores", "1"}));  // 4 jobs on 1 core: one fused job of 4
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const auto before = packtrain::testing::journal_by_id(dir / "run");
  ASSERT_EQ(before.size(), 5u);
  const auto again = run_command(sweep({"--cores", "2", "--resume"}));  // 2 cores alone would plan 2 fused jobs of 2
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const auto after = packtrain::testing::journal_by_id(dir / "run");
  ASSERT_EQ(after.size(), 5u);
  for (const auto& [id, r] : after) {
    ASSERT_TRUE(before.count(id)) << r.name;
    EXPECT_EQ(r.started_at, before.at(id).started_at) << r.name << " ran again";
  }
}
