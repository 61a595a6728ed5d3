#include <packtrain/scheduler/executor.hpp>

#include <packtrain/scheduler/error.hpp>

#include <pthread.h>
#include <sched.h>

#include <random>

namespace packtrain {
namespace {

// Rounds of yield-and-look an idle worker makes before it sleeps: long
// enough to catch the next task of a burst, short enough that an idle
// executor sleeps within microseconds.
constexpr int kSpinRounds = 64;

thread_local const Executor* tl_executor = nullptr;
thread_local int tl_worker = -1;

}  // namespace

bool pin_current_thread(const std::vector<int>& cores) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cores) CPU_SET(c, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

struct Executor::Worker {
  WsDeque<Task*> deque;
  std::mutex inbox_mutex;
  std::deque<std::function<void()>> inbox;  // guarded by inbox_mutex
  std::atomic<int> inbox_size{0};
  std::atomic<bool> reserved{false};
  std::minstd_rand rng;
  std::thread thread;
};

Executor::Executor(std::vector<int> cores, ExecutorOptions options) : cores_(std::move(cores)) {
  if (cores_.empty()) throw Error("an executor needs at least one core");
  for (std::size_t i = 0; i < cores_.size(); ++i) {
    auto w = std::make_unique<Worker>();
    w->rng.seed(static_cast<unsigned>(i) * 7919u + 1u);
    workers_.push_back(std::move(w));
  }
  for (int i = 0; i < worker_count(); ++i) {
    workers_[i]->thread = std::thread([this, i, pin = options.pin] {
      if (pin) pin_current_thread({cores_[i]});
      worker_loop(i);
    });
  }
}

Executor::~Executor() {
  stop_.store(true, std::memory_order_seq_cst);
  wake_all();
  for (auto& w : workers_) w->thread.join();
  // Tasks still queued were never waited for; free them.
  for (auto& w : workers_)
    while (auto t = w->deque.pop()) delete *t;
  for (Task* t : shared_queue_) delete t;
}

int Executor::current_worker() const { return tl_executor == this ? tl_worker : -1; }

void Executor::spawn(Task* task) {
  const int w = current_worker();
  if (w >= 0) {
    workers_[w]->deque.push(task);
  } else {
    std::lock_guard lock(shared_mutex_);
    shared_queue_.push_back(task);
    shared_size_.fetch_add(1, std::memory_order_relaxed);
  }
  wake_one();
}

void Executor::submit_to(int worker, std::function<void()> fn) {
  PACKTRAIN_CHECK(worker >= 0 && worker < worker_count(), "submit_to: no such worker");
  auto& w = *workers_[worker];
  {
    std::lock_guard lock(w.inbox_mutex);
    w.inbox.push_back(std::move(fn));
    w.inbox_size.fetch_add(1, std::memory_order_relaxed);
  }
  // Only that worker can take it: wake everyone (placed work is coarse and rare).
  wake_all();
}

void Executor::set_reserved(int worker, bool reserved) {
  workers_[worker]->reserved.store(reserved, std::memory_order_seq_cst);
  if (!reserved) wake_all();
}

void Executor::wake_one() {
  // seq_cst fence: the work we just published must be ordered before our
  // read of sleepers_ (a sleeper increments sleepers_, then looks for work).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_relaxed) == 0) return;
  {
    std::lock_guard lock(sleep_mutex_);
    epoch_.fetch_add(1, std::memory_order_relaxed);
  }
  sleep_cv_.notify_one();
}

void Executor::wake_all() {
  {
    std::lock_guard lock(sleep_mutex_);
    epoch_.fetch_add(1, std::memory_order_relaxed);
  }
  sleep_cv_.notify_all();
}

bool Executor::work_visible(int worker) {
  if (workers_[worker]->inbox_size.load(std::memory_order_relaxed) > 0) return true;
  if (shared_size_.load(std::memory_order_relaxed) > 0) return true;
  for (auto& w : workers_)
    if (!w->deque.empty()) return true;
  return false;
}

Task* Executor::find_task(int worker) {
  auto& self = *workers_[worker];
  if (auto t = self.deque.pop()) return *t;
  if (shared_size_.load(std::memory_order_relaxed) > 0) {
    std::lock_guard lock(shared_mutex_);
    if (!shared_queue_.empty()) {
      Task* t = shared_queue_.front();
      shared_queue_.pop_front();
      shared_size_.fetch_sub(1, std::memory_order_relaxed);
      return t;
    }
  }
  const int n = worker_count();
  if (n == 1) return nullptr;
  for (int attempt = 0; attempt < 2 * n; ++attempt) {
    const int victim = static_cast<int>(self.rng() % static_cast<unsigned>(n));
    if (victim == worker) continue;
    if (auto t = workers_[victim]->deque.steal()) {
      steals_.fetch_add(1, std::memory_order_relaxed);
      return *t;
    }
  }
  return nullptr;
}

void Executor::execute(Task* task) {
  std::exception_ptr error;
  try {
    task->run();
  } catch (...) {
    error = std::current_exception();
  }
  TaskGroup* group = task->group;
  delete task;
  if (group) group->finished(std::move(error));
}

bool Executor::run_one(int worker) {
  auto& self = *workers_[worker];
  if (self.reserved.load(std::memory_order_seq_cst)) return false;  // lent to another worker's job
  if (self.inbox_size.load(std::memory_order_relaxed) > 0) {
    std::function<void()> fn;
    {
      std::lock_guard lock(self.inbox_mutex);
      if (!self.inbox.empty()) {
        fn = std::move(self.inbox.front());
        self.inbox.pop_front();
        self.inbox_size.fetch_sub(1, std::memory_order_relaxed);
      }
    }
    if (fn) {
      fn();
      return true;
    }
  }
  if (Task* t = find_task(worker)) {
    execute(t);
    return true;
  }
  return false;
}

void Executor::worker_loop(int worker) {
  tl_executor = this;
  tl_worker = worker;
  auto& self = *workers_[worker];
  while (!stop_.load(std::memory_order_relaxed)) {
    if (self.reserved.load(std::memory_order_seq_cst)) {
      std::unique_lock lock(sleep_mutex_);
      sleep_cv_.wait(lock, [&] {
        return !self.reserved.load(std::memory_order_seq_cst) || stop_.load(std::memory_order_relaxed);
      });
      continue;
    }
    if (run_one(worker)) continue;
    bool found = false;
    for (int i = 0; i < kSpinRounds && !found; ++i) {
      std::this_thread::yield();
      found = run_one(worker);
    }
    if (found) continue;

    const std::uint64_t epoch = epoch_.load(std::memory_order_acquire);
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    // seq_cst fence: our increment of sleepers_ is ordered before the look
    // for work below (the mirror of wake_one's fence).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (work_visible(worker) || stop_.load(std::memory_order_relaxed) ||
        self.reserved.load(std::memory_order_seq_cst)) {
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      continue;
    }
    {
      std::unique_lock lock(sleep_mutex_);
      sleep_cv_.wait(lock, [&] {
        return epoch_.load(std::memory_order_relaxed) != epoch || stop_.load(std::memory_order_relaxed);
      });
    }
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
  }
  tl_executor = nullptr;
  tl_worker = -1;
}

