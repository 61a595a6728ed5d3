// packtrain batch PLAN.toml, run as a user runs it: a real plan file, real
// processes, real data, the run's real files.
#include <packtrain/scheduler/journal.hpp>

#include "common/cli_run.hpp"
#include "packtrain_paths.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

using namespace packtrain;
using packtrain::testing::read_file;
using packtrain::testing::run_command;
using packtrain::testing::run_packtrain;
using packtrain::testing::TempDir;
using packtrain::testing::write_file;

namespace {

// The three kinds on small data: each entry's flags, and the same as argv
// for its command run alone.
const char* kPlan = R"(# a test plan
seed = 3

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
sparsities = [0.5, 0.8]
limit = 1500

[[hogwild]]
name = "hog"
model = "mlp"
epochs = 1
limit = 1500
)";

const std::vector<std::string> kKFoldAlone = {"kfold", "--models", "mlp,lenet5", "--schedules", "cosine", "--folds", "2",
                                              "--epochs", "1", "--limit", "1500", "--seed", "3"};
const std::vector<std::string> kLthAlone = {"lth", "--model", "mlp", "--epochs", "2", "--sparsities", "0.5,0.8",
                                            "--limit", "1500", "--seed", "3"};
const std::vector<std::string> kHogwildAlone = {"hogwild", "--model", "mlp", "--epochs", "1", "--limit", "1500",
                                                "--seed", "3"};

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& extra) {
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// Rows of `alone` (a command run alone) against the batch's: the same ids,
// statuses and, for deterministic jobs, the same numbers; every batch row
// names the entry.
void expect_entry_matches(const std::map<std::string, packtrain::testing::ResultRow>& batch,
                          const std::filesystem::path& alone_csv, const std::string& entry,
                          const std::vector<std::string>& same_columns, int gates = 0) {
  const auto alone = packtrain::testing::results_by_id(alone_csv);
  ASSERT_FALSE(alone.empty());
  std::map<std::string, int> measured;  // per column: rows with a value (a fused job's row has no model)
  int in_batch = 0;
  for (const auto& [id, row] : batch) in_batch += row.at("entry") == entry;
  EXPECT_EQ(in_batch, static_cast<int>(alone.size()) + gates) << entry;  // a best: entry's gate: its row too
  for (const auto& [id, row] : alone) {
    ASSERT_TRUE(batch.count(id)) << entry << ": job " << id << " (" << row.at("status") << ") is not in the batch";
    const auto& b = batch.at(id);
    EXPECT_EQ(b.at("entry"), entry) << id;
    EXPECT_EQ(b.at("status"), "done") << id;
    EXPECT_EQ(row.at("status"), "done") << id;
    for (const auto& c : same_columns) {
      ASSERT_TRUE(row.count(c) && b.count(c)) << c;
      measured[c] += !row.at(c).empty();
      EXPECT_EQ(b.at(c), row.at(c)) << entry << " job " << id << " column " << c;
    }
  }
  for (const auto& c : same_columns) EXPECT_GT(measured[c], 0) << entry << ": no row has " << c;
}

// A refused plan: exit 2, one line naming the file and line, nothing written.
void expect_refused(const std::filesystem::path& dir, const std::string& plan_text, const std::string& where,
                    const std::string& says) {
  const auto plan = dir / "plan.toml";
  write_file(plan, plan_text);
  const auto out = dir / "out";
  const auto r = run_packtrain({"batch", plan.string(), "--out", out.string(), "--quiet"});
  EXPECT_EQ(r.exit_code, 2) << plan_text << r.err;
  EXPECT_TRUE(packtrain::testing::one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find(plan.string() + ":" + where + ":"), std::string::npos) << "want line " << where << ": " << r.err;
  EXPECT_NE(r.err.find(says), std::string::npos) << "want '" << says << "': " << r.err;
  EXPECT_FALSE(std::filesystem::exists(out)) << "a refused plan created --out";
}

}  // namespace

