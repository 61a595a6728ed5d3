#pragma once
// Ctrl-C and preemption for a run.
//
// The first SIGINT (Ctrl-C) calls the handler you set with
// StopSignal::interrupt (the runner's request_stop: finish what runs, start
// nothing new; exit 130); a second one ends the process at once with
// status 130.
//
// The first SIGTERM or SIGUSR1 (what SLURM sends before a time limit with
// --signal, and on preemption) calls it with StopSignal::preempt (the
// runner's request_preempt: every running job writes a checkpoint at its
// next step and stops; exit 143). A second SIGTERM or SIGUSR1 while the
// jobs are saving is ignored, with a line that says so: the checkpoints take
// one step and one file write, and a batch system's time-limit SIGTERM is
// followed by SIGKILL anyway. Ctrl-C after a preemption still ends the
// process at once (130); checkpoint files are written under a temporary
// name and renamed, so one cut short is never read.
//
// Signals are blocked in the constructing thread, and so in every thread it
// creates afterwards, and taken by one thread in sigwait(): no work in a
// signal handler, and no polling. Construct it first, before the executor.
//
//   packtrain::InterruptGuard interrupts;
//   packtrain::Executor ex(cores);  packtrain::JobRunner runner(ex, node);
//   interrupts.on_interrupt([&](packtrain::StopSignal why) {
//     why == packtrain::StopSignal::preempt ? runner.request_preempt() : runner.request_stop();
//   });
#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include <csignal>

namespace packtrain {

enum class StopSignal { interrupt, preempt };

class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

  // Called on the guard's thread at the first signal; at once, on the
  // calling thread, if a signal came before the handler was set.
  void on_interrupt(std::function<void(StopSignal)> handler);
  bool interrupted() const { return interrupted_.load(); }
  bool preempted() const { return preempted_.load(); }

 private:
  void wait_loop();

  sigset_t set_{};
  sigset_t previous_{};
  std::mutex mutex_;
  std::function<void(StopSignal)> handler_;  // guarded by mutex_
  std::atomic<bool> interrupted_{false};     // any first signal
  std::atomic<bool> preempted_{false};       // ... and it was SIGTERM or SIGUSR1
  std::atomic<bool> closing_{false};
  std::thread thread_;
};

}  // namespace packtrain
