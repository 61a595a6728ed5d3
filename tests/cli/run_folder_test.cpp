// The run folder as a user meets it: --out must be new, empty or this same
// run (with --resume); a refused command leaves every byte as it was; a
// --serve port in use is refused before anything is written.
#include "common/cli_run.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

using namespace packtrain::testing;

namespace {

// The smallest kfold sweep (2 jobs); `flags` override or add options.
std::vector<std::string> kfold(const std::filesystem::path& out, std::map<std::string, std::string> flags = {},
                               std::vector<std::string> extra = {}) {
  std::map<std::string, std::string> options = {{"--models", "mlp"}, {"--schedules", "cosine"}, {"--folds", "2"},
                                                {"--epochs", "1"},   {"--limit", "400"}};
  for (auto& [flag, value] : flags) options[flag] = value;
  std::vector<std::string> args = {"kfold", "--out", out.string(), "--quiet"};
  for (const auto& [flag, value] : options) {
    args.push_back(flag);
    if (!value.empty()) args.push_back(value);
  }
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

void expect_refused(const CommandResult& r, const std::string& fragment) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << "expected '" << fragment << "' in: " << r.err;
}

// A TCP port on 127.0.0.1 that this process listens on while it lives.
class BusyPort {
 public:
  BusyPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd_, 1) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("cannot listen on a loopback port");
    port_ = ntohs(a.sin_port);
  }
  ~BusyPort() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace

TEST(RunFolder, ResumeRefusesAnotherSweepNamingTheFirstDifferenceAndTouchesNothing) {
  TempDir dir;
  const auto out = dir / "run";
  const auto first = run_packtrain(kfold(out));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const auto before = folder_bytes(out);
  ASSERT_TRUE(before.count("journal.sqlite"));

  // Each job-defining flag changed: refused, naming it, with every byte kept.
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>> changes = {
      {{{"--models", "lenet5"}}, "--models mlp there, lenet5 here"},
      {{{"--schedules", "warm"}}, "--schedules cosine there, warm here"},
      {{{"--folds", "3"}}, "--folds 2 there, 3 here"},
      {{{"--epochs", "2"}}, "--epochs 1 there, 2 here"},
      {{{"--limit", "500"}}, "--limit 400 there, 500 here"},
      {{{"--seed", "7"}}, "--seed 1 there, 7 here"},
      {{{"--batch-size", "32"}}, "--batch-size 64 there, 32 here"},
      {{{"--optimizer", "adam"}}, "--optimizer sgd there, adam here"},
      {{{"--lr", "0.2"}}, "--lr 0 there, 0.2 here"},
      {{{"--plain-folds", ""}}, "--plain-folds false there, true here"},
      {{{"--data", "mnist-digits"}}, "--data fashion-mnist there, mnist-digits here"},
      {{{"--shard", "1/2"}}, "--shard 0/1 there, 1/2 here"},
  };
  for (const auto& [flags, fragment] : changes) {
    SCOPED_TRACE(fragment);
    expect_refused(run_packtrain(kfold(out, flags, {"--resume"})), fragment);
    EXPECT_EQ(folder_bytes(out), before) << "a refused --resume changed the folder";
  }
  // Another command into a kfold run's folder.
  expect_refused(run_packtrain({"lth", "--epochs", "1", "--limit", "400", "--out", out.string(), "--resume", "--quiet"}),
                 "it is a kfold run, not lth");
  expect_refused(run_packtrain({"train", "--epochs", "1", "--limit", "400", "--out", out.string(), "--resume", "--quiet"}),
                 "it is a kfold run, not train");
  EXPECT_EQ(folder_bytes(out), before);

  // Run-level flags may differ; the same sweep resumes, with nothing left to run.
  const auto again = run_packtrain(kfold(out, {}, {"--resume", "--cores", "1", "--sample-ms", "50"}));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const auto speed = run_packtrain(kfold(out, {}, {"--resume"}));
  ASSERT_EQ(speed.exit_code, 0) << speed.err;
  EXPECT_NE(speed.out.find("nothing to run: all 2 jobs were done before (--resume)"), std::string::npos) << speed.out;
  EXPECT_EQ(speed.out.find("0.00x"), std::string::npos) << speed.out;
  EXPECT_EQ(read_results_csv(out / "results.csv").second.size(), 2u);
}

TEST(RunFolder, OutMustBeNewEmptyOrARun) {
  TempDir dir;
  // A folder holding a user's own files is not written into, with or without --resume.
  write_file(dir / "mine/results.csv", "precious\n");
  for (const std::vector<std::string>& extra : {std::vector<std::string>{}, std::vector<std::string>{"--resume"}}) {
    expect_refused(run_packtrain(kfold(dir / "mine", {}, extra)), "is not empty and holds no packtrain run");
    EXPECT_EQ(folder_bytes(dir / "mine"), (std::map<std::string, std::string>{{"results.csv", "precious\n"}}));
  }
  // A file where the folder should be.
  write_file(dir / "file", "x");
  expect_refused(run_packtrain(kfold(dir / "file")), "exists and is not a folder");
  EXPECT_EQ(read_file(dir / "file"), "x");
  // A finished run without --resume.
  std::filesystem::create_directories(dir / "empty");
  const auto fresh = run_packtrain(kfold(dir / "empty"));  // an empty folder is fine
  ASSERT_EQ(fresh.exit_code, 0) << fresh.err;
  const auto before = folder_bytes(dir / "empty");
  expect_refused(run_packtrain(kfold(dir / "empty")), "already holds a run");
  EXPECT_EQ(folder_bytes(dir / "empty"), before);
}

