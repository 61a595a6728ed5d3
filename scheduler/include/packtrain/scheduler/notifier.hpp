#pragma once
// Parking for a fixed set of waiters (the executor's workers): each waiter
// has its own slot, so a wakeup goes to one that is really waiting for work
// and is never taken by a thread waiting for something else.
//
// The protocol is Eigen's EventCount / Taskflow's Notifier (D. Vyukov's
// event count): a waiter announces itself, re-checks its condition, then
// either cancels or sleeps; a notifier publishes its change, then looks for
// an announced waiter.
//
//   waiter w                               notifier
//   notifier.prepare_wait(w);              publish work (an atomic store)
//   if (work visible) {                    notifier.notify_one();
//     notifier.cancel_wait(w);  take it
//   } else {
//     notifier.commit_wait(w);  look again
//   }
//
// No lost wakeup: prepare_wait and notify_one each end / begin with a
// seq_cst fence, so of the two fences one comes first in the single total
// order of seq_cst operations. If the notifier's comes first, the waiter's
// re-check sees the work (C++20 [atomics.fences]/4 with [atomics.order]/4);
// if the waiter's comes first, the notifier sees the waiter's announcement
// and wakes it. A woken waiter looks again for work and finds what was
// published before it was woken (commit_wait ends with the same fence).
//
// Unlike Eigen's lock-free waiter stack, slots are scanned (a node has at
// most a few hundred workers, and the scan only runs when someone sleeps),
// which lets notify(w) wake one given waiter: placed work and the end of a
// task group are for one worker only.
#include <packtrain/scheduler/mutex.hpp>
#include <packtrain/scheduler/ws_deque.hpp>  // kCacheLine

#include <atomic>
#include <cstdint>
#include <memory>

namespace packtrain {

class Notifier {
 public:
  explicit Notifier(int waiters) : count_(waiters), slots_(std::make_unique<Slot[]>(static_cast<std::size_t>(waiters))) {}
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Waiter `w` announces that it is about to sleep. Re-check the condition
  // after this, then call cancel_wait or commit_wait.
  void prepare_wait(int w) {
    slot(w).state.store(kWaiting, std::memory_order_relaxed);
    waiting_.fetch_add(1, std::memory_order_relaxed);
    // seq_cst fence: the announcement above is ordered before the caller's
    // re-check of its condition (see the header comment).
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }

  // The condition held: no sleep. Returns true when a notification was
  // meant for this waiter meanwhile; a caller that will not look for work
  // now must pass it on (notify_one), or a task may sit with every worker asleep.
  bool cancel_wait(int w) {
    const int was = slot(w).state.exchange(kIdle, std::memory_order_relaxed);
    waiting_.fetch_sub(1, std::memory_order_relaxed);
    return was == kNotified;
  }

  // Sleeps until notified. The caller looks for work afterwards.
  void commit_wait(int w) {
    Slot& s = slot(w);
    {
      MutexLock lock(s.mutex);
      // relaxed: the mutex orders this read after the notifier's change.
      while (s.state.load(std::memory_order_relaxed) != kNotified) s.wake.wait(s.mutex);
      s.state.store(kIdle, std::memory_order_relaxed);
    }
    waiting_.fetch_sub(1, std::memory_order_relaxed);
    // seq_cst fence: the reset to kIdle is ordered before the caller's look
    // for work, so a notifier that still saw kNotified (and so woke no one
    // for its own work) published work this look will see.
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }

  // Wakes one announced waiter, if any. Call after publishing the work.
  void notify_one() {
    // seq_cst fence: the work published before this call is ordered before
    // the reads of waiting_ and of the slots below.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (waiting_.load(std::memory_order_relaxed) == 0) return;
    // Start the scan at a rotating slot, so wakeups are spread.
    const int start = static_cast<int>(next_.fetch_add(1, std::memory_order_relaxed) % static_cast<unsigned>(count_));
    for (int i = 0; i < count_; ++i) {
      const int w = start + i < count_ ? start + i : start + i - count_;
      if (try_wake(w)) return;
    }
  }

  // Wakes waiter `w` if it is announced or asleep. Call after publishing
  // what `w` alone can take (its inbox, the end of the group it waits for).
  void notify(int w) {
    // seq_cst fence: as in notify_one.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    try_wake(w);
  }

  void notify_all() {
    // seq_cst fence: as in notify_one.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    for (int w = 0; w < count_; ++w) try_wake(w);
  }

 private:
  enum : int { kIdle = 0, kWaiting = 1, kNotified = 2 };

  // One per waiter, on its own cache line: the state is written by the
  // waiter and by notifiers, and nobody else's traffic should hit it.
  struct alignas(kCacheLine) Slot {
    std::atomic<int> state{kIdle};
    Mutex mutex;  // held between a sleeper's look at state and its sleep
    CondVar wake;
  };

  Slot& slot(int w) { return slots_[static_cast<std::size_t>(w)]; }

  bool try_wake(int w) {
    Slot& s = slot(w);
    int expected = kWaiting;
    // relaxed: the fence in the caller orders the published work before
    // this read; the wakeup itself is ordered by the slot's mutex.
    if (s.state.load(std::memory_order_relaxed) != kWaiting ||
        !s.state.compare_exchange_strong(expected, kNotified, std::memory_order_relaxed)) {
      return false;
    }
    // Taking the mutex: a waiter between its check of state and its sleep
    // holds it, so the notify cannot fall into that gap.
    { MutexLock lock(s.mutex); }
    s.wake.notify_one();
    return true;
  }

  const int count_;
  std::unique_ptr<Slot[]> slots_;
  alignas(kCacheLine) std::atomic<int> waiting_{0};  // announced waiters: notify_one's fast path
  alignas(kCacheLine) std::atomic<unsigned> next_{0};
};

}  // namespace packtrain
