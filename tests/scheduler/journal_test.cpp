#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/journal.hpp>

#include "common/test_util.hpp"
#include "scheduler/runner_fixture.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

using namespace packtrain;
using packtrain::testing::TempDir;
using packtrain::testing::VirtualRun;

namespace {

constexpr int kJobs = 20;

// The same job list in the killed child and in the resuming parent.
void add_jobs(JobRunner& runner, std::atomic<int>* executed, int ms) {
  for (int i = 0; i < kJobs; ++i) {
    Job job;
    job.name = "job" + std::to_string(i);
    job.spec = {{"i", i}};
    job.cost = kJobs - i;  // starts in index order
    job.run = [executed, ms, i](JobContext&) {
      if (executed) ++*executed;
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      return JobOutcome{.metrics = {{"value", i * 10}}};
    };
    runner.add(job);
  }
}

int count_status(const Journal& journal, JobStatus status) {
  int n = 0;
  for (const auto& r : journal.records()) n += r.status == status;
  return n;
}

std::string integrity_check(const std::filesystem::path& path) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr);
  std::string result = "no answer";
  if (sqlite3_step(stmt) == SQLITE_ROW) result = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return result;
}

}  // namespace

TEST(Journal, RecordsJobsAcrossReopen) {
  TempDir dir;
  {
    auto j = Journal::open(dir / "journal.sqlite");
    j->add_queued("a1", "a", {{"x", 1}});
    j->add_queued("b2", "b", {{"x", 2}});
    j->mark_started("a1", 1, 100.0, {0, 1}, 3);
    j->mark_ended("a1", JobStatus::done, 1, 112.5, {{"val_top1", 0.875}}, "");
    j->add_queued("a1", "a", {{"x", 1}});  // re-adding keeps the finished row
    j->set_meta("command", "kfold");
  }
  auto j = Journal::open(dir / "journal.sqlite");
  const auto records = j->records();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].id, "a1");
  EXPECT_EQ(records[0].status, JobStatus::done);
  EXPECT_EQ(records[0].cores, (std::vector<int>{0, 1}));
  EXPECT_EQ(records[0].rank, 3);
  EXPECT_DOUBLE_EQ(records[0].seconds(), 12.5);
  EXPECT_DOUBLE_EQ(records[0].metrics["val_top1"].get<double>(), 0.875);
  EXPECT_EQ(records[1].status, JobStatus::queued);
  EXPECT_EQ(j->meta("command"), "kfold");
  EXPECT_FALSE(j->find("zz").has_value());
}

// A supervising parent may record a crash before the runner wrote the
// job's row (cli/supervisor.hpp): the runner's add_queued then gives the
// row its name and spec and keeps what the parent recorded.
TEST(Journal, AddQueuedGivesARowWrittenWithoutItsSpecTheSpecAndKeepsTheRest) {
  TempDir dir;
  auto journal = Journal::open(dir / "journal.sqlite");
  JobRecord bare;
  bare.id = "00000000000000aa";
  bare.name = "bare";
  bare.status = JobStatus::crashed;
  bare.attempts = 2;
  bare.message = "crashed";
  journal->put(bare);
  journal->add_queued(bare.id, "mlp/none/fold0", {{"model", "mlp"}});
  const auto row = journal->find(bare.id);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->name, "mlp/none/fold0");
  EXPECT_EQ(row->spec, (nlohmann::json{{"model", "mlp"}}));
  EXPECT_EQ(row->status, JobStatus::crashed);
  EXPECT_EQ(row->attempts, 2);
  EXPECT_EQ(row->message, "crashed");
}

TEST(Journal, NotAJournalIsAnErrorNamingTheFile) {
  TempDir dir;
  packtrain::testing::write_file(dir / "journal.sqlite", std::string(4096, 'x'));
  try {
    Journal::open(dir / "journal.sqlite");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "journal.sqlite").string()), std::string::npos) << e.what();
  }
  // and the file was not replaced
  EXPECT_EQ(packtrain::testing::read_file(dir / "journal.sqlite"), std::string(4096, 'x'));
}

TEST(Journal, UnwritableFolderIsAnError) {
  EXPECT_THROW(Journal::open("/proc/packtrain-no-such-dir/journal.sqlite"), Error);
}

TEST(Journal, SurvivesSigkillMidRunAndResumeRunsOnlyTheRest) {
  TempDir dir;
  const auto path = dir / "journal.sqlite";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child runs the sweep slowly until it is killed.
    VirtualRun r(2);
    auto journal = Journal::open(path);
    add_jobs(*r.runner, nullptr, 40);
    r.options.journal = journal.get();
    r.runner->run(r.options);
    _exit(0);
  }
  // Wait until a few jobs are done, then kill the child mid-run.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int done_before_kill = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!std::filesystem::exists(path)) continue;
    try {
      auto peek = Journal::open(path);
      done_before_kill = count_status(*peek, JobStatus::done);
    } catch (const Error&) {
      continue;  // schema not created yet
    }
    if (done_before_kill >= 5) break;
  }
  kill(child, SIGKILL);
  int wstatus = 0;
  waitpid(child, &wstatus, 0);
  ASSERT_TRUE(WIFSIGNALED(wstatus));
  ASSERT_GE(done_before_kill, 5);

  EXPECT_EQ(integrity_check(path), "ok");
  auto journal = Journal::open(path);
  const int done = count_status(*journal, JobStatus::done);
  EXPECT_GE(done, done_before_kill);
  EXPECT_LT(done, kJobs);
  for (const auto& rec : journal->records()) {
    if (rec.status == JobStatus::done) {
      EXPECT_EQ(rec.metrics["value"].get<int>(), std::stoi(rec.name.substr(3)) * 10);
    }
  }

  // --resume: only the jobs not done run; afterwards every job is done.
  std::atomic<int> executed{0};
  VirtualRun r(2);
  add_jobs(*r.runner, &executed, 1);
  r.options.journal = journal.get();
  r.options.resume = true;
  const auto summary = r.runner->run(r.options);
  EXPECT_EQ(executed.load(), kJobs - done);
  EXPECT_EQ(summary.resumed, done);
  EXPECT_EQ(summary.exit_code(), 0);
  EXPECT_EQ(count_status(*journal, JobStatus::done), kJobs);
  // Resumed rows carry the metrics of the run that did them.
  for (const auto& rec : summary.jobs) EXPECT_EQ(rec.metrics["value"].get<int>(), std::stoi(rec.name.substr(3)) * 10);
}

