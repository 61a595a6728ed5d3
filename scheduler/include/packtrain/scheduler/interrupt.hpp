#pragma once
// Ctrl-C for a run: the first SIGINT/SIGTERM calls the handler you set
// (the runner's request_stop: finish what runs, start nothing new); a second
// one ends the process at once with status 130.
//
// Signals are blocked in the constructing thread, and so in every thread it
// creates afterwards, and taken by one thread in sigwait(): no work in a
// signal handler, and no polling. Construct it first, before the executor.
//
//   packtrain::InterruptGuard interrupts;
//   packtrain::Executor ex(cores);  packtrain::JobRunner runner(ex, node);
//   interrupts.on_interrupt([&] { runner.request_stop(); });
#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include <csignal>

namespace packtrain {

class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

  void on_interrupt(std::function<void()> handler);
  bool interrupted() const { return interrupted_.load(); }

 private:
  void wait_loop();

  sigset_t set_{};
  sigset_t previous_{};
  std::mutex mutex_;
  std::function<void()> handler_;  // guarded by mutex_
  std::atomic<bool> interrupted_{false};
  std::atomic<bool> closing_{false};
  std::thread thread_;
};

}  // namespace packtrain
