#include <packtrain/scheduler/interrupt.hpp>

#include <pthread.h>
#include <unistd.h>

#include <cstdio>

namespace packtrain {
namespace {

void say(const char* text, std::size_t size) { (void)!write(STDERR_FILENO, text, size); }

}  // namespace

InterruptGuard::InterruptGuard() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  sigaddset(&set_, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set_, &previous_);
  thread_ = std::thread([this] { wait_loop(); });
}

InterruptGuard::~InterruptGuard() {
  closing_.store(true);
  pthread_kill(thread_.native_handle(), SIGTERM);
  thread_.join();
  // Leave pending signals blocked in this thread's mask as they were before.
  pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

void InterruptGuard::on_interrupt(std::function<void(StopSignal)> handler) {
  std::lock_guard lock(mutex_);
  handler_ = std::move(handler);
  if (interrupted_.load() && handler_) handler_(preempted_.load() ? StopSignal::preempt : StopSignal::interrupt);
}

void InterruptGuard::wait_loop() {
  while (true) {
    int sig = 0;
    if (sigwait(&set_, &sig) != 0) continue;
    if (closing_.load()) return;
    const bool preempt = sig == SIGTERM || sig == SIGUSR1;
    if (interrupted_.load()) {
      if (preempt && preempted_.load()) {
        // The jobs are writing their checkpoints: cutting that short would
        // lose the steps since their last one.
        const char msg[] =
            "\npacktrain: already saving the running jobs' checkpoints; this signal is ignored (Ctrl-C stops at once)\n";
        say(msg, sizeof(msg) - 1);
        continue;
      }
      const char msg[] = "\npacktrain: interrupted twice, stopping now\n";
      say(msg, sizeof(msg) - 1);
      _exit(130);
    }
    if (preempt) {
      preempted_.store(true);  // before interrupted_: a reader seeing that one sees this one
      const char msg[] =
          "\npacktrain: asked to stop (SIGTERM/SIGUSR1): every running job saves a checkpoint at its next step, no "
          "new job starts\n";
      say(msg, sizeof(msg) - 1);
    } else {
      // Jobs check for the stop between minibatches, so they end within one
      // step, recorded `cancelled`; what finished stays recorded.
      const char msg[] =
          "\npacktrain: interrupted; stopping the running jobs (recorded as cancelled: --resume runs them again) and "
          "starting no new ones (Ctrl-C again to exit at once)\n";
      say(msg, sizeof(msg) - 1);
    }
    // Set under the lock: on_interrupt() then calls the handler exactly once.
    std::lock_guard lock(mutex_);
    interrupted_.store(true);
    if (handler_) handler_(preempt ? StopSignal::preempt : StopSignal::interrupt);
  }
}

}  // namespace packtrain
