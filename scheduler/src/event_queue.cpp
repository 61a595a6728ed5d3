#include "event_queue.hpp"

#include <packtrain/scheduler/error.hpp>

namespace packtrain {

void EventQueue::open() {
  MutexLock lock(mutex_);
  PACKTRAIN_CHECK(items_.empty(), "EventQueue::open: deliveries left from the last run");
  closed_ = false;
}

void EventQueue::push(Delivery delivery) {
  {
    MutexLock lock(mutex_);
    PACKTRAIN_CHECK(!closed_, "EventQueue::push after close");
    items_.push_back(std::move(delivery));
  }
  pushed_.notify_one();
}

void EventQueue::close() {
  {
    MutexLock lock(mutex_);
    closed_ = true;
  }
  pushed_.notify_one();
}

std::exception_ptr EventQueue::deliver_until_closed() {
  std::exception_ptr first_error;
  for (;;) {
    std::deque<Delivery> batch;
    bool closed;
    {
      MutexLock lock(mutex_);
      while (items_.empty() && !closed_) pushed_.wait(mutex_);
      batch.swap(items_);
      closed = closed_;
    }
    for (auto& delivery : batch) {
      try {
        delivery();
      } catch (...) {
        if (!first_error) first_error = std::current_exception();
      }
    }
    // Closed with this batch taken: nothing can follow it.
    if (closed) return first_error;
  }
}

}  // namespace packtrain
