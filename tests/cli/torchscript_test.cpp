// TorchScript models (--model PATH.pt) and NumPy arrays (--data) in every
// sweep, run as a user runs them: kfold, lth and hogwild end to end, resume
// after a kill, job ids that follow the file's content, and files that are
// refused before anything runs.
#include "common/cli_run.hpp"
#include "common/fashion_arrays.hpp"
#include "packtrain_paths.hpp"

#include <packtrain/scheduler/journal.hpp>

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>

using namespace packtrain;
using packtrain::testing::packtrain_argv;
using packtrain::testing::read_json_file;
using packtrain::testing::results_by_id;
using packtrain::testing::run_command;
using packtrain::testing::TempDir;

namespace {

std::string fixture(const std::string& name) { return std::string(PACKTRAIN_TORCHSCRIPT_FIXTURES) + "/" + name; }

std::vector<std::string> kfold_of(const std::string& models, const std::filesystem::path& out,
                                  const std::vector<std::string>& extra = {}) {
  return packtrain_argv({"kfold", "--models", models, "--schedules", "cosine", "--folds", "2", "--epochs", "1",
                         "--limit", "2000", "--out", out.string(), "--quiet"},
                        extra);
}

std::set<std::string> ids_of(const std::filesystem::path& csv) {
  std::set<std::string> ids;
  for (const auto& [id, row] : results_by_id(csv)) ids.insert(id);
  return ids;
}

}  // namespace

