#pragma once
// A mutex that clang's -Wthread-safety can check (STYLE.md, "Concurrency").
//
// Members say `PACKTRAIN_GUARDED_BY(mutex_)`, functions that expect a lock
// held say `PACKTRAIN_REQUIRES(mutex_)`, and a clang build with
// -Wthread-safety (on for every packtrain target when the compiler is clang,
// as an error) proves every access at compile time. GCC ignores the
// annotations. Condition variables wait on the Mutex itself
// (std::condition_variable_any, or CondVar below): the analysis then sees
// the lock as held across the wait, which is what the caller observes.
// Write the wait as a loop, not a predicate lambda: the analysis does not
// look into lambdas, so a guarded read inside one is reported.
//
//   packtrain::Mutex mutex_;
//   packtrain::CondVar changed_;
//   int count_ PACKTRAIN_GUARDED_BY(mutex_) = 0;
//   ...
//   packtrain::MutexLock lock(mutex_);
//   while (count_ == 0) changed_.wait(mutex_);
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define PACKTRAIN_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define PACKTRAIN_THREAD_ANNOTATION(x)
#endif

#define PACKTRAIN_CAPABILITY(x) PACKTRAIN_THREAD_ANNOTATION(capability(x))
#define PACKTRAIN_SCOPED_CAPABILITY PACKTRAIN_THREAD_ANNOTATION(scoped_lockable)
#define PACKTRAIN_GUARDED_BY(x) PACKTRAIN_THREAD_ANNOTATION(guarded_by(x))
#define PACKTRAIN_PT_GUARDED_BY(x) PACKTRAIN_THREAD_ANNOTATION(pt_guarded_by(x))
#define PACKTRAIN_REQUIRES(...) PACKTRAIN_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define PACKTRAIN_ACQUIRE(...) PACKTRAIN_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define PACKTRAIN_RELEASE(...) PACKTRAIN_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define PACKTRAIN_EXCLUDES(...) PACKTRAIN_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))

namespace packtrain {

class PACKTRAIN_CAPABILITY("mutex") Mutex {
 public:
  void lock() PACKTRAIN_ACQUIRE() { mutex_.lock(); }
  void unlock() PACKTRAIN_RELEASE() { mutex_.unlock(); }

 private:
  std::mutex mutex_;
};

class PACKTRAIN_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mutex) PACKTRAIN_ACQUIRE(mutex) : mutex_(mutex) { mutex_.lock(); }
  ~MutexLock() PACKTRAIN_RELEASE() { mutex_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mutex_;
};

// A condition variable for one kind of waiter (STYLE.md, "Waiting": a
// condition shared by waits with different predicates loses wakeups).
class CondVar {
 public:
  // Unlocks `mutex` while it sleeps; holds it again when it returns.
  void wait(Mutex& mutex) PACKTRAIN_REQUIRES(mutex) { cv_.wait(mutex); }
  void notify_one() { cv_.notify_one(); }
  void notify_all() { cv_.notify_all(); }

 private:
  std::condition_variable_any cv_;
};

}  // namespace packtrain
