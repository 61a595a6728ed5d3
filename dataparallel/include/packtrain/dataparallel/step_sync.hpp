#pragma once
// How the replicas of a data-parallel job share a step, without LibTorch (so
// ThreadSanitizer can check it: tests/dataparallel/step_sync_test.cpp).
//
// The protocol, once per optimizer step:
//   1. The leader (the job's own thread, itself a replica) calls
//      begin_step(m): the reduction tree is armed for m micro-batches and
//      the items [0, m) are dealt through a WorkPool to the replicas seated
//      now (a seat is a pool slot, held by a Seat object).
//   2. Every seated replica, the leader too, take()s micro-batches, computes
//      each one's gradient into that micro-batch's own buffer and calls
//      finish(): the pairwise tree (reduction_tree.hpp) sums buffers as soon
//      as both halves of a node exist, on the thread that completes it.
//   3. The arrival that completes the root marks the step reduced and wakes
//      the leader, which then applies the sum (the optimizer step: with
//      several replicas, itself a round of items, one per share of the
//      parameters); nothing else is dealt until its next begin_step().
// A round (begin_step) is a training step's micro-batches, or the shares of
// its optimizer step, or evaluation batches: the protocol is the same.
// Replicas join (Seat) and leave (~Seat) at any moment, mid-step included: a
// leaving replica finishes the micro-batch in its hands; what was dealt to
// it and not started stays in its slot, where the others steal it, and the
// leader is woken to take it if it was already waiting. So every micro-batch
// is computed exactly once per step whoever comes and goes, and the sum is
// the same bits. A replica whose micro-batch throws calls fail(): nothing
// more is taken, every waiter wakes, and the leader's wait says `failed`.
//
// Waiting: the leader sleeps on its own condition (the root, a failure, or
// items a leaving replica left behind), helpers on theirs (a new deal, items
// left behind, or their core's lease asked back through its stop token)
// (STYLE.md, "Waiting"), after up to a millisecond of spinning (yielding)
// on the same conditions read without the lock: a step's hand-over is
// shorter than a wake-up.
//
//   StepSync sync(/*max_replicas=*/4, /*max_micro_batches=*/8);
//   // leader                                      // helper, on a lent core
//   StepSync::Seat seat(sync);                      StepSync::Seat seat(sync);
//   sync.begin_step(8);                             while (!lease.should_return()) {
//   for (;;) {                                        if (auto mb = sync.take(seat)) { compute(*mb); sync.finish(*mb, add); }
//     while (auto mb = sync.take(seat)) ...           else sync.wait_for_work(lease.return_token());
//     if (sync.wait_for_step() == Wake::reduced) break;  }
//   }
#include <packtrain/dataparallel/reduction_tree.hpp>
#include <packtrain/scheduler/mutex.hpp>
#include <packtrain/scheduler/work_pool.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>

namespace packtrain::dataparallel {

// Item `index` of round `step` (1 for the first begin_step): a micro-batch
// of a training step, a share of its optimizer step, or an evaluation batch.
struct MicroBatch {
  std::int64_t step = 0;
  int index = 0;
};

class StepSync {
 public:
  enum class Wake { reduced, work, failed };

  // A replica's place in the step: a work-pool slot, held while it lives,
  // given back by its destructor however the replica ends (an exception too).
  class Seat {
   public:
    explicit Seat(StepSync& sync);
    ~Seat();
    Seat(const Seat&) = delete;
    Seat& operator=(const Seat&) = delete;
    // False when max_replicas were already seated: this one has nothing to do.
    bool seated() const { return slot_ >= 0; }
    int slot() const { return slot_; }

   private:
    StepSync& sync_;
    int slot_;
    std::int64_t entered_ns_ = 0;
  };

  // Throws packtrain::Error when either bound is below 1.
  StepSync(int max_replicas, int max_micro_batches);

  int max_replicas() const { return pool_.slots(); }
  int max_micro_batches() const { return tree_.max_leaves(); }