TEST(TorchScriptCli, KFoldTrainsAFileBesideAZooModelUnderItsStem) {
  TempDir dir;
  const auto r = run_command(kfold_of(fixture("tiny_mlp.pt") + ",mlp", dir / "run"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = results_by_id(dir / "run/results.csv");
  ASSERT_EQ(rows.size(), 4u);
  int files = 0;
  for (const auto& [id, row] : rows) {
    EXPECT_EQ(row.at("status"), "done") << id;
    if (row.at("model") != "tiny_mlp") continue;
    ++files;
    EXPECT_GT(std::stod(row.at("val_top1")), 0.4) << "a trained 10-class model is far above chance";
  }
  EXPECT_EQ(files, 2);
  // The spec holds the file's hash; a zoo model's holds none.
  const auto json = read_json_file(dir / "run/results.json");
  for (const auto& job : json["jobs"]) {
    const bool file = job["spec"]["model"] == "tiny_mlp";
    EXPECT_EQ(job["spec"].contains("model_hash"), file) << job.dump();
    if (file) {
      EXPECT_EQ(job["spec"]["model_hash"].get<std::string>().size(), 16u);
    }
  }
}

TEST(TorchScriptCli, LotteryTicketSweepPrunesTheFilesWeightsByName) {
  TempDir dir;
  const auto r = run_command(packtrain_argv({"lth", "--model", fixture("lenet_300_100.pt"), "--epochs", "2",
                                             "--sparsities", "0.5,0.9", "--reset-epochs", "0", "--limit", "2000",
                                             "--out", (dir / "run").string(), "--quiet"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = results_by_id(dir / "run/results.csv");
  ASSERT_EQ(rows.size(), 3u);  // dense, then a ticket per sparsity
  std::set<std::string> sparsities;
  for (const auto& [id, row] : rows) {
    EXPECT_EQ(row.at("status"), "done") << id;
    EXPECT_EQ(row.at("model"), "lenet_300_100");
    EXPECT_GT(std::stod(row.at("test_top1")), 0.4);
    sparsities.insert(row.at("sparsity"));
  }
  EXPECT_EQ(sparsities.size(), 3u);
  // The tickets' masks were saved (what they cover: lth_tests' ScriptedModelMasks).
  EXPECT_TRUE(std::filesystem::exists(dir / "run/masks/sparsity-0.9000_reset-0.pt"));
}

TEST(TorchScriptCli, HogwildWorkersShareTheFilesParameters) {
  TempDir dir;
  const auto r = run_command(packtrain_argv({"hogwild", "--model", fixture("tiny_mlp.pt"), "--epochs", "2", "--limit",
                                             "4000", "--cores", "2", "--out", (dir / "run").string(), "--quiet"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = results_by_id(dir / "run/results.csv");
  ASSERT_EQ(rows.size(), 1u);
  const auto& row = rows.begin()->second;
  EXPECT_EQ(row.at("status"), "done");
  EXPECT_EQ(row.at("model"), "tiny_mlp");
  EXPECT_GT(std::stod(row.at("test_top1")), 0.6);
}

TEST(TorchScriptCli, JobIdsFollowTheFilesContentNotItsPath) {
  TempDir dir;
  std::filesystem::create_directories(dir / "a");
  std::filesystem::create_directories(dir / "b");
  std::filesystem::copy_file(fixture("tiny_mlp.pt"), dir / "a/net.pt");
  std::filesystem::copy_file(fixture("tiny_mlp.pt"), dir / "b/net.pt");
  ASSERT_EQ(run_command(kfold_of((dir / "a/net.pt").string(), dir / "run-a")).exit_code, 0);
  ASSERT_EQ(run_command(kfold_of((dir / "b/net.pt").string(), dir / "run-b")).exit_code, 0);
  EXPECT_EQ(ids_of(dir / "run-a/results.csv"), ids_of(dir / "run-b/results.csv"));

  // The same name, another network: every job is new. --resume of the old
  // run says its job list differs and leaves it as it was.
  std::filesystem::copy_file(fixture("lenet_300_100.pt"), dir / "a/net.pt",
                             std::filesystem::copy_options::overwrite_existing);
  const auto before = packtrain::testing::folder_bytes(dir / "run-a");
  const auto resumed = run_command(kfold_of((dir / "a/net.pt").string(), dir / "run-a", {"--resume"}));
  EXPECT_EQ(resumed.exit_code, 2) << resumed.err;
  EXPECT_NE(resumed.err.find("its job list differs"), std::string::npos) << resumed.err;
  EXPECT_EQ(packtrain::testing::folder_bytes(dir / "run-a"), before);
  ASSERT_EQ(run_command(kfold_of((dir / "a/net.pt").string(), dir / "run-c")).exit_code, 0);
  const auto old_ids = ids_of(dir / "run-b/results.csv"), new_ids = ids_of(dir / "run-c/results.csv");
  EXPECT_EQ(new_ids.size(), 2u);
  for (const auto& id : new_ids) EXPECT_EQ(old_ids.count(id), 0u) << id;
}

TEST(TorchScriptCli, ResumeAfterSigkillRunsOnlyWhatIsMissing) {
  TempDir dir;
  const auto out = dir / "run";
  const auto argv = packtrain_argv({"kfold", "--models", fixture("lenet_300_100.pt"), "--schedules", "cosine,warm",
                                    "--folds", "3", "--epochs", "2", "--limit", "9000", "--cores", "1", "--out",
                                    out.string(), "--quiet"});
  const int pid = packtrain::testing::start_command(argv, dir / "run.log");
  std::map<std::string, double> done_before;  // id -> started_at
  const bool two_done = packtrain::testing::wait_until(
      [&] {
        if (!std::filesystem::exists(out / "journal.sqlite")) return false;
        try {
          done_before.clear();
          for (const auto& r : Journal::open(out / "journal.sqlite")->records())
            if (r.status == JobStatus::done) done_before[r.id] = r.started_at;
        } catch (const std::exception&) {
          return false;
        }
        return done_before.size() >= 2;
      },
      std::chrono::seconds(120));
  kill(pid, SIGKILL);
  const auto killed = packtrain::testing::wait_command(pid);
  ASSERT_TRUE(two_done) << packtrain::testing::read_file(dir / "run.log");
  ASSERT_EQ(killed.signal, SIGKILL) << "the sweep ended before the kill: make its jobs longer";
  done_before = packtrain::testing::done_started_at(out);  // jobs may have ended between the last poll and the kill
  ASSERT_LT(done_before.size(), 6u);

  auto resume = argv;
  resume.push_back("--resume");
  const auto r = run_command(resume);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto journal = packtrain::testing::journal_by_id(out);
  ASSERT_EQ(journal.size(), 6u);
  for (const auto& [id, record] : journal) {
    EXPECT_EQ(record.status, JobStatus::done) << id;
    // What was done before the kill was not run again.
    if (done_before.count(id)) {
      EXPECT_EQ(record.started_at, done_before.at(id)) << id;
    }
  }
}

TEST(TorchScriptCli, FilesThatCannotBeTrainedAreOneLineExit2AndNothingWritten) {
  TempDir dir;
  packtrain::testing::write_file(dir / "text.pt", "this is not a model\n");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"kfold", "--models", fixture("state_dict.pt")}, "is not a TorchScript module"},
      {{"kfold", "--models", (dir / "text.pt").string()}, "is not a TorchScript module"},
      {{"lth", "--model", fixture("wrong_width.pt")}, "must return [N, 10] logits"},
      {{"hogwild", "--model", fixture("tuple_out.pt")}, "must return one tensor of logits"},
      {{"train", "--model", fixture("two_inputs.pt")}, "must take one tensor of images"},
      {{"kfold", "--models", (dir / "missing.pt").string()}, "not found"},
      {{"kfold", "--models", fixture("tiny_mlp.pt") + "," + (dir / "tiny_mlp.pt").string()}, "would both be named"},
      {{"train", "--model", fixture("dropout_mlp.pt"), "--parallelism", "replicas", "--cores", "2"},
       "has dropout, whose masks would depend on the replica"},
      {{"train", "--model", fixture("frozen_mlp.pt"), "--parallelism", "replicas", "--cores", "2"},
       "has a frozen parameter (fc1.weight, requires_grad False)"},
      {{"kfold", "--models", fixture("tiny_mlp.pt"), "--data", "mnist-digits", "--limit", "100"}, ""},  // controls
      {{"kfold", "--models", fixture("frozen_mlp.pt"), "--limit", "100"}, ""},
  };
  std::filesystem::copy_file(fixture("tiny_mlp.pt"), dir / "tiny_mlp.pt");
  for (const auto& [args, expected] : cases) {
    auto argv = packtrain_argv(args, {"--epochs", "1", "--out", (dir / "out").string(), "--quiet"});
    const auto r = run_command(argv);
    if (expected.empty()) {  // a good model file on another dataset of 28x28 images runs
      EXPECT_EQ(r.exit_code, 0) << r.err;
      std::filesystem::remove_all(dir / "out");
      continue;
    }
    EXPECT_EQ(r.exit_code, 2) << args[0] << " " << args[2] << ": " << r.err;
    EXPECT_TRUE(packtrain::testing::one_line(r.err)) << r.err;
    EXPECT_NE(r.err.find(expected), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir / "out")) << args[2] << ": a refused command wrote its folder";
  }
}

TEST(NumpyCli, ASweepOnFashionMnistArraysTrainsAndRecordsTheNormalization) {
  TempDir dir;
  packtrain::testing::write_fashion_arrays(dir / "arrays", 2000, 500);
  const auto r = run_command(kfold_of(fixture("tiny_mlp.pt"), dir / "run", {"--data", (dir / "arrays").string()}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = results_by_id(dir / "run/results.csv");
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& [id, row] : rows) {
    EXPECT_EQ(row.at("status"), "done");
    EXPECT_GT(std::stod(row.at("val_top1")), 0.5);
  }
  const auto json = read_json_file(dir / "run/results.json");
  const auto& norm = json["summary"]["data_normalization"];
  ASSERT_EQ(norm["mean"].size(), 1u) << json["summary"].dump();
  // Fashion-MNIST's pixels: mean about 0.286, std about 0.353 (of bytes / 255).
  EXPECT_NEAR(norm["mean"][0].get<double>(), 0.286, 0.02);
  EXPECT_NEAR(norm["std"][0].get<double>(), 0.353, 0.02);
  for (const auto& job : json["jobs"]) EXPECT_EQ(job["spec"]["data"], "arrays");
}

TEST(NumpyCli, BadArraysAreOneLineExit2AndNothingWritten) {
  TempDir dir;
  using packtrain::testing::npy;
  using packtrain::testing::write_file;
  const std::vector<std::uint8_t> images(6 * 4 * 4, 7);
  const auto good = [&](const std::filesystem::path& d) {
    write_file(d / "x_train.npy", npy("|u1", {6, 4, 4}, images));
    write_file(d / "y_train.npy", npy("<i8", {6}, std::vector<std::int64_t>{0, 1, 2, 0, 1, 2}));
  };
  struct Case {
    std::string name, expected;
    std::function<void(const std::filesystem::path&)> spoil;
  };
  const std::vector<Case> cases = {
      {"dtype", "x_train.npy: dtype int64", [&](const std::filesystem::path& d) {
         write_file(d / "x_train.npy", npy("<i8", {6, 4, 4}, std::vector<std::int64_t>(96, 1)));
       }},
      {"counts", "holds 6 images but", [&](const std::filesystem::path& d) {
         write_file(d / "y_train.npy", npy("<i8", {5}, std::vector<std::int64_t>{0, 1, 2, 0, 1}));
       }},
      {"range", "y_train.npy", [&](const std::filesystem::path& d) {
         write_file(d / "y_train.npy", npy("<i8", {6}, std::vector<std::int64_t>{0, 1, -3, 0, 1, 2}));
       }},
      {"truncated", "x_train.npy", [&](const std::filesystem::path& d) {
         const auto whole = npy("|u1", {6, 4, 4}, images);
         write_file(d / "x_train.npy", whole.substr(0, whole.size() - 10));
       }},
  };
  for (const auto& c : cases) {
    const auto arrays = dir / c.name;
    good(arrays);
    c.spoil(arrays);
    const auto r = run_command(packtrain_argv({"kfold", "--models", fixture("tiny_mlp.pt"), "--data", arrays.string(),
                                               "--out", (dir / "out").string(), "--quiet"}));
    EXPECT_EQ(r.exit_code, 2) << c.name << ": " << r.err;
    EXPECT_TRUE(packtrain::testing::one_line(r.err)) << r.err;
    EXPECT_NE(r.err.find(c.expected), std::string::npos) << c.name << ": " << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir / "out")) << c.name << ": a refused command wrote its folder";
  }
}

// A forward that fails on a training batch (after passing the check on two
// images) fails its jobs with the module's own message; the run goes on.
TEST(TorchScriptCli, AForwardThatFailsWhileTrainingFailsItsJobsWithItsMessage) {
  TempDir dir;
  const auto r = run_command(kfold_of(fixture("fails_on_large_batches.pt") + ",mlp", dir / "run"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const auto json = read_json_file(dir / "run/results.json");
  int failed = 0, done = 0;
  for (const auto& job : json["jobs"]) {
    if (job["spec"]["model"] == "mlp") {
      done += job["status"] == "done";
      continue;
    }
    EXPECT_EQ(job["status"], "failed");
    const auto message = job["message"].get<std::string>();
    EXPECT_NE(message.find("this model takes at most 8 images at a time"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    ++failed;
  }
  EXPECT_EQ(failed, 2);
  EXPECT_EQ(done, 2);
}