// The issue's plan on 2 cores: every job once, and each entry's results
// those of its command run alone (same ids; the same numbers where a job's
// numbers do not depend on timing: Hogwild's do, its workers race).
TEST(BatchCli, EveryEntrysJobsRunOnceWithTheIdsAndNumbersOfItsCommandAlone) {
  TempDir dir;
  const auto plan = dir / "plan.toml";
  write_file(plan, kPlan);
  const auto batch = run_packtrain({"batch", plan.string(), "--out", (dir / "batch").string(), "--cores", "2"});
  ASSERT_EQ(batch.exit_code, 0) << batch.err;
  for (const char* section : {"== sweep (kfold)", "== tickets (lth)", "== hog (hogwild)"})
    EXPECT_NE(batch.out.find(section), std::string::npos) << section << " in:\n" << batch.out;

  for (const auto& [args, name] : {std::pair{kKFoldAlone, "kfold"}, std::pair{kLthAlone, "lth"},
                                   std::pair{kHogwildAlone, "hogwild"}}) {
    const auto r = run_packtrain(with(args, {"--out", (dir / name).string(), "--cores", "2", "--quiet"}));
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.err;
  }
  const auto rows = packtrain::testing::results_by_id(dir / "batch/results.csv");
  expect_entry_matches(rows, dir / "kfold/results.csv", "sweep", {"model", "schedule", "fold", "val_top1", "val_loss"});
  expect_entry_matches(rows, dir / "lth/results.csv", "tickets", {"sparsity", "test_top1"});
  expect_entry_matches(rows, dir / "hogwild/results.csv", "hog", {"model"});
  // Every job once: one journal row each, one attempt each.
  const auto records = packtrain::testing::journal_records(dir / "batch");
  EXPECT_EQ(records.size(), rows.size());
  for (const auto& r : records) {
    EXPECT_EQ(r.status, JobStatus::done) << r.name;
    EXPECT_EQ(r.attempts, 1) << r.name;
  }
  // One report: a section per entry, one Gantt chart.
  const auto report = read_file(dir / "batch/report.html");
  for (const char* id : {"id=\"entry-sweep\"", "id=\"entry-tickets\"", "id=\"entry-hog\""})
    EXPECT_NE(report.find(id), std::string::npos) << id;
  // packtrain report rebuilds the same results (the entry column from the journal).
  const auto csv = read_file(dir / "batch/results.csv");
  std::filesystem::remove(dir / "batch/results.csv");
  const auto rebuilt = run_packtrain({"report", (dir / "batch").string()});
  ASSERT_EQ(rebuilt.exit_code, 0) << rebuilt.err;
  EXPECT_EQ(read_file(dir / "batch/results.csv"), csv);
  const auto summary = packtrain::testing::read_json_file(dir / "batch/results.json")["summary"];
  EXPECT_EQ(summary["command"], "batch");
  EXPECT_TRUE(summary["entries"]["sweep"].contains("groups"));
  EXPECT_TRUE(summary["entries"]["tickets"].contains("dense_top1"));
  EXPECT_TRUE(summary["entries"]["hog"].contains("test_top1"));
}

