// The supervising parent (DESIGN.md decision 13, cli/supervisor.hpp), end to
// end on real Fashion-MNIST: a job that crashes the process is recorded
// and, at its second crash, never run again, while the rest of the sweep
// finishes with the numbers of a sweep without the crash; --no-supervise
// runs without the parent; Ctrl-C and SIGTERM still reach the run.
//
// The crashes come from the test hook PACKTRAIN_TEST_CRASH_JOB (the named
// job raises SIGSEGV on its thread at its start; PACKTRAIN_TEST_CRASH_ONCE:
// only while a marker file does not exist).
#include "common/cli_run.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace packtrain;
using namespace packtrain::testing;

namespace {

constexpr const char* kCrashing = "mlp/cosine/fold1";  // the job the hook crashes

// Four one-epoch jobs on 2 cores, a few seconds in all.
std::vector<std::string> sweep(const std::filesystem::path& out, const std::vector<std::string>& extra = {}) {
  return packtrain_argv({"kfold", "--models", "mlp", "--schedules", "none,cosine", "--folds", "2", "--epochs", "1",
                         "--limit", "600", "--cores", "2", "--out", out.string()},
                        extra);
}

// An environment variable set for the commands a test runs, unset after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) { setenv(name, value.c_str(), 1); }
  ~ScopedEnv() { unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The sweep without any crash, run once for every test that compares with it.
class Supervisor : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    const auto whole = run_command(sweep(*dir_ / "whole", {"--quiet"}));
    ASSERT_EQ(whole.exit_code, 0) << whole.err;
    baseline_ = new std::map<std::string, ResultRow>(results_by_id(*dir_ / "whole/results.csv"));
    ASSERT_EQ(baseline_->size(), 4u);
  }
  static void TearDownTestSuite() {
    delete baseline_;
    delete dir_;
  }
  static const std::map<std::string, ResultRow>& baseline() { return *baseline_; }
  static std::string crashing_id() {
    for (const auto& [id, r] : journal_by_id(*dir_ / "whole"))
      if (r.name == kCrashing) return id;
    return "";
  }

  TempDir dir;

 private:
  static TempDir* dir_;
  static std::map<std::string, ResultRow>* baseline_;
};

TempDir* Supervisor::dir_ = nullptr;
std::map<std::string, ResultRow>* Supervisor::baseline_ = nullptr;

