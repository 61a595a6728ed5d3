// The crash report a supervised child leaves its parent (crash_report.hpp),
// in child processes of their own: the fault ends the child by its signal,
// and the line in the pipe names the job whose thread faulted.
#include <packtrain/scheduler/crash_report.hpp>
#include <packtrain/scheduler/job_runner.hpp>

#include "scheduler/runner_fixture.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <functional>
#include <string>
#include <thread>

namespace {

using namespace packtrain;
using packtrain::testing::Counter;
using packtrain::testing::kPatience;
using packtrain::testing::sleeping_job;
using packtrain::testing::VirtualRun;

struct Crash {
  std::string report;  // what the child wrote to the pipe
  int signal = 0;      // the signal that ended it (0: it exited)
  int exit_code = -1;
};

// Runs `body` in a child whose crash report goes to a pipe; returns what
// came through it and how the child ended.
Crash in_child(const std::function<void()>& body) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    install_crash_report(fds[1]);
    body();
    _exit(0);
  }
  close(fds[1]);
  Crash crash;
  char buf[256];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) crash.report.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) crash.signal = WTERMSIG(status);
  if (WIFEXITED(status)) crash.exit_code = WEXITSTATUS(status);
  return crash;
}

// A runner with a job that waits and a job that does `fault` on its thread.
std::string run_faulting_job(const std::function<void()>& fault) {
  VirtualRun r(2);
  auto waiting = std::make_shared<Counter>();
  Job bystander = sleeping_job("bystander", 0);
  bystander.run = [waiting](JobContext& ctx) {
    waiting->add(1);
    waiting->wait_for(2);  // until the other job ran: it never returns (the fault ends the process)
    return JobOutcome{};
  };
  Job faulting = sleeping_job("faulting", 0);
  const std::string id = faulting.id();
  faulting.run = [waiting, fault](JobContext&) {
    waiting->wait_for(1);  // the bystander is running too
    fault();
    return JobOutcome{};
  };
  r.runner->add(bystander);
  r.runner->add(faulting);
  r.runner->run(r.options);
  return id;
}

TEST(CrashReport, AFaultInAJobNamesThatJobAndEndsTheProcessByItsSignal) {
  const std::string id = sleeping_job("faulting", 0).id();
  const auto crash = in_child([] { run_faulting_job([] { raise(SIGSEGV); }); });
  EXPECT_EQ(crash.signal, SIGSEGV) << "exit code " << crash.exit_code;
  EXPECT_EQ(crash.report, "crash " + std::to_string(SIGSEGV) + " " + id + "\n");
}

TEST(CrashReport, ARealInvalidWriteIsReportedToo) {
  const std::string id = sleeping_job("faulting", 0).id();
  const auto crash = in_child([] {
    // A page that may not be touched (not address 0: some kernels let a
    // process map it, and this machine's writes there went through).
    void* page = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    run_faulting_job([page] {
      int* volatile forbidden = static_cast<int*>(page);  // volatile: the write is made
      *forbidden = 1;
    });
  });
  EXPECT_EQ(crash.signal, SIGSEGV) << "exit code " << crash.exit_code;
  EXPECT_EQ(crash.report, "crash " + std::to_string(SIGSEGV) + " " + id + "\n");
}

TEST(CrashReport, AnAbortOnAThreadThatRunsNoJobNamesNone) {
  const auto crash = in_child([] {
    {
      const RunningJobMark mark("0123456789abcdef");
    }  // ended: this thread runs no job any more
    std::thread([] { std::abort(); }).join();
  });
  EXPECT_EQ(crash.signal, SIGABRT) << "exit code " << crash.exit_code;
  EXPECT_EQ(crash.report, "crash " + std::to_string(SIGABRT) + " -\n");
}

TEST(CrashReport, AMarkHoldsOnlyOnItsThreadAndOnlyWhileItLives) {
  EXPECT_EQ(running_job_of_this_thread(), "");
  {
    const RunningJobMark mark("0123456789abcdef0123");  // cut to 16 characters
    EXPECT_EQ(running_job_of_this_thread(), "0123456789abcdef");
    std::string other = "unset";
    std::thread([&other] { other = running_job_of_this_thread(); }).join();
    EXPECT_EQ(other, "");
  }
  EXPECT_EQ(running_job_of_this_thread(), "");
  EXPECT_EQ(signal_name(SIGSEGV), "SIGSEGV");
  EXPECT_EQ(signal_name(SIGKILL), "SIGKILL");
}

}  // namespace
