#include <packtrain/scheduler/interrupt.hpp>

#include <pthread.h>
#include <unistd.h>

#include <cstdio>

namespace packtrain {

InterruptGuard::InterruptGuard() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
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

void InterruptGuard::on_interrupt(std::function<void()> handler) {
  std::lock_guard lock(mutex_);
  handler_ = std::move(handler);
  if (interrupted_.load() && handler_) handler_();
}

void InterruptGuard::wait_loop() {
  while (true) {
    int sig = 0;
    if (sigwait(&set_, &sig) != 0) continue;
    if (closing_.load()) return;
    if (interrupted_.exchange(true)) {
      const char msg[] = "\npacktrain: interrupted twice, stopping now\n";
      (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
      _exit(130);
    }
    // Jobs check for the stop between minibatches, so they end within one
    // step, recorded `cancelled`; what finished stays recorded.
    const char msg[] =
        "\npacktrain: interrupted; stopping the running jobs (recorded as cancelled: --resume runs them again) and "
        "starting no new ones (Ctrl-C again to exit at once)\n";
    (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
    std::lock_guard lock(mutex_);
    if (handler_) handler_();
  }
}

}  // namespace packtrain