TEST_F(Supervisor, AJobCrashingAtEveryAttemptIsRecordedCrashedAndTheRestFinishWithTheSameNumbers) {
  const auto out = dir / "run";
  CommandResult run;
  {
    const ScopedEnv crash("PACKTRAIN_TEST_CRASH_JOB", kCrashing);
    run = run_command(sweep(out));
  }
  EXPECT_EQ(run.exit_code, 1) << run.err;
  // The parent says what happened at each crash and how it goes on.
  EXPECT_EQ(count(run.err, std::string("died by SIGSEGV while ") + kCrashing + " ran"), 2) << run.err;
  EXPECT_EQ(count(run.err, "resuming: "), 2) << run.err;
  EXPECT_NE(run.err.find("recorded crashed after 2 crashes, not run again"), std::string::npos) << run.err;
  // The summary names it.
  EXPECT_NE(run.err.find(std::string("crashed twice, not run again: ") + kCrashing + " (SIGSEGV)"), std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("0 cancelled, 1 crashed in"), std::string::npos) << run.err;

  const auto id = crashing_id();
  const auto rows = results_by_id(out / "results.csv");
  ASSERT_EQ(rows.size(), baseline().size());
  for (const auto& [job, row] : baseline()) {
    ASSERT_TRUE(rows.count(job)) << job;
    if (job == id) {
      EXPECT_EQ(rows.at(job).at("status"), "crashed");
      EXPECT_EQ(rows.at(job).at("val_top1"), "");
      continue;
    }
    EXPECT_EQ(rows.at(job).at("status"), "done") << job;
    EXPECT_EQ(rows.at(job).at("val_top1"), row.at("val_top1")) << job;  // the same numbers as without the crash
    EXPECT_EQ(rows.at(job).at("val_loss"), row.at("val_loss")) << job;
  }
  const auto journal = Journal::open_existing(out / "journal.sqlite");
  const auto crashed = journal->find(id);
  ASSERT_TRUE(crashed);
  EXPECT_EQ(crashed->status, JobStatus::crashed);
  EXPECT_EQ(crashed->metrics.value("signal", ""), "SIGSEGV");
  EXPECT_EQ(crashed->metrics.value("crashes", 0), 2);
  EXPECT_NE(crashed->message.find("SIGSEGV"), std::string::npos) << crashed->message;
  EXPECT_EQ(nlohmann::json::parse(journal->meta("crashes").value_or("{}")), (nlohmann::json{{id, 2}}));
  const auto json = read_json_file(out / "results.json");
  EXPECT_EQ(json["summary"]["crashed"], 1);
  for (const auto& row : json["jobs"])
    if (row["job"] == id) {
      EXPECT_EQ(row["status"], "crashed");
      EXPECT_NE(row["message"].get<std::string>().find("SIGSEGV"), std::string::npos) << row;
    }
  EXPECT_NE(read_file(out / "report.html").find("crashed"), std::string::npos);

  // Resumed again, without the hook: it is never run again, and the run still exits 1.
  const auto again = run_command(sweep(out, {"--resume"}));
  EXPECT_EQ(again.exit_code, 1) << again.err;
  EXPECT_NE(again.err.find("1 crashed before (not run again)"), std::string::npos) << again.err;
  EXPECT_NE(again.out.find("nothing to run: 3 of 4 jobs were done before and 1 crashed twice"), std::string::npos)
      << again.out;
  const auto after = Journal::open_existing(out / "journal.sqlite")->find(id);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, JobStatus::crashed);
  EXPECT_EQ(after->ended_at, crashed->ended_at) << "a crashed job ran again";
}

TEST_F(Supervisor, AJobThatCrashesOnceRunsAgainAndEndsDoneWithItsNumbers) {
  const auto out = dir / "run";
  const auto marker = dir / "crashed-once";
  CommandResult run;
  {
    const ScopedEnv crash("PACKTRAIN_TEST_CRASH_JOB", kCrashing);
    const ScopedEnv once("PACKTRAIN_TEST_CRASH_ONCE", marker.string());
    run = run_command(sweep(out, {"--quiet"}));
  }
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_TRUE(std::filesystem::exists(marker)) << "the hook never crashed";
  EXPECT_EQ(count(run.err, "died by SIGSEGV"), 1) << run.err;
  EXPECT_NE(run.err.find(std::string(kCrashing) + " ran: it runs again"), std::string::npos) << run.err;
  const auto rows = results_by_id(out / "results.csv");
  ASSERT_EQ(rows.size(), baseline().size());
  for (const auto& [job, row] : baseline()) {
    ASSERT_TRUE(rows.count(job)) << job;
    EXPECT_EQ(rows.at(job).at("status"), "done") << job;
    EXPECT_EQ(rows.at(job).at("val_top1"), row.at("val_top1")) << job;
  }
  const auto id = crashing_id();
  const auto journal = Journal::open_existing(out / "journal.sqlite");
  EXPECT_EQ(nlohmann::json::parse(journal->meta("crashes").value_or("{}")), (nlohmann::json{{id, 1}}));
  EXPECT_GE(journal->find(id)->attempts, 2) << "its attempts go on from the crashed one";
}

