#include <packtrain/scheduler/crash_report.hpp>

#include <csignal>
#include <cstring>

#include <unistd.h>

namespace packtrain {
namespace {

constexpr std::size_t kIdSize = 16;

// Read by the signal handler, on the faulting thread: initial-exec TLS is a
// fixed offset from the thread pointer, with no allocation on first use
// (the general dynamic model may allocate, which a handler must not).
__attribute__((tls_model("initial-exec"))) thread_local char t_job[kIdSize + 1] = {};

int g_fd = -1;  // set once, before any job thread exists

constexpr int kFaults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

void on_fault(int signo) {
  // Async-signal-safe only: no allocation, no stdio, no locks.
  char line[64] = "crash ";
  std::size_t n = 6;
  char digits[12];
  std::size_t d = 0;
  for (int v = signo; v > 0 && d < sizeof(digits); v /= 10) digits[d++] = static_cast<char>('0' + v % 10);
  while (d > 0) line[n++] = digits[--d];
  line[n++] = ' ';
  if (t_job[0] == '\0') {
    line[n++] = '-';
  } else {
    for (std::size_t i = 0; i < kIdSize && t_job[i] != '\0'; ++i) line[n++] = t_job[i];
  }
  line[n++] = '\n';
  if (g_fd >= 0) (void)!write(g_fd, line, n);
  // The default action, once this handler returns: the signal is blocked
  // while it runs, so raise() leaves it pending until then. A fault then
  // ends the process with its own signal (and core), as without a handler;
  // a re-executed faulting instruction would fault again the same way.
  signal(signo, SIG_DFL);
  raise(signo);
}

}  // namespace

RunningJobMark::RunningJobMark(const std::string& id) {
  const std::size_t n = id.size() < kIdSize ? id.size() : kIdSize;
  std::memcpy(t_job, id.data(), n);
  t_job[n] = '\0';
}

RunningJobMark::~RunningJobMark() { t_job[0] = '\0'; }

std::string running_job_of_this_thread() { return t_job; }

void install_crash_report(int fd) {
  g_fd = fd;
  struct sigaction action {};
  action.sa_handler = on_fault;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;
  for (int signo : kFaults) sigaction(signo, &action, nullptr);
}

std::string signal_name(int signo) {
  switch (signo) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    case SIGQUIT: return "SIGQUIT";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGPIPE: return "SIGPIPE";
    case SIGSYS: return "SIGSYS";
    case SIGTRAP: return "SIGTRAP";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    default: return "signal " + std::to_string(signo);
  }
}

}  // namespace packtrain
