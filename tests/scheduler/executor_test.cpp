#include <packtrain/scheduler/executor.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <stdexcept>

using packtrain::Executor;
using packtrain::ExecutorOptions;
using packtrain::TaskGroup;

namespace {

std::int64_t fib(Executor& ex, int n) {
  if (n < 12) {
    std::int64_t a = 0, b = 1;
    for (int i = 0; i < n; ++i) {
      const auto c = a + b;
      a = b;
      b = c;
    }
    return a;
  }
  std::int64_t x = 0, y = 0;
  TaskGroup g(ex);
  g.run([&] { x = fib(ex, n - 1); });
  y = fib(ex, n - 2);
  g.wait();
  return x + y;
}

}  // namespace

TEST(Executor, RunsEveryTaskOnceFromOutside) {
  Executor ex({0, 0, 0}, ExecutorOptions{.pin = false});
  constexpr int kTasks = 20'000;
  std::vector<std::atomic<int>> hits(kTasks);
  TaskGroup g(ex);
  for (int i = 0; i < kTasks; ++i) g.run([&hits, i] { hits[i].fetch_add(1); });
  g.wait();
  for (int i = 0; i < kTasks; ++i) ASSERT_EQ(hits[i].load(), 1) << i;
}

TEST(Executor, NestedForkJoinComputesFibonacci) {
  Executor ex({0, 0, 0, 0}, ExecutorOptions{.pin = false});
  std::int64_t result = 0;
  TaskGroup root(ex);
  root.run([&] { result = fib(ex, 25); });
  root.wait();
  EXPECT_EQ(result, 75025);
}

TEST(Executor, TasksSpawnedOnAWorkerAreStolenByOthers) {
  Executor ex({0, 0}, ExecutorOptions{.pin = false});
  std::mutex m;
  std::set<int> workers;
  TaskGroup root(ex);
  root.run([&] {
    TaskGroup g(ex);
    for (int i = 0; i < 2000; ++i)
      g.run([&] {
        volatile double x = 0;
        for (int k = 0; k < 20000; ++k) x = x + k;
        std::lock_guard lock(m);
        workers.insert(ex.current_worker());
      });
    g.wait();
  });
  root.wait();
  EXPECT_EQ(workers.size(), 2u);
  EXPECT_GT(ex.steal_count(), 0u);
}

TEST(Executor, WaitRethrowsTheTaskException) {
  Executor ex({0, 0}, ExecutorOptions{.pin = false});
  TaskGroup g(ex);
  std::atomic<int> ran{0};
  for (int i = 0; i < 10; ++i)
    g.run([&, i] {
      ran.fetch_add(1);
      if (i == 3) throw std::runtime_error("task 3 broke");
    });
  EXPECT_THROW(
      {
        try {
          g.wait();
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "task 3 broke");
          throw;
        }
      },
      std::runtime_error);
  EXPECT_EQ(ran.load(), 10);  // one failure does not stop the others
}

TEST(Executor, SubmitToRunsOnThatWorker) {
  Executor ex({0, 0, 0}, ExecutorOptions{.pin = false});
  std::atomic<int> where{-1};
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  ex.submit_to(2, [&] {
    where = ex.current_worker();
    std::lock_guard lock(m);
    done = true;
    cv.notify_all();
  });
  std::unique_lock lock(m);
  cv.wait(lock, [&] { return done; });
  EXPECT_EQ(where.load(), 2);
}

TEST(Executor, ReservedWorkerRunsNothingUntilReleased) {
  Executor ex({0, 0}, ExecutorOptions{.pin = false});
  ex.set_reserved(1, true);
  // Fine-grained tasks must all run on worker 0 while worker 1 is lent out.
  std::mutex m;
  std::set<int> workers;
  TaskGroup root(ex);
  root.run([&] {
    TaskGroup g(ex);
    for (int i = 0; i < 500; ++i)
      g.run([&] {
        std::lock_guard lock(m);
        workers.insert(ex.current_worker());
      });
    g.wait();
  });
  root.wait();
  EXPECT_EQ(workers, (std::set<int>{0}));
  ex.set_reserved(1, false);
}
