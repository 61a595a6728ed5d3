// What packtrain says, tried as a new user would: numbers that do not
// mislead, flags that are refused instead of ignored, help that agrees with
// the program, and --version.
#include "common/cli_run.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace packtrain::testing;

namespace {

std::vector<std::string> kSubcommands = {"kfold", "lth", "hogwild", "train", "report"};

void expect_refused(const CommandResult& r, const std::string& fragment) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << "expected '" << fragment << "' in: " << r.err;
}

}  // namespace

TEST(Messages, AGroupWithNoFinishedFoldShowsADashNotAZeroScore) {
  TempDir dir;
  // A learning rate this large diverges in the first epoch: no fold finishes.
  const auto r = run_packtrain({"kfold", "--models", "mlp", "--schedules", "cosine", "--folds", "2", "--epochs", "1",
                            "--limit", "400", "--lr", "1e9", "--out", (dir / "run").string(), "--quiet"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.out.find("0/2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("—"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("0.0000 ± 0.0000"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("<- best"), std::string::npos) << r.out;
}

TEST(Messages, RefusesFlagsThatWouldBeIgnored) {
  TempDir dir;
  expect_refused(run_packtrain({"train", "--model", "mlp", "--width-multiplier", "0.5", "--out", (dir / "a").string()}),
                 "--width-multiplier is for mobilenetv2");
  expect_refused(run_packtrain({"lth", "--rounds", "2", "--sparsities", "0.5", "--out", (dir / "b").string()}),
                 "--rounds cannot be used with --sparsities");
  expect_refused(run_packtrain({"lth", "--prune-rate", "0.3", "--out", (dir / "c").string()}),
                 "--prune-rate is the fraction each of --rounds removes");
  expect_refused(run_packtrain({"kfold", "--memory-per-job", "-1", "--out", (dir / "e").string()}),
                 "--memory-per-job must be a count of MiB, not -1");
  EXPECT_TRUE(folder_bytes(dir.path()).empty()) << "a refused command wrote something";
  // mobilenetv2 takes it (checked without training: a bad --epochs is refused after it).
  expect_refused(run_packtrain({"train", "--model", "mobilenetv2", "--width-multiplier", "0.5", "--epochs", "0", "--out",
                            (dir / "d").string()}),
                 "--epochs must be at least 1");
}

// The journal keeps every flag as JSON text: a value that is not UTF-8
// (found by fuzz_config in a --config file) is refused before anything is
// written, on the command line and in a --config file alike.
TEST(Messages, AValueThatIsNotUtf8IsOneLineExit2AndWritesNothing) {
  TempDir dir;
  const std::string latin1 = "mlp,l\xe9net";
  expect_refused(run_packtrain({"kfold", "--models", latin1, "--out", (dir / "a").string()}),
                 "--models: its value is not UTF-8 text");
  write_file(dir / "sweep.cfg", "schedules = cosine\nmodels = " + latin1 + "\n");
  const auto config = (dir / "sweep.cfg").string();
  const auto before = folder_bytes(dir.path());
  expect_refused(run_packtrain({"kfold", "--config", config, "--out", (dir / "b").string()}),
                 "--models: its value is not UTF-8 text");
  EXPECT_EQ(folder_bytes(dir.path()), before) << "a refused command wrote something";
}

// Boost.Program_options builds its messages by replacing placeholders with
// what the user typed, until none is left: a value holding "%value%" hung
// the command for ever (found by fuzz_config). Refused with one line.
TEST(Messages, AValueHoldingAMessagePlaceholderIsRefusedNotAHang) {
  TempDir dir;
  expect_refused(run_packtrain({"kfold", "--folds", "%value%", "--out", (dir / "a").string()}),
                 "for option '--folds' is invalid");
  write_file(dir / "sweep.cfg", "folds = x%value%\n%canonical_option% = 1\n");
  expect_refused(run_packtrain({"kfold", "--config", (dir / "sweep.cfg").string(), "--out", (dir / "b").string()}),
                 "error");
  EXPECT_FALSE(std::filesystem::exists(dir / "a"));
  EXPECT_FALSE(std::filesystem::exists(dir / "b"));
}

TEST(Messages, HelpAgreesWithTheProgram) {
  for (const auto& command : kSubcommands) {
    SCOPED_TRACE(command);
    const auto help = run_packtrain({command, "--help"});
    EXPECT_EQ(help.exit_code, 0) << help.err;
    // Defaults as a person writes them: 0.2, not 0.20000000000000001.
    EXPECT_EQ(help.out.find("00000000"), std::string::npos) << help.out;
    EXPECT_EQ(help.out.find("99999999"), std::string::npos) << help.out;
    if (command != "report") {
      EXPECT_NE(help.out.find("CIFAR-10"), std::string::npos) << "--data's help names CIFAR-10 folders";
      EXPECT_NE(help.out.find("--limit"), std::string::npos) << "every sweep command takes --limit";
    }
  }
  // train's flags all have defaults: the usage line does not make them look required.
  const auto train = run_packtrain({"train", "--help"});
  EXPECT_NE(train.out.find("usage: packtrain train [options] --out DIR"), std::string::npos) << train.out;
  EXPECT_NE(run_packtrain({"lth", "--help"}).out.find("(=0.2)"), std::string::npos);
  // report takes -q as well as --quiet.
  const auto report = run_packtrain({"report", "--help"});
  EXPECT_NE(report.out.find("-q [ --quiet ]"), std::string::npos) << report.out;
}

TEST(Messages, VersionNamesTheBuild) {
  for (const char* flag : {"--version", "-V"}) {
    const auto r = run_packtrain({flag});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("packtrain 0.", 0), 0u) << r.out;
    for (const char* part : {"LibTorch 1.", "MPI", "CUDA"}) EXPECT_NE(r.out.find(part), std::string::npos) << r.out;
  }
  EXPECT_NE(run_packtrain({"--help"}).out.find("--version"), std::string::npos);
}

// OpenBLAS falls back to its Prescott kernels on CPUs it does not know by
// model (this build machine's); packtrain starts again with better ones
// where the CPU has AVX2, and keeps an OPENBLAS_CORETYPE the user set.
TEST(Messages, VersionNamesTheBlasKernelsAndTheyAreTheCpusBest) {
  const auto r = run_packtrain({"--version"});
  const auto at = r.out.find("BLAS     OpenBLAS, ");
  ASSERT_NE(at, std::string::npos) << r.out;
  const auto line = r.out.substr(at, r.out.find('\n', at) - at);
  const auto cpuinfo = packtrain::testing::read_file("/proc/cpuinfo");
  const bool avx2 = cpuinfo.find(" avx2") != std::string::npos && cpuinfo.find(" fma") != std::string::npos;
  if (avx2) {
    EXPECT_EQ(line.find("OpenBLAS, Prescott kernels"), std::string::npos) << line;
  }

  const auto kept = run_command({"/usr/bin/env", "OPENBLAS_CORETYPE=Prescott", PACKTRAIN_CLI, "--version"});
  EXPECT_NE(kept.out.find("BLAS     OpenBLAS, Prescott kernels (OPENBLAS_CORETYPE=Prescott)"), std::string::npos)
      << kept.out;
}

TEST(Messages, KFoldCheckpointEveryWorksAndResumeGoesOnMidJob) {
  TempDir dir;
  const auto out = dir / "run";
  const std::vector<std::string> args = {PACKTRAIN_CLI, "kfold", "--models", "mlp", "--schedules", "cosine",
                                         "--folds", "2", "--epochs", "30", "--limit", "3000", "--checkpoint-every", "1",
                                         "--cores", "1", "--out", out.string(), "--quiet"};
  const int pid = start_command(args, dir / "run.log");
  // Kill it once the first job has checkpointed an epoch (and before the sweep can end).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  bool checkpointed = false;
  while (!checkpointed && std::chrono::steady_clock::now() < deadline) {
    std::error_code ec;
    if (std::filesystem::exists(out / "checkpoints", ec))
      for (const auto& job : std::filesystem::directory_iterator(out / "checkpoints", ec))
        for (const auto& file : std::filesystem::directory_iterator(job.path(), ec))
          checkpointed = checkpointed || file.path().extension() == ".pt";  // renamed into place: whole
    if (!checkpointed) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  wait_command(pid);
  ASSERT_TRUE(checkpointed) << read_file(dir / "run.log");

  auto resume = args;
  resume.erase(resume.begin());
  resume.push_back("--resume");
  const auto resumed = run_packtrain(resume);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const auto json = read_json_file(out / "results.json");
  int went_on = 0;
  for (const auto& job : json["jobs"]) {
    EXPECT_EQ(job["status"], "done");
    if (job["metrics"].contains("resumed_from")) ++went_on;
  }
  EXPECT_GE(went_on, 1) << "no job went on from its checkpoint: " << json.dump(1);
}

// GPUs in a build whose LibTorch has no CUDA (this machine's): asking for
// one is refused in one line that says why; "all" finds none and runs on
// the cores, saying so; the slot flags need --gpus and a sane value.
TEST(Messages, GpuRequestsACpuBuildCannotMeetAreOneLineAndWriteNothing) {
  TempDir dir;
  const auto out = (dir / "run").string();
  const std::vector<std::string> kfold = {"kfold", "--models", "mlp", "--schedules", "cosine", "--folds", "2",
                                          "--epochs", "1", "--limit", "400", "--out", out};
  auto with = [&](std::vector<std::string> extra) {
    auto args = kfold;
    args.insert(args.end(), extra.begin(), extra.end());
    return run_packtrain(args);
  };
  expect_refused(with({"--gpus", "1"}), "--gpus 1: no GPU found (this packtrain's LibTorch has no CUDA: build it "
                                        "where PyTorch has CUDA, docs/gpu.md)");
  expect_refused(with({"--gpus", "two"}), "--gpus must be 'all' or a count of GPUs, not 'two'");
  expect_refused(with({"--gpu-slots", "2"}), "--gpu-slots is for jobs on GPUs: give --gpus too");
  expect_refused(with({"--gpu-memory-per-job", "4000"}), "--gpu-memory-per-job is for jobs on GPUs: give --gpus too");
  expect_refused(with({"--gpus", "all", "--gpu-slots", "65"}), "--gpu-slots must be in 1..64");
  expect_refused(with({"--gpus", "all", "--gpu-memory-per-job", "-1"}), "--gpu-memory-per-job must be a count of MiB, not -1");
  EXPECT_TRUE(folder_bytes(dir.path()).empty()) << "a refused command wrote something";
  const auto all = with({"--gpus", "all"});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  EXPECT_NE(all.err.find("--gpus all: no GPU found (this packtrain's LibTorch has no CUDA: build it where PyTorch "
                         "has CUDA, docs/gpu.md); the jobs run on CPU cores"),
            std::string::npos)
      << all.err;
}
