// packtrain lth, run as a user runs it: a real process, real data, real files.
#include <packtrain/scheduler/journal.hpp>

#include "common/cli_run.hpp"
#include "packtrain_paths.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <thread>

using namespace packtrain;
using packtrain::testing::read_file;
using packtrain::testing::run_command;
using packtrain::testing::TempDir;

namespace {

std::vector<std::string> small_sweep(const std::filesystem::path& out, const std::vector<std::string>& extra = {}) {
  return packtrain::testing::packtrain_argv(
      {"lth", "--model", "mlp", "--epochs", "2", "--reset-epochs", "0,1", "--sparsities", "0.5,0.9", "--limit",
       "600", "--out", out.string()},
      extra);
}

std::vector<std::string> csv_header(const std::filesystem::path& csv) {
  std::istringstream in(read_file(csv));
  std::string line;
  std::getline(in, line);
  std::vector<std::string> header;
  std::stringstream h(line);
  for (std::string c; std::getline(h, c, ',');) header.push_back(c);
  return header;
}

}  // namespace

TEST(LthCli, RunsTheSweepWritesItsFilesAndResumeAfterCompletionRunsNothing) {
  TempDir dir;
  const auto out = dir / "run";
  const auto first = run_command(small_sweep(out, {"--transfer", "mnist-digits"}));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  // The table: one line per reset epoch, the dense figure, the winner or its absence, the transfer.
  EXPECT_NE(first.out.find("dense model: "), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("reset epoch |      50.0%      90.0%"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("          0 |"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("          1 |"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("winning ticket: "), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("transfer to mnist-digits: winning ticket "), std::string::npos) << first.out;

  const auto header = csv_header(out / "results.csv");
  for (const char* col : {"job", "status", "model", "epochs", "val_top1", "sparsity", "reset_epoch", "test_top1"})
    EXPECT_NE(std::find(header.begin(), header.end(), col), header.end()) << col;
  const auto json = nlohmann::json::parse(read_file(out / "results.json"));
  ASSERT_EQ(json["jobs"].size(), 7u);  // dense, 4 retrains, 2 transfer jobs
  EXPECT_EQ(json["summary"]["done"], 7);
  EXPECT_TRUE(json["summary"]["dense_top1"].is_number());
  EXPECT_TRUE(json["summary"]["transfer"]["ticket_top1"].is_number());
  EXPECT_TRUE(json["summary"]["transfer"]["scratch_top1"].is_number());
  for (const char* f : {"masks/sparsity-0.5000_reset-0.pt", "masks/sparsity-0.9000_reset-1.pt",
                        "tickets/sparsity-0.9000_reset-0.pt", "tickets/sparsity-0.5000_reset-1.json"})
    EXPECT_TRUE(std::filesystem::is_regular_file(out / f)) << f;

  std::map<std::string, double> started;
  {
    auto journal = Journal::open(out / "journal.sqlite");
    EXPECT_EQ(journal->meta("metric").value_or(""), "test_top1");
    EXPECT_EQ(journal->meta("plot_x").value_or(""), "sparsity");
    EXPECT_EQ(journal->meta("plot_series").value_or(""), "reset_epoch");
    EXPECT_EQ(nlohmann::json::parse(journal->meta("group_by").value_or("null")),
              nlohmann::json::array({"sparsity", "reset_epoch"}));
    EXPECT_DOUBLE_EQ(std::stod(journal->meta("plot_reference").value_or("nan")),
                     json["summary"]["dense_top1"].get<double>());
    for (const auto& r : journal->records()) started[r.id] = r.started_at;
  }

  const auto again = run_command(small_sweep(out, {"--transfer", "mnist-digits", "--resume"}));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  auto journal = Journal::open(out / "journal.sqlite");
  const auto records = journal->records();
  ASSERT_EQ(records.size(), 7u);
  for (const auto& r : records) {
    EXPECT_EQ(r.started_at, started.at(r.id)) << r.name << " ran again";
    EXPECT_EQ(r.attempts, 1) << r.name;
  }
  const auto resumed = nlohmann::json::parse(read_file(out / "results.json"));
  EXPECT_EQ(resumed["summary"]["resumed"], 7);
  EXPECT_EQ(resumed["summary"]["dense_top1"], json["summary"]["dense_top1"]);
}

TEST(LthCli, BadInputIsOneLineExit2AndWritesNothing) {
  TempDir dir;
  const std::vector<std::vector<std::string>> bad = {
      {"--sparsities", "0"},          {"--sparsities", "1"},          {"--sparsities", "0.5,1.2"},
      {"--sparsities", "0.5,x"},      {"--reset-epochs", "3"},        {"--reset-epochs", "0,-1"},
      {"--rounds", "0"},              {"--rounds", "2", "--prune-rate", "0"},
      {"--model", "nosuchnet"},       {"--tolerance", "-1"},          {"--epochs", "0"},
      {"--schedule", "sometimes"},    {"--transfer", (dir / "missing").string()},
      {"--cores", "999"},             {"--no-such-flag"},
  };
  for (const auto& args : bad) {
    std::vector<std::string> argv = {PACKTRAIN_CLI, "lth", "--epochs", "3", "--out", (dir / "new").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = run_command(argv);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(r.exit_code, 2) << joined << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << joined << r.err;
    EXPECT_EQ(r.err.rfind("packtrain lth: error: ", 0), 0u) << joined << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "new"));
}

TEST(LthCli, HelpDescribesEveryOption) {
  const auto r = run_command({PACKTRAIN_CLI, "lth", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"--model", "--epochs", "--reset-epochs", "--sparsities", "--per-layer", "--rounds",
                           "--prune-rate", "--tolerance", "--transfer", "--schedule", "--serial", "--resume", "--cores",
                           "--seed", "--config", "--quiet", "--data", "--out", "--batch-size", "--optimizer", "--lr",
                           "--limit"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  const auto top = run_command({PACKTRAIN_CLI, "--help"});
  EXPECT_NE(top.out.find("lth"), std::string::npos);
}

TEST(LthCli, IterativePerLayerSerialRunKeepsChainsInOrder) {
  TempDir dir;
  const auto r = run_command({PACKTRAIN_CLI, "lth", "--epochs", "2", "--reset-epochs", "1", "--rounds", "2",
                              "--prune-rate", "0.5", "--per-layer", "--limit", "300", "--serial", "--quiet", "--out",
                              (dir / "run").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto journal = Journal::open(dir / "run/journal.sqlite");
  const auto records = journal->records();
  ASSERT_EQ(records.size(), 3u);
  for (std::size_t i = 1; i < records.size(); ++i) {
    EXPECT_EQ(records[i].spec["round"], static_cast<int>(i));
    EXPECT_EQ(records[i].spec["scope"], "per-layer");
    EXPECT_GE(records[i].started_at, records[i - 1].ended_at);
    EXPECT_EQ(records[i].cores, std::vector<int>{records[0].cores[0]});  // --serial: one core
  }
  EXPECT_NEAR(records[1].metrics["sparsity"].get<double>(), 0.5, 1e-3);
  EXPECT_NEAR(records[2].metrics["sparsity"].get<double>(), 0.75, 1e-3);
  EXPECT_NE(r.out.find(" r2  75.0%"), std::string::npos) << r.out;
}

TEST(LthCli, AKilledRunResumesWithEveryJobDoneOnceAndNothingDoneRunAgain) {
  // One core: the retrains run one after another, so the kill lands between
  // some finished and some unstarted ones, one of them running.
  const auto sweep = [](const std::filesystem::path& out, bool resume) {
    std::vector<std::string> argv = {PACKTRAIN_CLI, "lth",     "--model", "mlp",   "--epochs",     "3",
                                     "--reset-epochs", "0,1,2", "--sparsities", "0.5,0.9", "--limit", "2000",
                                     "--cores",        "1",     "--out",        out.string()};
    if (resume) argv.push_back("--resume");
    return argv;
  };
  const std::set<std::string> names = {"mlp/dense",
                                       "mlp/sparsity0.5000/reset0", "mlp/sparsity0.9000/reset0",
                                       "mlp/sparsity0.5000/reset1", "mlp/sparsity0.9000/reset1",
                                       "mlp/sparsity0.5000/reset2", "mlp/sparsity0.9000/reset2"};
  TempDir dir;
  const auto full = run_command(sweep(dir / "full", false));
  ASSERT_EQ(full.exit_code, 0) << full.err;
  const auto uninterrupted = packtrain::testing::journal_by_id(dir / "full");
  ASSERT_EQ(uninterrupted.size(), names.size());

  for (const int signal : {SIGKILL, SIGINT}) {
    SCOPED_TRACE(signal == SIGKILL ? "SIGKILL" : "SIGINT");
    const auto out = dir / ("killed-" + std::to_string(signal));
    const int pid = packtrain::testing::start_command(sweep(out, false), dir / "killed.log");
    // Wait until the dense job and at least one retrain are done.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    int done = 0;
    while (std::chrono::steady_clock::now() < deadline && done < 2) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (!std::filesystem::exists(out / "journal.sqlite")) continue;
      try {
        done = 0;
        for (const auto& [id, r] : packtrain::testing::journal_by_id(out)) done += r.status == JobStatus::done;
      } catch (const std::exception&) {
      }
    }
    kill(pid, signal);
    const auto killed = packtrain::testing::wait_command(pid);
    if (signal == SIGKILL) EXPECT_EQ(killed.signal, SIGKILL);
    else EXPECT_EQ(killed.exit_code, 130) << read_file(dir / "killed.log");
    ASSERT_GE(done, 2);

    // What the journal holds once the process is gone: the jobs done before.
    const auto before = packtrain::testing::journal_by_id(out);
    std::map<std::string, JobRecord> done_before;
    for (const auto& [id, r] : before)
      if (r.status == JobStatus::done) done_before[id] = r;
    ASSERT_LT(done_before.size(), names.size()) << "the sweep finished before it could be killed";
    if (signal == SIGINT) {
      for (const auto& [id, r] : before) EXPECT_NE(r.status, JobStatus::running) << r.name << " left running";
    }

    const auto resumed = run_command(sweep(out, true));
    ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
    const auto after = packtrain::testing::journal_by_id(out);
    std::set<std::string> seen;
    for (const auto& [id, r] : after) {
      seen.insert(r.name);
      EXPECT_EQ(r.status, JobStatus::done) << r.name;
      if (done_before.count(id)) {
        EXPECT_EQ(r.started_at, done_before[id].started_at) << r.name << " ran again";
        EXPECT_EQ(r.attempts, done_before[id].attempts) << r.name << " ran again";
      }
      // The same job, the same seed, the same result as a run never killed.
      ASSERT_TRUE(uninterrupted.count(id)) << r.name;
      EXPECT_EQ(r.metrics.at("test_top1"), uninterrupted.at(id).metrics.at("test_top1")) << r.name;
    }
    EXPECT_EQ(seen, names);
    EXPECT_EQ(after.size(), names.size());

    // results.json: one row per job, each done, and the resumed ones counted.
    const auto json = nlohmann::json::parse(read_file(out / "results.json"));
    std::multiset<std::string> rows;
    for (const auto& j : json["jobs"]) {
      rows.insert(j["job"].get<std::string>());
      EXPECT_EQ(j["status"], "done") << j["name"];
    }
    std::multiset<std::string> ids;
    for (const auto& [id, r] : after) ids.insert(id);
    EXPECT_EQ(rows, ids);
    // The resumed run ran exactly the jobs that were not done.
    EXPECT_EQ(json["summary"]["resumed"], static_cast<int>(done_before.size()));
    EXPECT_EQ(json["summary"]["done"], static_cast<int>(names.size() - done_before.size()));
  }
}

// Replicas: a job's numbers do not depend on its cores. lenet5 jobs of one
// core growing onto an idle one and jobs of two cores give the same bits,
// dense and retrain alike (the retrain's mask kept after every step).
TEST(LthCli, ReplicaJobsGiveTheSameNumbersOnOneCoreGrowingAndOnTwo) {
  TempDir dir;
  const std::vector<std::string> sweep = {"lth", "--model", "lenet5", "--epochs", "2", "--reset-epochs", "0",
                                          "--sparsities", "0.8", "--limit", "1200", "--micro-batch", "16", "--quiet"};
  const auto a = run_command(packtrain::testing::packtrain_argv(
      sweep, {"--cores-per-job", "1", "--max-cores-per-job", "2", "--out", (dir / "growing").string()}));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const auto b = run_command(
      packtrain::testing::packtrain_argv(sweep, {"--cores-per-job", "2", "--out", (dir / "two").string()}));
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const auto ra = packtrain::testing::results_by_id(dir / "growing/results.csv");
  const auto rb = packtrain::testing::results_by_id(dir / "two/results.csv");
  ASSERT_EQ(ra.size(), 2u);
  ASSERT_EQ(rb.size(), 2u);
  for (const auto& [id, row] : ra) {
    ASSERT_TRUE(rb.count(id)) << id;
    const auto cell = [](const auto& r, const char* col) { return r.count(col) ? r.at(col) : std::string("(none)"); };
    for (const char* col : {"status", "kind", "sparsity", "test_top1", "val_loss", "weights_left"})
      EXPECT_EQ(cell(row, col), cell(rb.at(id), col)) << id << " " << col;
    EXPECT_NE(cell(row, "test_top1"), "(none)") << id;
  }
  for (const auto& [id, r] : packtrain::testing::journal_by_id(dir / "two")) {
    EXPECT_EQ(r.status, JobStatus::done) << r.name;
    EXPECT_EQ(r.spec.value("micro_batch", 0), 16) << r.name << " trained replicas";
    EXPECT_EQ(r.metrics.value("peak_replicas", 0), 2) << r.name;
  }
  // The dense figure and the ticket's are in the table, as for one-core jobs.
  EXPECT_NE(b.out.find("dense model: "), std::string::npos) << b.out;
}

TEST(LthCli, BadCoreOptionsAreOneLineExit2) {
  TempDir dir;
  const std::vector<std::vector<std::string>> bad = {
      {"--cores-per-job", "2", "--micro-batch", "48"},    // does not divide --batch-size 64
      {"--micro-batch", "16"},                            // one-core jobs train no replicas
      {"--cores-per-job", "2", "--max-cores-per-job", "1"},
      {"--cores-per-job", "99"},
      {"--cores-per-job", "2", "--parallelism", "sometimes"},
  };
  for (const auto& extra : bad) {
    auto args = extra;
    args.insert(args.end(), {"--out", (dir / "new").string()});
    const auto r = run_command(packtrain::testing::packtrain_argv({"lth", "--epochs", "2", "--limit", "300"}, args));
    EXPECT_EQ(r.exit_code, 2) << extra[0] << " " << extra[1] << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir / "new")) << extra[0];
  }
}
