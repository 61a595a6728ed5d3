#include "supervisor.hpp"
#include "invocation.hpp"

#include <packtrain/distributed/mpi_sharing.hpp>
#include <packtrain/scheduler/crash_report.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/journal.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace packtrain::cli {
namespace {

// A crash before the journal exists, or one that blames no job, is allowed
// once; the second of either kind ends supervision. A job is recorded
// `crashed` at its second crash, so the restarts are bounded by twice the
// jobs plus two.
constexpr int kCrashesAllowed = 2;

int g_report_fd = -1;  // the child's end of the pipe to its parent; -1 when not supervised

// One write, whole (the pipe takes up to PIPE_BUF bytes at once).
void say(const std::string& line) {
  std::fflush(stdout);
  std::fflush(stderr);
  for (std::size_t at = 0; at < line.size();) {
    const auto n = ::write(STDERR_FILENO, line.data() + at, line.size() - at);
    if (n <= 0) break;
    at += static_cast<std::size_t>(n);
  }
}

bool wants_supervision(const std::vector<std::string>& words) {
  for (std::size_t i = 2; i < words.size(); ++i)
    if (words[i] == "--no-supervise" || words[i] == "--help" || words[i] == "-h" || words[i] == "--dry-run")
      return false;  // runs no job (batch --dry-run only prints)
  return !distributed::launched_by_mpi();
}

// What the child said through the pipe before it died.
struct ChildReport {
  std::optional<std::filesystem::path> journal;
  std::optional<std::string> crashed_job;  // the faulting thread's job; none for "-" or no line
  bool crash_line = false;
};

std::string read_all(int fd) {
  std::string text;
  char buf[4096];
  for (;;) {
    const auto n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      text.append(buf, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return text;  // the end (every writer gone), or nothing more to read
    }
  }
}

// Records: "journal LEN:PATH\n" (tell_supervisor_journal) and
// "crash SIGNO ID|-\n" (crash_report.hpp). Anything else is ignored.
ChildReport parse_report(const std::string& text) {
  ChildReport report;
  std::size_t at = 0;
  while (at < text.size()) {
    if (text.compare(at, 8, "journal ") == 0) {
      const auto colon = text.find(':', at + 8);
      if (colon == std::string::npos) break;
      const auto size = std::strtoull(text.c_str() + at + 8, nullptr, 10);
      if (colon + 1 + size > text.size()) break;
      report.journal = text.substr(colon + 1, size);
      at = colon + 1 + size + 1;
      continue;
    }
    const auto end = text.find('\n', at);
    const auto line = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
    if (line.compare(0, 6, "crash ") == 0 && !report.crash_line) {
      report.crash_line = true;
      const auto space = line.find(' ', 6);
      if (space != std::string::npos && line.substr(space + 1) != "-") report.crashed_job = line.substr(space + 1);
    }
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return report;
}

// The signals a person or a batch system sends to stop a run: not crashes.
bool is_stop_signal(int signo) {
  return signo == SIGINT || signo == SIGTERM || signo == SIGUSR1 || signo == SIGHUP;
}

int stop_exit_code(int signo) { return signo == SIGINT ? 130 : signo == SIGHUP ? 129 : 143; }

struct Blamed {
  std::string name;
  int crashes = 0;
};

// Records the crash of a child started at `started` (unix seconds) in its
// journal: the job its fault named, else every job it left `running`.
// Throws Error when the journal cannot be read or written.
std::vector<Blamed> record_crash(const std::filesystem::path& path, double started, int signo,
                                 const std::optional<std::string>& faulted) {
  const auto journal = Journal::open_existing(path);
  auto counts = nlohmann::json::parse(journal->meta("crashes").value_or("{}"), nullptr, false);
  if (!counts.is_object()) counts = nlohmann::json::object();
  std::vector<JobRecord> suspects;
  const auto records = journal->records();
  // The fault's own report wins over the rows: the runner writes a job's
  // rows (`queued`, then `running`) after starting it, so one that crashed
  // at once may show neither yet. Without a row, the job is found in the
  // sweep's list; the child's runner adds its spec to the row later.
  if (faulted) {
    const auto row = std::find_if(records.begin(), records.end(), [&](const JobRecord& r) { return r.id == *faulted; });
    if (row != records.end()) {
      if (row->status != JobStatus::done && row->status != JobStatus::crashed) suspects.push_back(*row);
    } else {
      const auto jobs = nlohmann::json::parse(journal->meta("sweep_jobs").value_or("[]"), nullptr, false);
      for (const auto& job : jobs.is_array() ? jobs : nlohmann::json::array())
        if (job.is_object() && job.value("id", "") == *faulted) {
          JobRecord r;
          r.id = *faulted;
          r.name = job.value("name", *faulted);
          r.started_at = started;
          journal->put(r);
          suspects.push_back(r);
        }
    }
  }
  if (suspects.empty())
    for (const auto& r : records)
      if (r.status == JobStatus::running && r.started_at >= started) suspects.push_back(r);
  std::vector<Blamed> blamed;
  const std::string how = signal_name(signo) + " (signal " + std::to_string(signo) + ")";
  for (const auto& r : suspects) {
    const int crashes = counts.value(r.id, 0) + 1;
    counts[r.id] = crashes;
    const bool last = crashes >= kCrashesAllowed;
    const nlohmann::json metrics = {{"signal", signal_name(signo)}, {"crashes", crashes}};
    const std::string message =
        last ? "the process died by " + how + " while this job ran, " + std::to_string(crashes) +
                   " times; not run again"
             : "the process died by " + how + " while this job ran; it runs again (a second crash records it crashed)";
    journal->set_meta("crashes", counts.dump());
    journal->mark_ended(r.id, last ? JobStatus::crashed : JobStatus::failed, std::max(r.attempts, 1), unix_now(),
                        metrics, message);
    blamed.push_back({r.name, crashes});
  }
  return blamed;
}

std::vector<char*> argv_of(std::vector<std::string>& words) {
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  return argv;
}

void ignore_signal(int) {}

}  // namespace

void tell_supervisor_journal(const std::filesystem::path& journal) {
  if (g_report_fd < 0) return;
  const auto path = std::filesystem::absolute(journal).string();
  const std::string record = "journal " + std::to_string(path.size()) + ":" + path + "\n";
  for (std::size_t at = 0; at < record.size();) {
    const auto n = ::write(g_report_fd, record.data() + at, record.size() - at);
    if (n <= 0) return;  // the parent is gone: nothing to tell
    at += static_cast<std::size_t>(n);
  }
}

int run_supervised(int argc, char** argv, const std::function<int(int, char**)>& command) {
  std::vector<std::string> words(argv, argv + argc);
  if (!wants_supervision(words)) return command(argc, argv);
  const std::string name = words.size() > 1 ? words[1] : "";
  const std::string who = "packtrain " + name + ": ";

  // The parent takes these signals in sigwaitinfo() only; the child gets
  // its mask back before it runs anything.
  sigset_t watched, previous;
  sigemptyset(&watched);
  for (int s : {SIGINT, SIGTERM, SIGUSR1, SIGCHLD}) sigaddset(&watched, s);
  sigprocmask(SIG_BLOCK, &watched, &previous);
  struct sigaction child_ended {};
  child_ended.sa_handler = ignore_signal;  // not SIG_IGN: that would reap the child for us
  sigaction(SIGCHLD, &child_ended, nullptr);
  const pid_t parent = getpid();

  int early_crashes = 0, crashes_outside_jobs = 0;
  for (;;) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      say(who + "error: cannot start the run's process (pipe: " + std::strerror(errno) +
          "); run with --no-supervise\n");
      return 2;
    }
    std::fflush(nullptr);  // nothing buffered is written twice
    const double started = unix_now();
    const pid_t pid = fork();
    if (pid < 0) {
      say(who + "error: cannot start the run's process (fork: " + std::strerror(errno) +
          "); run with --no-supervise\n");
      return 2;
    }
    if (pid == 0) {
      // The child: its own process group (a terminal's Ctrl-C reaches the
      // parent only, which passes it on once), and killed with the parent:
      // `kill -9` of packtrain (or a closed terminal's SIGHUP) ends the run
      // at once, as it did before there was a parent.
      close(fds[0]);
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(137);  // the parent died before prctl
      signal(SIGCHLD, SIG_DFL);
      sigprocmask(SIG_SETMASK, &previous, nullptr);
      g_report_fd = fds[1];
      install_crash_report(fds[1]);
      static std::vector<std::string> child_words;
      static std::vector<char*> child_argv;
      child_words = words;
      child_argv = argv_of(child_words);
      remember_invocation(static_cast<int>(child_words.size()), child_argv.data());
      return command(static_cast<int>(child_words.size()), child_argv.data());
    }
    setpgid(pid, pid);  // also here: whichever runs first, the group exists before a signal is passed on
    close(fds[1]);

