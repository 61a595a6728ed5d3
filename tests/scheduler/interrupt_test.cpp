// InterruptGuard in a child process of its own (the signals go to a whole
// process): which signal stops how, and what a second signal does.
#include <packtrain/scheduler/interrupt.hpp>

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <future>
#include <string>

namespace {

using packtrain::InterruptGuard;
using packtrain::StopSignal;

// A child that guards, sends itself `first`, checks the handler saw
// `expected` (else exits 3), sends itself `second`, and then waits to be
// ended. Its stderr (what the guard says) comes back through `err`.
pid_t start_child(int first, StopSignal expected, int second, int& err) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid != 0) {
    close(fds[1]);
    err = fds[0];
    return pid;
  }
  dup2(fds[1], STDERR_FILENO);
  close(fds[0]);
  {
    InterruptGuard guard;
    std::promise<StopSignal> seen;
    int calls = 0;
    guard.on_interrupt([&](StopSignal why) {
      if (++calls == 1) seen.set_value(why);
      else _exit(4);  // the handler runs once
    });
    kill(getpid(), first);
    if (seen.get_future().get() != expected) _exit(3);
    kill(getpid(), second);
    for (;;) pause();
  }
}

// Reads the child's stderr until it holds `text` or the child closes it.
std::string read_until(int fd, const std::string& text) {
  std::string got;
  char buf[256];
  while (got.find(text) == std::string::npos) {
    const auto n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

int exit_status(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

TEST(InterruptGuard, SecondSigtermWhileSavingIsIgnoredAndCtrlCThenExits130) {
  int err = -1;
  const pid_t pid = start_child(SIGTERM, StopSignal::preempt, SIGTERM, err);
  ASSERT_GT(pid, 0);
  const auto said = read_until(err, "this signal is ignored");
  ASSERT_NE(said.find("saves a checkpoint at its next step"), std::string::npos) << said;
  ASSERT_NE(said.find("this signal is ignored"), std::string::npos) << said;
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, WNOHANG), 0) << "the second SIGTERM ended the process";
  // SIGUSR1 is a preemption too: ignored as well. Then Ctrl-C ends it at once.
  kill(pid, SIGUSR1);
  EXPECT_NE(read_until(err, "this signal is ignored").find("ignored"), std::string::npos);
  kill(pid, SIGINT);
  const auto rest = read_until(err, "interrupted twice");
  EXPECT_NE(rest.find("stopping now"), std::string::npos) << rest;
  EXPECT_EQ(exit_status(pid), 130);
  close(err);
}

TEST(InterruptGuard, SigusrOnePreemptsLikeSigterm) {
  int err = -1;
  const pid_t pid = start_child(SIGUSR1, StopSignal::preempt, SIGTERM, err);
  ASSERT_GT(pid, 0);
  EXPECT_NE(read_until(err, "this signal is ignored").find("this signal is ignored"), std::string::npos);
  kill(pid, SIGKILL);
  EXPECT_EQ(exit_status(pid), -SIGKILL);
  close(err);
}

TEST(InterruptGuard, CtrlCStopsAndASecondSignalOfAnyKindExits130) {
  int err = -1;
  const pid_t pid = start_child(SIGINT, StopSignal::interrupt, SIGTERM, err);
  ASSERT_GT(pid, 0);
  const auto said = read_until(err, "interrupted twice");
  EXPECT_NE(said.find("recorded as cancelled"), std::string::npos) << said;
  EXPECT_EQ(exit_status(pid), 130);
  close(err);
}

}  // namespace