// after = [...]: an entry's jobs start once the other's have all ended.
TEST(BatchCli, AnEntryAfterAnotherStartsWhenItsJobsHaveEnded) {
  TempDir dir;
  const auto plan = dir / "plan.toml";
  // The entry that waits comes first in the file.
  write_file(plan, R"(
[[kfold]]
name = "second"
models = "mlp"
schedules = "warm"
folds = 2
epochs = 1
limit = 1000
after = ["first"]

[[kfold]]
name = "first"
models = "mlp"
schedules = "cosine"
folds = 2
epochs = 1
limit = 1000
)");
  const auto r = run_packtrain({"batch", plan.string(), "--out", (dir / "out").string(), "--cores", "2", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  double first_ended = 0, second_started = 1e300;
  int firsts = 0, seconds = 0;
  for (const auto& [id, row] : packtrain::testing::results_by_id(dir / "out/results.csv")) {
    const auto record = packtrain::testing::journal_by_id(dir / "out").at(id);
    if (row.at("entry") == "first") {
      first_ended = std::max(first_ended, record.ended_at);
      ++firsts;
    } else {
      EXPECT_EQ(row.at("entry"), "second");
      second_started = std::min(second_started, record.started_at);
      ++seconds;
    }
  }
  EXPECT_EQ(firsts, 2);
  EXPECT_EQ(seconds, 2);
  EXPECT_GE(second_started, first_ended);
}

TEST(BatchCli, BadPlansAreOneLineNamingTheFileAndLineAndStartNothing) {
  TempDir dir;
  expect_refused(dir.path(), "[[kfold]]\nname = \"a\"\n\n[[nope]]\nname = \"b\"\n", "4", "unknown entry kind [[nope]]");
  expect_refused(dir.path(), "[[kfold]]\nname = \"a\"\nfoldz = 3\n", "3", "no key 'foldz'");
  expect_refused(dir.path(), "[[kfold]]\nname = \"a\"\n\n[[lth]]\nname = \"a\"\n", "4", "a second entry named 'a'");
  expect_refused(dir.path(),
                 "[[kfold]]\nname = \"a\"\nafter = [\"b\"]\n\n[[lth]]\nname = \"b\"\nafter = [\"a\"]\n",
                 "7", "a cycle in after: a -> b -> a");
  expect_refused(dir.path(), "[[kfold]]\nname = \"a\"\nafter = [\"zz\"]\n", "3", "which no entry is named");
  expect_refused(dir.path(), "[[kfold]]\nname = \"a\"\nfolds = \"many\"\n", "3", "--folds");
  expect_refused(dir.path(), "[[kfold]]\nname = \"a\"\nseed = 4\n", "3", "plan-wide");
  expect_refused(dir.path(), "[[kfold]]\nname = \"a\"\nplain-folds = \"yes\"\n", "3", "is a switch");
  expect_refused(dir.path(), "[[kfold]]\nname = \"a\"\nmodels = [\"mlp\"\n", "3", "not valid TOML");
  expect_refused(dir.path(), "cores = 0\n[[kfold]]\n", "1", "cores must be");
  expect_refused(dir.path(), "\ncores = 4294967297\n[[kfold]]\n", "2", "cores must be");
  expect_refused(dir.path(), "[[train]]\nname = \"..\"\n", "2", "letters, digits");
  expect_refused(dir.path(), "seed = 1\n", "1", "the plan has no entries");
  expect_refused(dir.path(), "[[train]]\nmodel = \"mlp\"\ncores = 2\n", "3", "plan-wide");
  // A model the command refuses: its own message, at the entry's line.
  expect_refused(dir.path(), "[[lth]]\nname = \"a\"\n\n[[kfold]]\nname = \"b\"\nmodels = \"nonet\"\n", "6", "nonet");
  // Two entries with the same job.
  expect_refused(dir.path(),
                 "[[kfold]]\nname = \"a\"\nmodels = \"mlp\"\n\n[[kfold]]\nname = \"b\"\nmodels = \"mlp\"\n", "5",
                 "the same job twice");

  const auto missing = run_packtrain({"batch", (dir / "absent.toml").string(), "--out", (dir / "o").string()});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_TRUE(packtrain::testing::one_line(missing.err)) << missing.err;
  EXPECT_NE(missing.err.find("no plan file"), std::string::npos) << missing.err;
}

// --dry-run: every job with its entry, cores and cost, and simulate's
// prediction; nothing is created.
TEST(BatchCli, DryRunListsEveryJobAndPredictsTheMakespanWritingNothing) {
  TempDir dir;
  const auto plan = dir / "plan.toml";
  write_file(plan, kPlan);
  const auto out = dir / "out";
  const auto r = run_packtrain({"batch", plan.string(), "--dry-run", "--out", out.string(), "--cores", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
  // kfold: 2 mlp folds, 2 lenet5 folds fused into one job (and their 2 rows);
  // lth: the dense job and 2 tickets; hogwild: 1 job.
  int rows = 0;
  for (const char* entry : {"sweep ", "tickets ", "hog "}) {
    int n = 0;
    for (std::size_t at = 0; (at = r.out.find(std::string("\n") + entry, at)) != std::string::npos; ++at) ++n;
    EXPECT_GT(n, 0) << entry << " in:\n" << r.out;
    rows += n;
  }
  EXPECT_EQ(rows, 5 + 3 + 1) << r.out;
  EXPECT_NE(r.out.find("1-2"), std::string::npos) << "hogwild's cores (1 to 2) in:\n" << r.out;
  EXPECT_NE(r.out.find("predicted makespan"), std::string::npos) << r.out;
  // The command line's flags reach the prediction too: a plan's cores above this machine's, --cores 2.
  write_file(plan, std::string("cores = 100\n") + kPlan);
  const auto over = run_packtrain({"batch", plan.string(), "--dry-run", "--cores", "2"});
  EXPECT_EQ(over.exit_code, 0) << over.err;
  EXPECT_NE(over.out.find("predicted makespan"), std::string::npos) << over.out;
}

// Two lottery-ticket entries: masks and tickets of their own
// (OUT/entries/NAME), the numbers of each command run alone.
TEST(BatchCli, TwoLthEntriesKeepTheirOwnMasksAndTickets) {
  TempDir dir;
  const auto plan = dir / "plan.toml";
  write_file(plan, R"(seed = 3
[[lth]]
name = "small"
model = "mlp"
epochs = 1
sparsities = 0.5
limit = 1000

[[lth]]
name = "conv"
model = "lenet5"
epochs = 1
sparsities = 0.5
limit = 1000
)");
  const auto r = run_packtrain({"batch", plan.string(), "--out", (dir / "batch").string(), "--cores", "2", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* name : {"small", "conv"}) {
    EXPECT_TRUE(std::filesystem::exists(dir / "batch/entries" / name / "masks/sparsity-0.5000_reset-0.pt")) << name;
    EXPECT_TRUE(std::filesystem::exists(dir / "batch/entries" / name / "tickets/sparsity-0.5000_reset-0.pt")) << name;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "batch/masks"));
  const auto rows = packtrain::testing::results_by_id(dir / "batch/results.csv");
  for (const auto& [model, entry] : {std::pair{"mlp", "small"}, std::pair{"lenet5", "conv"}}) {
    const auto out = dir / model;
    const auto alone = run_packtrain({"lth", "--model", model, "--epochs", "1", "--sparsities", "0.5", "--limit", "1000",
                                      "--seed", "3", "--out", out.string(), "--cores", "2", "--quiet"});
    ASSERT_EQ(alone.exit_code, 0) << alone.err;
    expect_entry_matches(rows, out / "results.csv", entry, {"sparsity", "test_top1"});
  }
}

// Killed mid-plan: --resume runs only the jobs not done, in every entry.
TEST(BatchCli, ResumeAfterSigkillRunsOnlyWhatIsMissing) {
  TempDir dir;
  const auto plan = dir / "plan.toml";
  write_file(plan, kPlan);
  const auto out = dir / "out";
  const auto args = packtrain::testing::packtrain_argv({"batch", plan.string(), "--out", out.string(), "--cores", "2",
                                                       "--quiet"});
  const int pid = packtrain::testing::start_command(args, dir / "killed.log");
  std::map<std::string, double> done_before;  // id -> started_at
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!std::filesystem::exists(out / "journal.sqlite")) continue;
    done_before.clear();
    try {
      for (const auto& r : Journal::open(out / "journal.sqlite")->records())
        if (r.status == JobStatus::done) done_before[r.id] = r.started_at;
    } catch (const std::exception&) {
      continue;
    }
    if (done_before.size() >= 3) break;
  }
  kill(pid, SIGKILL);
  const auto killed = packtrain::testing::wait_command(pid);
  ASSERT_EQ(killed.signal, SIGKILL);
  ASSERT_GE(done_before.size(), 3u);
  ASSERT_FALSE(std::filesystem::exists(out / "results.csv")) << "the batch ended before it could be killed";
  done_before = packtrain::testing::done_started_at(out);  // jobs may have ended between the last poll and the kill

  const auto resumed = run_command(with(args, {"--resume"}));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const auto records = packtrain::testing::journal_records(out);
  EXPECT_EQ(records.size(), 9u);  // kfold: 4 folds and lenet5's fused job; lth: dense and 2 tickets; hogwild
  std::map<std::string, int> by_entry;
  for (const auto& [id, row] : packtrain::testing::results_by_id(out / "results.csv")) ++by_entry[row.at("entry")];
  EXPECT_EQ(by_entry["sweep"], 5);
  EXPECT_EQ(by_entry["tickets"], 3);
  EXPECT_EQ(by_entry["hog"], 1);
  for (const auto& r : records) {
    EXPECT_EQ(r.status, JobStatus::done) << r.name;
    if (done_before.count(r.id)) {
      EXPECT_EQ(r.started_at, done_before[r.id]) << r.name << " ran again";
      EXPECT_EQ(r.attempts, 1) << r.name;
    }
  }
  const auto summary = packtrain::testing::read_json_file(out / "results.json")["summary"];
  EXPECT_EQ(summary["resumed"].get<int>(), static_cast<int>(done_before.size()));
}

namespace {

const char* kBestPlan = R"(seed = 3

[[kfold]]
name = "sweep"
models = ["mlp", "lenet5"]
schedules = "cosine"
folds = 2
epochs = 1
limit = 1500

[[lth]]
name = "tickets"
model = "best:sweep"
epochs = 3
sparsities = [0.5, 0.8]
limit = 3000
)";

}  // namespace

// model = "best:sweep": once the kfold entry has ended, a job picks its
// best group (highest mean val_top1) and the lth entry's jobs are planned
// with that model, recorded in their specs: the jobs of `lth --model BEST`.
TEST(BatchCli, BestEntryIsPlannedWithTheModelTheSweepPickedAsItsCommandWithThatModel) {
  TempDir dir;
  const auto plan = dir / "plan.toml";
  write_file(plan, kBestPlan);
  const auto r = run_packtrain({"batch", plan.string(), "--out", (dir / "out").string(), "--cores", "2", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = packtrain::testing::results_by_id(dir / "out/results.csv");
  // The sweep's best model, from its rows.
  std::map<std::string, std::pair<double, int>> sums;
  for (const auto& [id, row] : rows)
    if (row.at("entry") == "sweep" && !row.at("model").empty()) {
      sums[row.at("model")].first += std::stod(row.at("val_top1"));
      ++sums[row.at("model")].second;
    }
  ASSERT_EQ(sums.size(), 2u);
  std::string best;
  double best_mean = -1;
  for (const auto& [model, s] : sums)
    if (s.first / s.second > best_mean) best_mean = s.first / s.second, best = model;
  // The gate's row names it; every ticket's spec holds it.
  int gates = 0, tickets = 0;
  for (const auto& record : packtrain::testing::journal_records(dir / "out")) {
    if (record.name == "tickets/best-of-sweep") {
      ++gates;
      EXPECT_EQ(record.status, JobStatus::done);
      EXPECT_EQ(record.metrics.value("model", ""), best);
      EXPECT_NEAR(record.metrics.value("val_top1", 0.0), best_mean, 1e-5);
    } else if (rows.at(record.id).at("entry") == "tickets") {
      ++tickets;
      EXPECT_EQ(record.spec.value("model", ""), best) << record.name;
    }
  }
  EXPECT_EQ(gates, 1);
  EXPECT_EQ(tickets, 3);
  // The same jobs as lth run alone with that model.
  const auto alone = run_packtrain({"lth", "--model", best, "--epochs", "3", "--sparsities", "0.5,0.8", "--limit",
                                    "3000", "--seed", "3", "--out", (dir / "lth").string(), "--cores", "2", "--quiet"});
  ASSERT_EQ(alone.exit_code, 0) << alone.err;
  expect_entry_matches(rows, dir / "lth/results.csv", "tickets", {"sparsity", "test_top1"}, /*gates=*/1);
}

// Killed once the best: entry's jobs were planned: --resume plans them
// again from the gate's journal record and runs only those not done.
TEST(BatchCli, ResumeAfterSigkillPlansTheBestEntryAgainAndRunsOnlyWhatIsMissing) {
  TempDir dir;
  const auto plan = dir / "plan.toml";
  write_file(plan, kBestPlan);
  const auto out = dir / "out";
  const auto args =
      packtrain::testing::packtrain_argv({"batch", plan.string(), "--out", out.string(), "--cores", "2", "--quiet"});
  const int pid = packtrain::testing::start_command(args, dir / "killed.log");
  std::map<std::string, double> done_before;
  bool gate_done = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  while (std::chrono::steady_clock::now() < deadline && !gate_done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!std::filesystem::exists(out / "journal.sqlite")) continue;
    done_before.clear();
    try {
      for (const auto& r : Journal::open(out / "journal.sqlite")->records())
        if (r.status == JobStatus::done) {
          done_before[r.id] = r.started_at;
          gate_done = gate_done || r.name == "tickets/best-of-sweep";
        }
    } catch (const std::exception&) {
      continue;
    }
  }
  kill(pid, SIGKILL);
  const auto killed = packtrain::testing::wait_command(pid);
  ASSERT_EQ(killed.signal, SIGKILL);
  ASSERT_TRUE(gate_done);
  ASSERT_FALSE(std::filesystem::exists(out / "results.csv")) << "the batch ended before it could be killed";
  done_before = packtrain::testing::done_started_at(out);  // jobs may have ended between the last poll and the kill

  const auto resumed = run_command(with(args, {"--resume"}));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const auto records = packtrain::testing::journal_records(out);
  EXPECT_EQ(records.size(), 5u + 1u + 3u);  // the sweep's 5 rows, the gate, 3 tickets
  for (const auto& r : records) {
    EXPECT_EQ(r.status, JobStatus::done) << r.name;
    if (done_before.count(r.id)) {
      EXPECT_EQ(r.started_at, done_before[r.id]) << r.name << " ran again";
      EXPECT_EQ(r.attempts, 1) << r.name;
    }
  }
  std::map<std::string, int> by_entry;
  for (const auto& [id, row] : packtrain::testing::results_by_id(out / "results.csv")) ++by_entry[row.at("entry")];
  EXPECT_EQ(by_entry["sweep"], 5);
  EXPECT_EQ(by_entry["tickets"], 4);  // its gate and its 3 jobs
}

TEST(BatchCli, BestNamingAnEntryThatIsNotASweepOrThatOthersWaitForIsRefused) {
  TempDir dir;
  expect_refused(dir.path(), "[[hogwild]]\nname = \"h\"\n\n[[lth]]\nname = \"t\"\nmodel = \"best:h\"\n", "6",
                 "not a sweep that picks a best model");
  expect_refused(dir.path(), "[[lth]]\nname = \"t\"\nmodel = \"best:nobody\"\n", "3", "no entry is named 'nobody'");
  expect_refused(dir.path(), "[[kfold]]\nname = \"k\"\nfolds = \"best:k\"\n", "3", "best:ENTRY is for model(s)");
  // What the entry's command would refuse with a model the sweep may pick: refused now, not after the sweep.
  expect_refused(dir.path(),
                 "[[kfold]]\nname = \"k\"\nmodels = \"mlp\"\n\n[[lth]]\nname = \"t\"\nmodel = \"best:k\"\nepochs = 1\n"
                 "reset-epochs = 3\n",
                 "8", "best:k may pick it");  // the line of --epochs, which the message names
  // ... or that would give it another entry's jobs.
  expect_refused(dir.path(),
                 "[[kfold]]\nname = \"k\"\nmodels = \"mlp\"\n\n[[kfold]]\nname = \"k2\"\nmodels = \"best:k\"\n", "7",
                 "the same job twice");
  expect_refused(dir.path(),
                 "[[kfold]]\nname = \"k\"\n\n[[lth]]\nname = \"t\"\nmodel = \"best:k\"\n\n[[hogwild]]\nname = \"h\"\n"
                 "after = [\"t\"]\n",
                 "10", "an entry cannot wait for such an entry yet");
}

// [[train]]: the job of packtrain train alone (replicas: the same numbers on
// any number of cores), started on one core of the batch's run, growing
// onto idle ones, its checkpoints in OUT/checkpoints/ENTRY.
TEST(BatchCli, TrainEntryIsTheJobOfTrainAloneStartingOnOneCore) {
  TempDir dir;
  const auto plan = dir / "plan.toml";
  write_file(plan, R"(seed = 3
[[train]]
name = "big"
model = "lenet5"
epochs = 1
limit = 1500

[[kfold]]
name = "sweep"
models = "mlp"
schedules = "cosine"
folds = 2
epochs = 1
limit = 1500
)");
  const auto batch = run_packtrain({"batch", plan.string(), "--out", (dir / "batch").string(), "--cores", "2", "--quiet"});
  ASSERT_EQ(batch.exit_code, 0) << batch.err;
  const auto alone = run_packtrain({"train", "--model", "lenet5", "--epochs", "1", "--limit", "1500", "--seed", "3",
                                    "--out", (dir / "train").string(), "--cores", "2", "--quiet"});
  ASSERT_EQ(alone.exit_code, 0) << alone.err;
  const auto rows = packtrain::testing::results_by_id(dir / "batch/results.csv");
  expect_entry_matches(rows, dir / "train/results.csv", "big", {"model", "val_top1", "val_loss"});
  for (const auto& r : packtrain::testing::journal_records(dir / "batch")) {
    if (rows.at(r.id).at("entry") == "big") {
      EXPECT_EQ(r.cores.size(), 1u) << "started on one core";
    }
  }
  EXPECT_TRUE(std::filesystem::is_directory(dir / "batch/checkpoints/big"));
}

// The README's example plan: every kind of entry, and a best: one.
TEST(BatchCli, TheExamplePlanIsValidAndListsEveryEntry) {
  const auto r = run_packtrain({"batch", std::string(PACKTRAIN_EXAMPLES) + "/batch/plan.toml", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* entry : {"\nsweep ", "\nhogwild ", "\nlenet5 ", "\ntickets "})
    EXPECT_NE(r.out.find(entry), std::string::npos) << entry << " in:\n" << r.out;
  EXPECT_NE(r.out.find("planned once sweep has ended"), std::string::npos) << r.out;
}
