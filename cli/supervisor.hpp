#pragma once
// The supervising parent of a training command (DESIGN.md decision 13).
//
// Jobs are threads of one process, so a segfault, an abort or the kernel's
// OOM killer ends every job at once. `packtrain kfold|lth|hogwild|train`
// therefore runs its sweep in a child process and waits for it:
//
//  - The child is a fork of this process taken before any thread exists
//    (so no library is loaded twice), in a process group of its own: a
//    terminal's Ctrl-C reaches the parent alone, which passes SIGINT,
//    SIGTERM and SIGUSR1 on to the child; the child's exit status is the
//    parent's (0, 1, 2, 130, 143). PR_SET_PDEATHSIG kills the child if the
//    parent dies: `kill -9` of packtrain (or a closed terminal's SIGHUP)
//    still ends the whole run at once, the journal intact.
//  - The child tells the parent, through a pipe, where its journal is once
//    it has opened it, and its fault handler (scheduler/crash_report.hpp)
//    which job's thread faulted.
//  - When the child dies by a signal the parent did not pass on, the parent
//    opens the journal and blames the job whose thread faulted, or, when the
//    signal names none (SIGKILL from the OOM killer, a fault on a library's
//    thread), every job the child had started and left `running`. A job's
//    first crash is recorded `failed` with the signal (it runs again); its
//    second `crashed` (never run again; its dependents are skipped). The
//    crash counts are the journal's meta "crashes" ({job id: count}). The
//    parent then starts a new child with --resume.
//  - Restarts are bounded: a crash before the journal exists, or one that
//    blames no job, may happen once; the second ends the parent with one
//    line and exit 1 (the journal intact, the resume command printed).
//
// Not supervised: `--no-supervise` (for a debugger), `--help`, `report`,
// and runs under mpirun or srun (mpirun itself ends the other ranks when
// one dies; they stop as for SIGTERM and rank 0's journal stays intact).
//
// Test hook (docs/cli.md, not --help): PACKTRAIN_TEST_CRASH_JOB=TEXT makes
// every job whose name holds TEXT end the process at its start by
// PACKTRAIN_TEST_CRASH_SIGNAL (SEGV, the default, or ABRT); with
// PACKTRAIN_TEST_CRASH_ONCE=FILE only while FILE does not exist (the job
// creates it, then crashes).
#include <packtrain/scheduler/job.hpp>

#include <filesystem>
#include <functional>
#include <vector>

namespace packtrain::cli {

// main() runs a training subcommand through this. Returns the exit status:
// the child's, or the parent's own when it gives up. In the child (and
// when not supervising) it runs `command` with argv (argv[0] the program,
// argv[1] the subcommand) and returns what that returns. Call it before
// any thread exists.
int run_supervised(int argc, char** argv, const std::function<int(int, char**)>& command);

// In a supervised child: tells the parent the run's journal (after it is
// created, before any job runs). Does nothing when not supervised.
void tell_supervisor_journal(const std::filesystem::path& journal);

// The test hook above, applied to a run's jobs (RunSetup::open_run).
void apply_crash_test_hook(std::vector<Job>& jobs);

}  // namespace packtrain::cli
