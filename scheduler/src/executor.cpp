#include <packtrain/scheduler/executor.hpp>

#include <packtrain/scheduler/error.hpp>

#include <pthread.h>
#include <sched.h>

#include <random>

namespace packtrain {
namespace {

// Rounds of look-and-pause an idle or waiting worker makes before it parks:
// a few microseconds, long enough to catch the next task of a burst or a
// stolen child that is about to finish, short enough that an idle executor
// sleeps at once. A pause, not a yield: under load a yield gives the core
// to another process for a whole time slice.
constexpr int kSpinRounds = 64;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

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
  Mutex inbox_mutex;
  std::deque<std::function<void()>> inbox PACKTRAIN_GUARDED_BY(inbox_mutex);
  std::atomic<int> inbox_size{0};
  // The reservation handshake: the requester sets `reserve` and waits for
  // `parked`, which the worker sets (under reserve_mutex) once it runs nothing.
  alignas(kCacheLine) std::atomic<bool> reserve{false};
  Mutex reserve_mutex;
  CondVar reserve_changed;  // the requester waits for parked, the worker for its release
  bool parked PACKTRAIN_GUARDED_BY(reserve_mutex) = false;
  std::minstd_rand rng;
  std::thread thread;
};

Executor::Executor(std::vector<int> cores, ExecutorOptions options)
    : cores_(std::move(cores)), notifier_(static_cast<int>(cores_.size())) {
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
  notifier_.notify_all();
  for (auto& w : workers_) {
    { MutexLock lock(w->reserve_mutex); }
    w->reserve_changed.notify_all();
  }
  for (auto& w : workers_) w->thread.join();
  // Tasks still queued were never waited for; free them.
  for (auto& w : workers_)
    while (auto t = w->deque.pop()) delete *t;
  MutexLock lock(shared_mutex_);
  for (Task* t : shared_queue_) delete t;
}

int Executor::current_worker() const { return tl_executor == this ? tl_worker : -1; }

void Executor::spawn(Task* task) {
  const int w = current_worker();
  if (w >= 0) {
    workers_[w]->deque.push(task);
  } else {
    MutexLock lock(shared_mutex_);
    shared_queue_.push_back(task);
    shared_size_.fetch_add(1, std::memory_order_relaxed);
  }
  notifier_.notify_one();
}

void Executor::submit_to(int worker, std::function<void()> fn) {
  PACKTRAIN_CHECK(worker >= 0 && worker < worker_count(), "submit_to: no such worker");
  auto& w = *workers_[worker];
  {
    MutexLock lock(w.inbox_mutex);
    w.inbox.push_back(std::move(fn));
    w.inbox_size.fetch_add(1, std::memory_order_relaxed);
  }
  notifier_.notify(worker);  // only that worker can take it
}

void Executor::set_reserved(int worker, bool reserved) {
  PACKTRAIN_CHECK(worker >= 0 && worker < worker_count(), "set_reserved: no such worker");
  auto& w = *workers_[worker];
  if (!reserved) {
    {
      MutexLock lock(w.reserve_mutex);
      w.reserve.store(false, std::memory_order_relaxed);
    }
    w.reserve_changed.notify_all();
    return;
  }
  {
    MutexLock lock(w.reserve_mutex);
    // seq_cst: ordered before notify's fence and its read of the worker's
    // slot; the worker announces itself, then reads this (notifier.hpp).
    w.reserve.store(true, std::memory_order_seq_cst);
  }
  if (current_worker() == worker) return;  // the caller is that worker: nothing else runs meanwhile
  notifier_.notify(worker);                // it may be parked idle: it must see the request
  MutexLock lock(w.reserve_mutex);
  while (!w.parked && w.reserve.load(std::memory_order_relaxed) && !stop_.load(std::memory_order_relaxed))
    w.reserve_changed.wait(w.reserve_mutex);
}

void Executor::park_reserved(int worker) {
  auto& w = *workers_[worker];
  // Whatever wakeup this worker took for a task, it will not run it now.
  if (tasks_visible()) notifier_.notify_one();
  MutexLock lock(w.reserve_mutex);
  if (!w.reserve.load(std::memory_order_relaxed)) return;
  w.parked = true;
  w.reserve_changed.notify_all();  // the acknowledgement
  while (w.reserve.load(std::memory_order_relaxed) && !stop_.load(std::memory_order_relaxed))
    w.reserve_changed.wait(w.reserve_mutex);
  w.parked = false;
}

bool Executor::tasks_visible() const {
  if (shared_size_.load(std::memory_order_relaxed) > 0) return true;
  for (const auto& w : workers_)
    if (!w->deque.empty()) return true;
  return false;
}

Task* Executor::find_task(int worker) {
  auto& self = *workers_[worker];
  if (auto t = self.deque.pop()) return *t;
  if (shared_size_.load(std::memory_order_relaxed) > 0) {
    MutexLock lock(shared_mutex_);
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

bool Executor::run_inbox(int worker) {
  auto& self = *workers_[worker];
  if (self.inbox_size.load(std::memory_order_relaxed) == 0) return false;
  std::function<void()> fn;
  {
    MutexLock lock(self.inbox_mutex);
    if (self.inbox.empty()) return false;
    fn = std::move(self.inbox.front());
    self.inbox.pop_front();
    self.inbox_size.fetch_sub(1, std::memory_order_relaxed);
  }
  // Placed work is long: a wakeup this worker took for a task goes to another.
  if (tasks_visible()) notifier_.notify_one();
  fn();
  return true;
}

bool Executor::run_task_or_spin(int worker, int& idle_rounds) {
  if (Task* t = find_task(worker)) {
    execute(t);
    idle_rounds = 0;
    return true;
  }
  if (++idle_rounds < kSpinRounds) {
    cpu_relax();
    return true;
  }
  idle_rounds = 0;
  return false;
}

void Executor::worker_loop(int worker) {
  tl_executor = this;
  tl_worker = worker;
  auto& self = *workers_[worker];
  int idle_rounds = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    // relaxed: a hint; park_reserved reads it again under the mutex.
    if (self.reserve.load(std::memory_order_relaxed)) {
      park_reserved(worker);
      continue;
    }
    if (run_inbox(worker)) {
      idle_rounds = 0;
      continue;
    }
    if (run_task_or_spin(worker, idle_rounds)) continue;
    notifier_.prepare_wait(worker);
    if (stop_.load(std::memory_order_relaxed) || self.reserve.load(std::memory_order_relaxed) ||
        self.inbox_size.load(std::memory_order_relaxed) > 0 || tasks_visible()) {
      notifier_.cancel_wait(worker);  // about to look for work itself: a wakeup taken here is used
      continue;
    }
    notifier_.commit_wait(worker);
  }
  tl_executor = nullptr;
  tl_worker = -1;
}

void Executor::help_until_done(int worker, TaskGroup& group) {
  group.waiter_.store(worker, std::memory_order_relaxed);  // ordered by prepare_wait's fence
  bool woken = false;  // took a wakeup that may have been meant for a task
  int idle_rounds = 0;
  // acquire: pairs with the finishers' acq_rel decrement; their effects are visible.
  while (group.pending_.load(std::memory_order_acquire) > 0) {
    if (run_task_or_spin(worker, idle_rounds)) continue;
    notifier_.prepare_wait(worker);
    // Placed work in the inbox is not for here: only the group's end or a task.
    if (group.pending_.load(std::memory_order_acquire) == 0 || tasks_visible()) {
      woken = notifier_.cancel_wait(worker) || woken;
      continue;
    }
    notifier_.commit_wait(worker);
    woken = true;
  }
  group.waiter_.store(-1, std::memory_order_relaxed);
  // The wakeup may have been a spawn's, not the group's end: pass it on.
  if (woken && tasks_visible()) notifier_.notify_one();
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
    MutexLock lock(error_mutex_);
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
  MutexLock lock(error_mutex_);
  if (pending_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  done_cv_.notify_all();
  // seq_cst fence: the decrement is ordered before the read of waiter_ and
  // of its slot; a helping worker sets waiter_, announces itself, then reads
  // pending_ (notifier.hpp).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const int waiter = waiter_.load(std::memory_order_relaxed);
  if (waiter >= 0) executor_.notifier_.notify(waiter);
}

void TaskGroup::wait() {
  const int worker = executor_.current_worker();
  // On a worker: help with tasks (never placed work) and park between them.
  if (worker >= 0) executor_.help_until_done(worker, *this);
  MutexLock lock(error_mutex_);
  // acquire: pairs with the finishers' acq_rel decrement; their effects are visible.
  while (pending_.load(std::memory_order_acquire) != 0) done_cv_.wait(error_mutex_);
  if (error_) {
    auto error = error_;
    error_ = nullptr;
    std::rethrow_exception(error);
  }
}

}  // namespace packtrain
