#pragma once
// Which job a crash came from, for a supervising parent (DESIGN.md decision
// 13, cli/supervisor.hpp).
//
// Jobs are threads of one process, so a fault in one (SIGSEGV, SIGBUS,
// SIGFPE, SIGILL, or SIGABRT from abort()) ends them all. The signal is
// delivered to the thread that faulted: the handler install_crash_report()
// sets writes that thread's job id, as JobRunner marks it with
// RunningJobMark, to a file descriptor (the parent's pipe), then lets the
// signal end the process as it would have (core dump included). The parent
// then blames that job alone, not every job that happened to be running.
// A crash on a thread that runs no job (a library's own thread pool, the
// runner's) reports no job, and a SIGKILL (the kernel's OOM killer) cannot
// be caught at all: the parent then blames every job that was running.
//
// One line per crash, written with one write(2) (under PIPE_BUF, so whole):
//   "crash SIGNO JOBID\n"   or   "crash SIGNO -\n"   when the thread ran no job.
//
//   packtrain::install_crash_report(pipe_fd);       // once, in the child
//   { packtrain::RunningJobMark mark(job.id()); job.run(ctx); }  // on the job's thread
#include <string>

namespace packtrain {

// Marks the calling thread as running job `id` (16 hex digits; longer ids
// are cut) until the mark is destroyed. Marks do not nest: the inner one's
// end clears the thread's mark.
class RunningJobMark {
 public:
  explicit RunningJobMark(const std::string& id);
  ~RunningJobMark();
  RunningJobMark(const RunningJobMark&) = delete;
  RunningJobMark& operator=(const RunningJobMark&) = delete;
};

// The calling thread's job id, empty when none (for tests).
std::string running_job_of_this_thread();

// Installs the handler for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT that
// writes the crash line to `fd` and then ends the process by the same
// signal, with its default action. Call once, before any job runs.
void install_crash_report(int fd);

// The signal's name ("SIGSEGV"), or "signal N" for one without a name here.
std::string signal_name(int signo);

}  // namespace packtrain
