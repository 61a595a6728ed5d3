#pragma once
// Runs a graph of jobs on an executor's cores.
//
// Placement: ready jobs wait in one queue ordered by cost, longest first.
// Whenever cores free up, the runner starts the longest ready job that fits
// (enough free whole cores, GPUs and memory), then the next, until nothing
// fits: an idle core never waits while a job that fits is runnable, and the
// long jobs start first so the tail of a sweep is short (DESIGN.md 3).
// Jobs are coarse (milliseconds to hours), so this one decision point is a
// mutex-guarded queue; the lock-free deques serve fine-grained tasks.
//
// A job with `cores = k` runs on the worker of its first core; the workers
// of the other k-1 cores are reserved (run nothing) while it runs. Its
// thread is pinned to exactly those cores and gets an intra-op budget of k
// threads (OpenMP's per-thread setting, plus RunOptions::thread_budget for
// LibTorch). Never more running job threads than cores.
//
// Elastic jobs (Job::max_cores > cores) start on their minimum. Once such a
// job has registered a helper (JobContext::lend_cores_to), cores that no
// ready job can use are lent to it, one helper call per core, up to its
// maximum; when a ready job would fit with those cores, the runner asks the
// newest leases back and starts the job once they are returned. Every
// change is a `resized` event. Lent cores count as in use (never more
// running threads than cores) but not as busy for work sharing: a node
// whose spare cores are lent still asks other ranks for work.
//
// A job that throws is recorded `failed` with the message and retried up
// to `retries` more times; jobs depending on a job that did not finish
// `done` are `skipped`. request_stop() (Ctrl-C) starts nothing new, tells
// running jobs through JobContext::stop_requested(), and run() returns once
// they have; the summary's exit_code() is then 130.
//
//   packtrain::Executor ex(node.cores);
//   packtrain::JobRunner runner(ex, node);
//   auto a = runner.add(job_a);
//   job_b.after = {a};
//   runner.add(job_b);
//   auto summary = runner.run({.journal = journal.get(), .resume = true});
#include <packtrain/scheduler/events.hpp>
#include <packtrain/scheduler/executor.hpp>
#include <packtrain/scheduler/job.hpp>
#include <packtrain/scheduler/journal.hpp>
#include <packtrain/scheduler/resources.hpp>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace packtrain {

// How a runner shares its jobs with other processes (scheduler/distributed
// does it over MPI). Every process adds the same jobs in the same order and
// starts with those starts_with() gives it; the rest it may be handed later
// (take()) or learn have ended elsewhere (ended_elsewhere()). The calls
// below come from runner threads with the runner's lock held: they must
// only queue work for another thread, never call back into the runner.
class WorkSharing {
 public:
  virtual ~WorkSharing() = default;
  virtual bool starts_with(int job) = 0;
  // Idle cores and nothing ready here: time to ask others for work.
  virtual void idle() = 0;
  // A job this process ran reached its final status.
  virtual void ended(int job, const JobRecord& record) = 0;
  // Jobs became ready here (to hand some to a process that asked earlier).
  virtual void work_available() {}
};

struct RunOptions {
  Journal* journal = nullptr;           // where jobs are recorded (optional)
  bool resume = false;                  // skip jobs the journal records as done
  int rank = 0;                         // recorded with every job
  std::uint64_t base_seed = 1;          // each job's seed derives from it and the job id
  std::vector<EventSink*> sinks;        // observers, called one at a time
  // Called inside each job's thread before it runs, with its thread budget
  // (LibTorch jobs pass at::set_num_threads here). OpenMP is set already.
  std::function<void(int threads)> thread_budget;
  // Pin job threads to their cores. Off only to test placement logic with
  // more (virtual) cores than the machine has.
  bool pin_threads = true;
  // Ids of jobs already done (resume without a journal: ranks other than 0).
  std::vector<std::string> already_done;
  // Sharing jobs with other processes; null for a run on its own.
  WorkSharing* sharing = nullptr;
};

