#pragma once
// The work-stealing executor: one worker thread per usable core, each pinned
// to its core, each with its own Chase-Lev deque (ws_deque.hpp).
//
// Two kinds of work run on it:
//  - fine-grained tasks (TaskGroup::run): pushed on the spawning worker's
//    deque; an idle worker steals from a random victim. Fork-join code and
//    Hogwild's minibatches use these.
//  - placed work (submit_to): a job the JobRunner has placed on a core goes
//    into that core's worker inbox, which no one steals from: a job owns
//    whole cores (DESIGN.md decision 2).
//
// A worker whose core is lent to another worker's multi-core job is
// *reserved*: set_reserved(w, true) returns once worker w has acknowledged,
// that is once it has finished what it was running and parked, so there are
// never more running threads than cores.
//
// Waiting. Every worker parks on its own slot of a Notifier (notifier.hpp,
// Taskflow's / Eigen's event count), whatever it waits for: new tasks (an
// idle worker), the end of a task group it helps with (TaskGroup::wait on a
// worker), or the end of its reservation (a condition of its own). A spawn
// wakes one parked worker that can take the task; placed work and the end
// of a group wake the one worker they are for. A worker woken for a task
// that then does something else (it was reserved, it runs placed work, its
// group ended) passes the wakeup on. Idle and waiting workers spin for a
// few microseconds (pause, no yield: under load a yield hands the core to
// another process for a whole time slice), then sleep: an idle executor
// costs well under 1% of a core.
//
//   packtrain::Executor ex(packtrain::detect_node_resources().cores);
//   packtrain::TaskGroup g(ex);
//   for (int i = 0; i < 100; ++i) g.run([i] { work(i); });
//   g.wait();   // helps run tasks while it waits; rethrows the first exception
#include <packtrain/scheduler/mutex.hpp>
#include <packtrain/scheduler/notifier.hpp>
#include <packtrain/scheduler/ws_deque.hpp>

#include <atomic>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

namespace packtrain {

class TaskGroup;

// A unit of fine-grained work. Allocated by TaskGroup::run, freed after it runs.
struct Task {
  virtual ~Task() = default;
  virtual void run() = 0;
  TaskGroup* group = nullptr;
};

struct ExecutorOptions {
  bool pin = true;  // pin worker i to cores[i]
};

class Executor {
 public:
  // One worker per entry of `cores` (CPU ids).
  explicit Executor(std::vector<int> cores, ExecutorOptions options = {});
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  int worker_count() const { return static_cast<int>(workers_.size()); }
  const std::vector<int>& cores() const { return cores_; }

  // The index of the calling worker of *this* executor, or -1.
  int current_worker() const;

  // Runs `fn` on worker `worker`, after whatever it is running now. Not stealable.
  void submit_to(int worker, std::function<void()> fn);

  // Marks a worker as lent to another worker's job, or gives it back.
  // Reserving returns once the worker has acknowledged: it has finished the
  // task or placed work it was running and runs nothing until released
  // (placed work submitted meanwhile waits in its inbox). Called by the
  // worker itself (a lease giving its core back), it returns at once and
  // takes effect when the running work returns. Do not reserve a worker
  // from inside work that worker must finish first.
  void set_reserved(int worker, bool reserved);

  // Tasks spawned, stolen and run so far (for benches and tests).
  std::uint64_t steal_count() const { return steals_.load(std::memory_order_relaxed); }

 private:
  friend class TaskGroup;
  struct Worker;

  static void execute(Task* task);    // runs it, frees it, tells its group
  void spawn(Task* task);             // from a worker: its deque; else the shared queue
  Task* find_task(int worker);        // own deque, shared queue, then steal
  bool run_inbox(int worker);         // runs one placed item; false if none
  bool run_task_or_spin(int worker, int& idle_rounds);  // false: time to park
  void worker_loop(int worker);
  void park_reserved(int worker);     // acknowledges a reservation, sleeps until released
  void help_until_done(int worker, TaskGroup& group);  // TaskGroup::wait on a worker
  bool tasks_visible() const;         // a task in the shared queue or in a deque

  std::vector<int> cores_;
  std::vector<std::unique_ptr<Worker>> workers_;
  Notifier notifier_;

  Mutex shared_mutex_;
  std::deque<Task*> shared_queue_ PACKTRAIN_GUARDED_BY(shared_mutex_);  // tasks spawned outside any worker
  alignas(kCacheLine) std::atomic<std::int64_t> shared_size_{0};
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> steals_{0};
};

// A set of fine-grained tasks to wait for together.
class TaskGroup {
 public:
  explicit TaskGroup(Executor& executor) : executor_(executor) {}
  ~TaskGroup();  // waits for what is still running
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  template <typename F>
  void run(F&& fn) {
    struct FnTask final : Task {
      explicit FnTask(F&& f) : fn(std::forward<F>(f)) {}
      void run() override { fn(); }
      std::decay_t<F> fn;
    };
    pending_.fetch_add(1, std::memory_order_relaxed);
    auto* task = new FnTask(std::forward<F>(fn));
    task->group = this;
    executor_.spawn(task);
  }

  // Returns when every task run() so far has finished; runs tasks meanwhile
  // when called on a worker. Rethrows the first exception a task threw.
  void wait();

 private:
  friend class Executor;
  void finished(std::exception_ptr error);

  Executor& executor_;
  alignas(kCacheLine) std::atomic<std::int64_t> pending_{0};
  std::atomic<int> waiter_{-1};        // the worker helping in wait(), woken by the last task
  Mutex error_mutex_;                  // the last finisher also decrements pending_ under it
  CondVar done_cv_;                    // a waiter outside the executor: pending_ reached 0
  std::exception_ptr error_ PACKTRAIN_GUARDED_BY(error_mutex_);
};

// Pins the calling thread to `cores` (CPU ids). Returns false if the kernel refused.
bool pin_current_thread(const std::vector<int>& cores);

}  // namespace packtrain