TaskGroup::~TaskGroup() {
  try {
    wait();
  } catch (...) {
    // A destructor must not throw; call wait() to see task errors.
  }
}

void TaskGroup::finished(std::exception_ptr error) {
  if (error) {
    std::lock_guard lock(error_mutex_);
    if (!error_) error_ = std::move(error);
    // Drop this thread's reference before the group can be seen finished:
    // otherwise the exception may be freed here while the waiter still reads
    // it (the reference count lives in uninstrumented libstdc++, so TSan
    // would see no order between the two).
    error = nullptr;
  }
  // Not the last task: one atomic decrement, the last touch of the group.
  std::int64_t left = pending_.load(std::memory_order_relaxed);
  while (left > 1) {
    // acq_rel: publishes this task's effects to the waiter that sees 0.
    if (pending_.compare_exchange_weak(left, left - 1, std::memory_order_acq_rel, std::memory_order_relaxed)) return;
  }
  // Possibly the last: decrement under the mutex, so a waiter that sees 0
  // and then takes the mutex returns only after we are done with the group.
  std::lock_guard lock(error_mutex_);
  if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) done_cv_.notify_all();
}

void TaskGroup::wait() {
  const int worker = executor_.current_worker();
  if (worker >= 0) {
    // On a worker: help. Never run placed jobs here, only tasks.
    while (pending_.load(std::memory_order_acquire) > 0) {
      if (Task* t = executor_.find_task(worker)) {
        Executor::execute(t);
      } else {
        std::this_thread::yield();
      }
    }
  }
  std::unique_lock lock(error_mutex_);
  done_cv_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  if (error_) {
    auto error = error_;
    error_ = nullptr;
    std::rethrow_exception(error);
  }
}

}  // namespace packtrain