TEST_F(Supervisor, WithNoSuperviseACrashEndsTheProcessByItsSignal) {
  const auto out = dir / "run";
  CommandResult run;
  {
    const ScopedEnv crash("PACKTRAIN_TEST_CRASH_JOB", kCrashing);
    run = run_command(sweep(out, {"--no-supervise", "--quiet"}));
  }
  EXPECT_EQ(run.signal, SIGSEGV) << "exit " << run.exit_code << ": " << run.err;
  EXPECT_EQ(run.err.find("resuming"), std::string::npos) << run.err;
  EXPECT_FALSE(std::filesystem::exists(out / "results.csv"));
  // The journal holds what the run wrote; the crash is not recorded (no parent).
  const auto journal = Journal::open_existing(out / "journal.sqlite");
  EXPECT_FALSE(journal->meta("crashes"));
  for (const auto& r : journal->records()) EXPECT_NE(r.status, JobStatus::crashed) << r.name;
}

TEST_F(Supervisor, NoSuperviseIsForTheCommandLineOnly) {
  write_file(dir / "run.conf", "no-supervise = true\n");
  const auto before = folder_bytes(dir.path());
  const auto run = run_command(sweep(dir / "run", {"--config", (dir / "run.conf").string()}));
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_TRUE(one_line(run.err)) << run.err;
  EXPECT_NE(run.err.find("--no-supervise on the command line"), std::string::npos) << run.err;
  EXPECT_EQ(folder_bytes(dir.path()), before);
}

// The pid of the supervised child of `parent` (0 when it has none yet).
int child_of(int parent) {
  std::istringstream in(read_file("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) + "/children"));
  int child = 0;
  in >> child;
  return child;
}

// Whether process `pid` is alive (a zombie is not: it waits to be reaped).
bool alive(int pid) {
  const auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

// Waits (up to two minutes) until the run in `out` has a job running.
bool wait_for_running_job(const std::filesystem::path& out) {
  return wait_until(
      [&] {
        if (!std::filesystem::exists(out / "journal.sqlite")) return false;
        try {
          for (const auto& r : journal_records(out))
            if (r.status == JobStatus::running) return true;
        } catch (const std::exception&) {
        }
        return false;
      },
      std::chrono::seconds(120));
}

// Ctrl-C and SIGTERM sent to packtrain (the parent) reach the run: 130 and
// 143 as without a parent, nothing left running in the journal, and the
// child is gone when the parent ends. kill -9 of the parent kills the run.
TEST_F(Supervisor, SignalsToTheParentReachTheRunAndItsExitStatusIsTheRuns) {
  for (const int signal : {SIGINT, SIGTERM, SIGKILL}) {
    SCOPED_TRACE(signal);
    const auto out = dir / ("run-" + std::to_string(signal));
    const auto log = dir / ("run-" + std::to_string(signal) + ".log");
    const int pid = start_command(
        packtrain_argv({"kfold", "--models", "mlp", "--schedules", "cosine", "--folds", "2", "--epochs", "30",
                        "--limit", "3000", "--cores", "1", "--out", out.string(), "--quiet"}),
        log);
    ASSERT_TRUE(wait_for_running_job(out)) << read_file(log);
    const int child = child_of(pid);
    ASSERT_GT(child, 0);
    kill(pid, signal);
    const auto ended = wait_command(pid);
    if (signal == SIGKILL) {
      EXPECT_EQ(ended.signal, SIGKILL);
      // Killed with its parent, by the kernel: wait for the signal to land.
      (void)wait_until([&] { return !alive(child); }, std::chrono::seconds(60));
    } else {
      EXPECT_EQ(ended.exit_code, signal == SIGINT ? 130 : 143) << read_file(log);
    }
    EXPECT_FALSE(alive(child)) << "the run's process outlived packtrain";
    const auto records = journal_records(out);
    ASSERT_EQ(records.size(), 2u);
    for (const auto& r : records) {
      if (signal != SIGKILL) {
        EXPECT_NE(r.status, JobStatus::running) << r.name;
      }
      EXPECT_NE(r.status, JobStatus::crashed) << r.name;
    }
    if (signal == SIGTERM) {
      EXPECT_NE(read_file(log).find("resume with: "), std::string::npos) << read_file(log);
    }
    EXPECT_EQ(read_file(log).find("died by"), std::string::npos) << read_file(log);
  }
}

}  // namespace