  // --- the leader ------------------------------------------------------------
  // Arms the tree and deals micro-batches [0, m) of a new step; returns the
  // step's number. Only after the previous step was reduced (or before the first).
  std::int64_t begin_step(int micro_batches);
  // Sleeps until the step is reduced, or a micro-batch may be taken (one a
  // leaving replica left; take() it and wait again), or a replica failed
  // and no other replica still computes a micro-batch it took: the caller
  // may then unwind and free what the micro-batches read.
  Wake wait_for_step();
  // After a failure: returns once no replica holds a micro-batch (the
  // leader's own computation threw; it must not unwind under the others).
  void wait_until_none_in_hand();

  // --- every seated replica ----------------------------------------------------
  // A micro-batch of the current step nobody else gets; nothing when none is
  // left to take or after a failure or end(). The caller holds it until its
  // finish() returns or its fail().
  std::optional<MicroBatch> take(const Seat& seat);
  // The micro-batch's buffer is ready: runs combine(left, right) for every
  // tree node this completes (see reduction_tree.hpp) and, when that is the
  // root, wakes the leader and returns true.
  template <typename Combine>
  bool finish(const MicroBatch& mb, Combine&& combine) {
    const bool root = tree_.arrive(mb.index, combine);
    bool wake = root;
    {
      MutexLock lock(mutex_);
      if (root) {
        reduced_ = mb.step;
        reduced_now_.store(mb.step, std::memory_order_release);
      }
      --in_hand_;
      wake = wake || (failed() && in_hand_ == 0);
    }
    if (wake) leader_wake_.notify_all();
    return root;
  }
  // A helper's sleep between steps: returns when a micro-batch may be there
  // (not after a failure or end()), or once `leave` is requested (a lent
  // core's CoreLease::return_token(): its ask wakes the sleeper, no polling).
  void wait_for_work(const std::stop_token& leave);

  // --- either ------------------------------------------------------------------
  // The calling replica's micro-batch failed (it holds it no more): records
  // the first failure's message (its first line) and wakes everyone.
  void fail(const std::string& message);
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  std::string failure() const;
  // The run is over: nothing more will be dealt; helpers stop taking.
  void end();
  bool over() const { return over_.load(std::memory_order_acquire); }

  // Replicas seated now; the most seated at once since the last call of
  // take_peak() (which restarts it from the number seated now).
  int replicas() const;
  int take_peak();
  // The integral of seated replicas over time, in seconds: replica-seconds
  // available, the denominator of the share of time spent computing.
  double replica_seconds() const;

 private:
  static std::int64_t now_ns();

  WorkPool pool_;
  ReductionTree tree_;
  mutable Mutex mutex_;
  std::condition_variable_any leader_wake_;  // the leader: root reduced, items left behind, failure
  std::condition_variable_any helper_wake_;  // helpers: a deal, items left behind, failure, end
  std::int64_t step_ PACKTRAIN_GUARDED_BY(mutex_) = 0;
  std::int64_t reduced_ PACKTRAIN_GUARDED_BY(mutex_) = 0;
  std::string failure_ PACKTRAIN_GUARDED_BY(mutex_);
  int seated_ PACKTRAIN_GUARDED_BY(mutex_) = 0;
  int in_hand_ PACKTRAIN_GUARDED_BY(mutex_) = 0;  // micro-batches taken, neither finished nor failed
  int peak_ PACKTRAIN_GUARDED_BY(mutex_) = 0;
  std::int64_t closed_ns_ PACKTRAIN_GUARDED_BY(mutex_) = 0;     // presence of replicas that left
  std::int64_t enter_sum_ns_ PACKTRAIN_GUARDED_BY(mutex_) = 0;  // sum of the seated ones' arrival times
  // reduced_ and step_, for a waiter's spin before it takes the lock.
  std::atomic<std::int64_t> reduced_now_{0};
  std::atomic<std::int64_t> step_now_{0};
  std::atomic<bool> failed_{false};
  std::atomic<bool> over_{false};
};

}  // namespace packtrain::dataparallel