    // Wait for the child, passing the stop signals on.
    int stop = 0;  // the first stop signal passed on
    int status = 0;
    for (;;) {
      siginfo_t info;
      const int signo = sigwaitinfo(&watched, &info);
      if (signo < 0) continue;  // EINTR
      if (signo == SIGCHLD) {
        if (waitpid(pid, &status, WNOHANG) == pid) break;
        continue;
      }
      if (stop == 0 || signo == SIGINT) stop = signo;
      kill(pid, signo);
    }
    const auto report = parse_report(read_all(fds[0]));
    close(fds[0]);

    if (WIFEXITED(status)) return WEXITSTATUS(status);
    const int signo = WTERMSIG(status);
    const std::string how = signal_name(signo);
    if (stop != 0 || is_stop_signal(signo)) {
      // Asked to stop: not a crash, and not restarted. What the journal holds
      // is intact; --resume runs the rest.
      const int code = stop_exit_code(stop != 0 ? stop : signo);
      if (!is_stop_signal(signo) && report.journal)
        say(who + "the process died by " + how + " while stopping; the journal is intact; resume with: " +
            resume_line() + "\n");
      return code;
    }
    if (!report.journal) {
      if (++early_crashes >= kCrashesAllowed) {
        say(who + "the process died by " + how + " again before its run began; giving up (run with --no-supervise, "
            "e.g. under gdb, to see where)\n");
        return 1;
      }
      say(who + "the process died by " + how + " before its run began; starting it again\n");
      continue;
    }
    std::vector<Blamed> blamed;
    try {
      blamed = record_crash(*report.journal, started, signo, report.crashed_job);
    } catch (const std::exception& e) {
      say(who + "the process died by " + how + " and the crash cannot be recorded (" + e.what() +
          "); giving up; the journal holds what finished; resume with: " + resume_line() + "\n");
      return 1;
    }
    if (std::find(words.begin(), words.end(), "--resume") == words.end()) words.push_back("--resume");
    if (blamed.empty()) {
      if (++crashes_outside_jobs >= kCrashesAllowed) {
        say(who + "the process died by " + how + " again while no job ran; giving up; the journal holds what " +
            "finished; resume with: " + shell_line(words) + "\n");
        return 1;
      }
      say(who + "the process died by " + how + " while no job ran; resuming: " + shell_line(words) + "\n");
      continue;
    }
    std::string line;
    for (const auto& b : blamed)
      line += who + "the process died by " + how + " while " + b.name + " ran" +
              (b.crashes >= kCrashesAllowed ? ": recorded crashed after " + std::to_string(b.crashes) +
                                                  " crashes, not run again\n"
                                            : ": it runs again (a second crash records it crashed)\n");
    say(line + who + "resuming: " + shell_line(words) + "\n");
  }
}