TEST(RunFolder, ServeOnAPortInUseIsRefusedBeforeAnythingIsWritten) {
  TempDir dir;
  BusyPort busy;
  const auto out = dir / "run";
  const auto refused = run_packtrain(kfold(out, {{"--serve", std::to_string(busy.port())}}));
  expect_refused(refused, std::to_string(busy.port()));
  EXPECT_FALSE(std::filesystem::exists(out)) << "a refused run left " << out;
  // The same command once the port is free is not refused as "already holds a run".
  busy.close();
  const auto ok = run_packtrain(kfold(out, {{"--serve", std::to_string(busy.port())}}));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST(RunFolder, ShardsOfASmallSweepShareItsJobsEvenly) {
  TempDir dir;
  // 4 jobs of equal cost over 2 shards: 2 and 2 (hashing once gave 0 and 4).
  std::size_t total = 0;
  for (const char* shard : {"0/2", "1/2"}) {
    const auto out = dir / (std::string("s") + shard[0]);
    const auto r = run_packtrain(kfold(out, {{"--folds", "4"}}, {"--shard", shard}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto rows = read_results_csv(out / "results.csv").second;
    EXPECT_EQ(rows.size(), 2u) << shard;
    total += rows.size();
  }
  EXPECT_EQ(total, 4u);
  // A share with no job says so instead of "0.00x the speed".
  const auto empty = run_packtrain({"kfold", "--models", "mlp", "--schedules", "cosine", "--folds", "2", "--epochs", "1",
                                "--limit", "400", "--shard", "2/3", "--out", (dir / "s2of3").string()});
  ASSERT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_NE(empty.out.find("nothing to run: this share of the sweep holds none of its jobs"), std::string::npos)
      << empty.out;
  EXPECT_EQ(empty.out.find("0.00x"), std::string::npos) << empty.out;
}

// A dashboard other machines can reach needs a token; the token is checked
// before anything is written, and never lands in the journal. (What the
// server answers with and without it: live_server_test.)
TEST(RunFolder, ADashboardOffLoopbackNeedsATokenAndTheTokenStaysOutOfTheJournal) {
  TempDir dir;
  BusyPort free_port;
  const auto port = std::to_string(free_port.port());
  free_port.close();
  const auto out = dir / "run";
  const std::string token = "tok-0123456789abcdef";
  {
    std::ofstream(dir / "token") << token << "\n";
    std::ofstream(dir / "empty") << "\n";
  }
  const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
      {{"--serve", port, "--bind", "0.0.0.0"}, "--token"},
      {{"--serve", port, "--bind", "0.0.0.0", "--token", "short"}, "at least 16"},
      {{"--token", token}, "--serve"},
      {{"--serve", port, "--token", token, "--token-file", (dir / "token").string()}, "give one"},
      {{"--serve", port, "--token-file", (dir / "missing").string()}, "cannot be read"},
      {{"--serve", port, "--token-file", (dir / "empty").string()}, "no token"},
  };
  for (const auto& [extra, fragment] : refused) {
    expect_refused(run_packtrain(kfold(out, {}, extra)), fragment);
    EXPECT_FALSE(std::filesystem::exists(out)) << fragment;
  }
  const auto ok = run_packtrain(kfold(out, {}, {"--serve", port, "--bind", "0.0.0.0", "--token-file",
                                                 (dir / "token").string()}));
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(read_file(out / "journal.sqlite").find(token), std::string::npos) << "the token is in the journal";
}

// The disk fills during the run (the shell's file-size limit: the journal's
// writes then fail with EFBIG, a real I/O error): one line saying so, exit
// 1, no results claimed; once the space is back, --resume finishes.
TEST(RunFolder, AJournalThatCannotBeWrittenStopsTheRunAndResumeFinishesIt) {
  TempDir dir;
  const auto out = dir / "run";
  auto args = kfold(out, {{"--schedules", "cosine,warm"}, {"--folds", "3"}});
  std::string command = "ulimit -f 200; trap '' XFSZ; exec";
  for (const auto& a : packtrain::testing::packtrain_argv(args, {})) command += " '" + a + "'";
  const auto full = run_command({"/bin/sh", "-c", command});
  EXPECT_EQ(full.exit_code, 1) << full.err;
  EXPECT_TRUE(one_line(full.err)) << full.err;
  EXPECT_NE(full.err.find("stopped: the journal cannot be written"), std::string::npos) << full.err;
  EXPECT_NE(full.err.find("--resume"), std::string::npos) << full.err;
  EXPECT_EQ(full.out.find("results: "), std::string::npos) << "results claimed: " << full.out;
  args.push_back("--resume");
  const auto resumed = run_packtrain(args);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(read_results_csv(out / "results.csv").second.size(), 6u);
}