TEST(Journal, ArtifactsRoundTripThroughTheFileAndJson) {
  TempDir dir;
  const std::vector<std::string> files = {"checkpoints/a1/epoch-0002.pt", "masks/a1.pt"};
  {
    auto j = Journal::open(dir / "journal.sqlite");
    j->add_queued("a1", "a", {{"x", 1}});
    j->add_queued("b2", "b", {{"x", 2}});
    j->mark_started("a1", 1, 100.0, {0}, 0);
    j->mark_ended("a1", JobStatus::done, 1, 101.0, {{"val_top1", 0.5}}, "", files);
    JobRecord elsewhere{.id = "c3", .name = "c", .status = JobStatus::done, .rank = 1, .artifacts = {"tickets/c.json"}};
    j->put(elsewhere);
  }
  const auto j = Journal::open(dir / "journal.sqlite");
  const auto a = j->find("a1");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->artifacts, files);
  EXPECT_FALSE(a->metrics.contains("artifacts"));
  EXPECT_TRUE(j->find("b2")->artifacts.empty());
  EXPECT_EQ(j->find("c3")->artifacts, std::vector<std::string>{"tickets/c.json"});
  // As records travel between ranks.
  EXPECT_EQ(record_from_json(record_to_json(*a)).artifacts, files);
  EXPECT_EQ(record_to_json(*a)["artifacts"], nlohmann::json(files));
}

namespace {

// A journal as packtrain wrote it before the `artifacts` column: a job's
// files were a list "artifacts" in its metrics.
void write_older_journal(const std::filesystem::path& path) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const char* sql = R"sql(
    PRAGMA journal_mode=WAL;
    CREATE TABLE jobs (
      seq        INTEGER PRIMARY KEY AUTOINCREMENT,
      id         TEXT NOT NULL UNIQUE,
      name       TEXT NOT NULL,
      spec       TEXT NOT NULL,
      status     TEXT NOT NULL,
      attempts   INTEGER NOT NULL DEFAULT 0,
      started_at REAL NOT NULL DEFAULT 0,
      ended_at   REAL NOT NULL DEFAULT 0,
      cores      TEXT NOT NULL DEFAULT '[]',
      rank       INTEGER NOT NULL DEFAULT 0,
      metrics    TEXT NOT NULL DEFAULT '{}',
      message    TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO jobs (id, name, spec, status, attempts, started_at, ended_at, metrics) VALUES
      ('d1', 'dense', '{"kind":"dense"}', 'done', 1, 10, 20, '{"test_top1":0.5,"artifacts":["checkpoints/d1/e.pt"]}'),
      ('r2', 'retrain', '{"kind":"retrain"}', 'queued', 0, 0, 0, '{}');
    INSERT INTO meta VALUES ('command', 'lth');
  )sql";
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

bool has_artifacts_column(const std::filesystem::path& path) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*) FROM pragma_table_info('jobs') WHERE name='artifacts'", -1, &stmt, nullptr);
  const bool found = sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_int(stmt, 0) > 0;
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return found;
}

}  // namespace

// `packtrain report` reads an older run as it is; --resume adds the column.
TEST(Journal, AnOlderJournalWithoutTheArtifactsColumnIsReadAsItIsAndGetsItWhenOpenedToWrite) {
  TempDir dir;
  const auto path = dir / "journal.sqlite";
  write_older_journal(path);
  const std::vector<std::string> dense_files = {"checkpoints/d1/e.pt"};
  {
    const auto read_only = Journal::open_existing(path);
    const auto records = read_only->records();
    ASSERT_EQ(records.size(), 2u);
    EXPECT_EQ(records[0].artifacts, dense_files);  // from the metrics, where they used to be
    EXPECT_TRUE(records[1].artifacts.empty());
    EXPECT_EQ(read_only->find("d1")->artifacts, dense_files);
    EXPECT_EQ(read_only->meta("command"), "lth");
  }
  EXPECT_FALSE(has_artifacts_column(path)) << "open_existing changed the file";

  {
    const auto journal = Journal::open(path);
    EXPECT_TRUE(has_artifacts_column(path));
    const auto dense = journal->find("d1");
    ASSERT_TRUE(dense.has_value());
    EXPECT_EQ(dense->artifacts, dense_files);
    EXPECT_EQ(dense->metrics["artifacts"], nlohmann::json(dense_files)) << "the recorded metrics changed";
    journal->mark_started("r2", 1, 30, {0}, 0);
    journal->mark_ended("r2", JobStatus::done, 1, 40, {{"test_top1", 0.4}}, "", {"masks/r2.pt"});
  }
  // Opened again (a second --resume): the column is there, nothing is added twice.
  const auto again = Journal::open(path);
  EXPECT_EQ(again->find("r2")->artifacts, std::vector<std::string>{"masks/r2.pt"});
  EXPECT_EQ(again->find("d1")->artifacts, dense_files);
  EXPECT_EQ(integrity_check(path), "ok");
}