void apply_crash_test_hook(std::vector<Job>& jobs) {
  const char* text = std::getenv("PACKTRAIN_TEST_CRASH_JOB");
  if (text == nullptr || *text == '\0') return;
  const std::string how = std::getenv("PACKTRAIN_TEST_CRASH_SIGNAL") ? std::getenv("PACKTRAIN_TEST_CRASH_SIGNAL") : "SEGV";
  const int signo = how == "ABRT" ? SIGABRT : SIGSEGV;
  const std::string once = std::getenv("PACKTRAIN_TEST_CRASH_ONCE") ? std::getenv("PACKTRAIN_TEST_CRASH_ONCE") : "";
  for (auto& job : jobs) {
    if (job.name.find(text) == std::string::npos) continue;
    if (how == "THROW_AFTER") {  // no crash: the job trains, then fails (a save that fails, say)
      job.run = [inner = std::move(job.run), once](JobContext& ctx) {
        auto outcome = inner(ctx);
        std::error_code ec;
        if (once.empty() || !std::filesystem::exists(once, ec)) {
          if (!once.empty()) std::ofstream(once) << ctx.id() << "\n";
          throw Error("test hook: a failure after training");
        }
        return outcome;
      };
      continue;
    }
    job.run = [inner = std::move(job.run), signo, once](JobContext& ctx) {
      std::error_code ec;
      if (once.empty() || !std::filesystem::exists(once, ec)) {
        if (!once.empty()) std::ofstream(once) << ctx.id() << "\n";
        raise(signo);  // on this job's thread: its crash report names it
      }
      return inner(ctx);
    };
  }
}

}  // namespace packtrain::cli