struct RunSummary {
  std::vector<JobRecord> jobs;          // every job, in the order added
  int done = 0, failed = 0, diverged = 0, skipped = 0, cancelled = 0;
  int resumed = 0;                      // done before this run (from the journal)
  int retried = 0;                      // failed attempts that were retried
  double makespan_s = 0;                // wall time of this run
  double job_seconds = 0;               // sum of the times of the jobs run now
  int peak_cores_in_use = 0;
  bool interrupted = false;

  // 0 all done; 1 some failed, diverged or skipped; 130 interrupted.
  int exit_code() const;
};

class JobRunner {
 public:
  JobRunner(Executor& executor, NodeResources node);
  ~JobRunner();
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  // Adds a job; returns its id. Throws Error for a job without a function or
  // with the id of a job already added.
  std::string add(Job job);
  const std::vector<Job>& jobs() const { return jobs_; }

  // Runs every job added. Throws Error (before starting anything) for a job
  // that can never fit this node, a dependency on an unknown id, or a cycle.
  RunSummary run(const RunOptions& options = {});

  // Thread-safe; may be called from a signal-handling thread.
  void request_stop();
  bool stop_requested() const { return stop_.load(); }

  // Work sharing (thread-safe, for the thread that talks to other processes):
  // half of the jobs ready here and not started, which stop being ours;
  std::vector<int> give_away();
  // jobs handed to us;
  void take(const std::vector<int>& jobs);
  // a job another process ran reached its final status (`record.rank` says which).
  void ended_elsewhere(int job, const JobRecord& record);
  // How many ready jobs wait here now, and whether run() is under way.
  int ready_count();
  bool running();

 private:
  struct State;
  struct Elastic;
  void validate() const;
  void dispatch();                                    // mutex_ held
  void start(int job, std::vector<int> workers);      // mutex_ held
  void execute(int job, const std::vector<int>& workers);
  void complete(int job, const std::vector<int>& workers, JobStatus status, JobOutcome outcome);
  void skip_dependents(int job);                      // mutex_ held
  void release_dependents(int job);                   // mutex_ held: `job` is done
  void apply_remote_end(int job, const JobRecord& record);  // mutex_ held
  // Elastic jobs and lent cores.
  void register_helper(int job, CoreHelper helper);
  void lend(int job, int worker, bool own);           // mutex_ held
  void run_lease(int job, const std::shared_ptr<Elastic>& elastic, const std::shared_ptr<CoreLease>& lease,
                 int worker, bool own);
  std::string close_leases(int job);                  // waits for the helpers; their first error
  void rebalance();                                   // mutex_ held
  void emit_resized(int job, const Elastic& elastic); // mutex_ held
  void emit(const JobEvent& event);
  double now() const;

  Executor& executor_;
  NodeResources node_;
  std::vector<Job> jobs_;
  std::map<std::string, int> index_;

  const RunOptions* options_ = nullptr;
  std::mutex mutex_;
  std::condition_variable finished_cv_;
  std::vector<State> state_;                          // guarded by mutex_
  std::multimap<double, int, std::greater<>> ready_;  // cost -> job, guarded by mutex_
  std::vector<bool> worker_busy_;                     // guarded by mutex_
  int cores_in_use_ = 0, gpus_in_use_ = 0, running_ = 0, ended_ = 0;
  std::uint64_t memory_in_use_ = 0;
  RunSummary summary_;
  std::atomic<bool> stop_{false};
  std::vector<std::pair<int, JobRecord>> early_ended_;  // guarded by mutex_
  std::vector<int> elastic_running_;                  // elastic jobs with a helper; guarded by mutex_
  int lent_ = 0;                                      // cores lent to elastic jobs (in cores_in_use_)
  int returning_ = 0;                                 // ... of which asked back for a waiting job
  std::condition_variable leases_cv_;                 // a lease ended (with mutex_)
  std::mutex events_mutex_;                           // serializes sink calls
  double start_time_ = 0;
};

}  // namespace packtrain
