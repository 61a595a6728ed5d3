#pragma once
// What a run tells the journal and its event sinks, in the order it
// happened, delivered outside the runner's lock (DESIGN.md decision 11).
//
// Any thread pushes (the runner with its lock held, a job reporting
// progress); one thread, the one in JobRunner::run, delivers: sinks are
// called one at a time, in push order, and a slow sink or a slow disk
// delays only later deliveries, never placement. close() says the last
// push has been made; deliver_until_closed() returns once everything
// pushed before it is delivered.
#include <packtrain/scheduler/mutex.hpp>

#include <deque>
#include <exception>
#include <functional>

namespace packtrain {

class EventQueue {
 public:
  using Delivery = std::function<void()>;

  // A new run: pushes are taken again.
  void open() PACKTRAIN_EXCLUDES(mutex_);
  // Queues `delivery` (never blocks on a delivery). Pushing after close()
  // is a bug: it aborts.
  void push(Delivery delivery) PACKTRAIN_EXCLUDES(mutex_);
  void close() PACKTRAIN_EXCLUDES(mutex_);
  // Runs the deliveries on the calling thread, in order, until closed and
  // empty. A delivery that throws does not stop the others: the first
  // exception is returned.
  std::exception_ptr deliver_until_closed() PACKTRAIN_EXCLUDES(mutex_);

 private:
  Mutex mutex_;
  CondVar pushed_;                                   // the deliverer waits here (its only waiter)
  std::deque<Delivery> items_ PACKTRAIN_GUARDED_BY(mutex_);
  bool closed_ PACKTRAIN_GUARDED_BY(mutex_) = true;
};

}  // namespace packtrain
