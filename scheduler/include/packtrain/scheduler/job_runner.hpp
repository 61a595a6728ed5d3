#pragma once
// Runs a graph of jobs on an executor's cores.
//
// Four parts, one job each (DESIGN.md decision 11, STYLE.md "decide, then act"):
//  - JobGraph (job_graph.hpp): dependencies, retries, who owns which job,
//    each job's state. Answers what became ready, retried or skipped.
//  - ResourceLedger (resource_ledger.hpp): which worker's core is free,
//    held by a job or lent to an elastic job; GPUs, memory, leases.
//  - place() (placement.hpp): the policy, a pure function of the ledger and
//    the ready jobs with their estimates. Longest first and work-conserving:
//    an idle core never waits while a job that fits is ready, and the long
//    jobs start first so the tail of a sweep is short (DESIGN.md 3).
//  - JobRunner (this file) holds one lock over the graph, the ledger and the
//    records, and is the only part that acts: it tells the graph and the
//    ledger what happened, asks place() what to do, and carries out its
//    decisions (submits jobs and helpers to the executor, asks leases back).
//    None of the three calls back into the runner.
//
// The lock covers bookkeeping only. Journal writes and sink calls are
// queued, in the order things happened, and delivered outside the lock by
// the thread in run(); every delivery is made before run() reports the
// run's end (EventSink::on_run_end) and returns. A slow sink or disk never
// delays placement. Jobs are coarse (milliseconds to hours), so one
// decision point under a mutex is enough; the lock-free deques serve
// fine-grained tasks.
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
// `done` are `skipped`. A job in a GPU slot (Job::gpus) that runs out of
// the GPU's memory (GpuOutOfMemory) beside other jobs runs again, not
// counted against its retries, and its GPU takes one job fewer from then on
// (once for jobs that ran out together); alone on its GPU, or on its last
// slot, it runs again on its cores (Job::cpu_fallback), else it has failed.
// The retried attempt's message says why. This is one process's and one
// run's: work sharing may hand a retried job to a rank that seats it in a
// GPU slot again, and --resume starts with every slot. With `resume`, a job the journal records `crashed`
// (by a supervising parent: cli/supervisor.hpp) is not run again, and its
// dependents are skipped. request_stop() (Ctrl-C) starts nothing new, tells
// running jobs through JobContext::stop_requested() and the callbacks on
// JobContext::stop_token(), and run() returns once they have; the summary's
// exit_code() is then 130. request_preempt() (SIGTERM, SIGUSR1: a batch
// system's time limit or preemption) does the same after raising
// JobContext::checkpoint_requested(), so jobs that can save their step
// first; exit_code() is then 143.
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
#include <packtrain/scheduler/job_memory.hpp>
#include <packtrain/scheduler/job_graph.hpp>
#include <packtrain/scheduler/journal.hpp>
#include <packtrain/scheduler/mutex.hpp>
#include <packtrain/scheduler/resource_ledger.hpp>
#include <packtrain/scheduler/resources.hpp>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

namespace packtrain {

class EventQueue;

// How a runner shares its jobs with other processes (scheduler/distributed
// does it over MPI). Every process adds the same jobs in the same order and
// starts with those starts_with() gives it; the rest it may be handed later
// (take()) or learn have ended elsewhere (ended_elsewhere()). The calls
// below come from runner threads with the runner's lock held (they are
// decisions about placement, made with it): they must only queue work for
// another thread, never block, never call back into the runner.
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
  std::vector<EventSink*> sinks;        // observers, called one at a time, in order, by run()'s thread
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
  int crashed = 0;                      // recorded `crashed` before this run: never run again
  int resumed = 0;                      // done before this run (from the journal)
  int retried = 0;                      // failed attempts that were retried
  int gpu_out_of_memory = 0;            // ... of which ran out of GPU memory (a slot fewer, or on the CPU, after)
  double makespan_s = 0;                // wall time of this run
  double job_seconds = 0;               // sum of the times of the jobs run now
  int peak_cores_in_use = 0;
  int ignored_remote_ends = 0;          // ends from other processes for jobs running here or ended
  bool interrupted = false;
  bool preempted = false;               // ... by request_preempt()
  // The first journal write that failed (a full disk, an I/O error): the
  // run then started nothing new and asked the running jobs to stop, as
  // for Ctrl-C; the journal holds everything written before, and --resume
  // finishes the run. Empty: every write went through.
  std::string journal_error;

  // 0 all done; 1 some failed, diverged, skipped or crashed, or the journal
  // could not be written; 130 interrupted (Ctrl-C); 143 preempted (SIGTERM).
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
  // Every job added, and after them those Job::then added. Read it before
  // run() or after it has returned: while it goes, a job's then may add to
  // it (work sharing, which reads it, has no Job::then).
  const std::deque<Job>& jobs() const { return jobs_; }

  // Runs every job added. Throws Error (before starting anything) for a job
  // that can never fit this node, a dependency on an unknown id, or a cycle.
  // The calling thread delivers the journal writes and sink calls while the
  // jobs run; if one of them throws, the others are still made and run()
  // rethrows the first such exception once the run has ended.
  RunSummary run(const RunOptions& options = {});

  // Thread-safe, from any thread (Ctrl-C: InterruptGuard's sigwait thread),
  // but not from a signal handler: it runs the jobs' stop callbacks
  // (JobContext::stop_token) on the calling thread, outside the runner's
  // lock, and then takes the lock.
  void request_stop() PACKTRAIN_EXCLUDES(mutex_);
  bool stop_requested() const { return stop_.stop_requested(); }
  // request_stop(), with every running job asked first to save its step
  // (JobContext::checkpoint_requested). Same threads as request_stop().
  void request_preempt() PACKTRAIN_EXCLUDES(mutex_);

  // Work sharing (thread-safe, for the thread that talks to other processes):
  // half of the jobs ready here and not started, which stop being ours;
  std::vector<int> give_away();
  // jobs handed to us;
  void take(const std::vector<int>& jobs);
  // a job another process ran reached its final status (`record.rank` says
  // which); ignored, and counted in RunSummary::ignored_remote_ends, for a
  // job that is running here or has ended.
  void ended_elsewhere(int job, const JobRecord& record);
  // How many ready jobs wait here now, and whether run() is under way.
  int ready_count();
  bool running();

 private:
  struct Helpers;
  void validate() const;
  // What validate() checks of one job: that it can ever fit this node.
  void check_fits(const Job& job) const;
  // Job::then's jobs: checks that each can ever run (fits, a new id, known
  // dependencies, no cycle among them). Throws Error. While the run goes,
  // only with the lock held (it reads index_).
  void check_more(const std::vector<Job>& more) const;
  // ... and their rows in the journal of a resumed run (none otherwise).
  std::vector<std::optional<JobRecord>> journal_rows(const std::vector<Job>& more) const;
  // Added while the run goes: checked again (Error: none is added), recorded
  // as run() records its own (`priors`: their journal rows), handed to the graph.
  void append(std::vector<Job> more, std::vector<std::optional<JobRecord>> priors) PACKTRAIN_REQUIRES(mutex_);
  // A resumed run, before it starts: the jobs that jobs done before added
  // (Job::then), added again from their journal records, in the order those
  // jobs ended. Throws Error with the job list as it was.
  void add_again_what_then_added(const Journal& journal);
  // What happened -> what to do: asks place() and carries out its decisions.
  void dispatch() PACKTRAIN_REQUIRES(mutex_);
  // What job j asks the ledger for now (no GPU once moved to the CPU).
  Demand demand_of(int j) const PACKTRAIN_REQUIRES(mutex_);
  void start(int job, std::vector<int> workers, int gpu) PACKTRAIN_REQUIRES(mutex_);
  // `seat`: its GPU's CUDA ordinal and its slot there, or -1s.
  void execute(const Job& job, int j, int attempt, const std::vector<int>& workers, std::pair<int, int> seat,
               std::vector<JobRecord> dependencies) PACKTRAIN_EXCLUDES(mutex_);
  void complete(int job, JobStatus status, JobOutcome outcome, bool may_retry = true,
                bool out_of_gpu_memory = false) PACKTRAIN_EXCLUDES(mutex_);
  void record_ended(const JobGraph::Ended& ended) PACKTRAIN_REQUIRES(mutex_);
  void apply_remote_end(int job, const JobRecord& record) PACKTRAIN_REQUIRES(mutex_);
  void finish_if_over() PACKTRAIN_REQUIRES(mutex_);
  // Elastic jobs and lent cores.
  void register_helper(int job, CoreHelper helper) PACKTRAIN_EXCLUDES(mutex_);
  void lend(int job, int worker, bool own) PACKTRAIN_REQUIRES(mutex_);
  void run_lease(int job, const std::shared_ptr<CoreLease>& lease, int worker, bool own) PACKTRAIN_EXCLUDES(mutex_);
  std::string close_leases(int job) PACKTRAIN_EXCLUDES(mutex_);  // waits for the helpers; their first error
  void emit_resized(int job) PACKTRAIN_REQUIRES(mutex_);
  // Queued for run()'s thread: never called here.
  void emit(JobEvent event);
  void write_journal(std::function<void(Journal&)> write);
  double now() const;

  Executor& executor_;
  NodeResources node_;
  // Added before run(); during it only Job::then's are appended, under the
  // lock (a deque: the running jobs' references stay valid). Job threads
  // get their Job by reference from start(), never by index.
  std::deque<Job> jobs_;
  std::map<std::string, int> index_;

  // Set by run() before its first job starts and left alone until every
  // job has ended: job threads read them without the lock.
  const RunOptions* options_ = nullptr;
  double start_time_ = 0;
  std::stop_source stop_;                             // request_stop(): once, never reset
  std::atomic<bool> preempt_{false};                  // request_preempt(): once, never reset
  const std::unique_ptr<EventQueue> events_;         // journal writes and sink calls, in order
  // Touched by the delivering thread only (run()'s): the first failed journal write.
  std::string journal_error_;

  Mutex mutex_;
  bool active_ PACKTRAIN_GUARDED_BY(mutex_) = false;  // run() is under way
  bool over_ PACKTRAIN_GUARDED_BY(mutex_) = false;    // ... and its last event is queued
  JobGraph graph_ PACKTRAIN_GUARDED_BY(mutex_);
  ResourceLedger ledger_ PACKTRAIN_GUARDED_BY(mutex_);
  std::vector<JobRecord> records_ PACKTRAIN_GUARDED_BY(mutex_);
  // Attempts a job made in earlier runs (--resume): its attempts go on from
  // there (attempts.csv never holds two attempt 1s), while its retries count
  // this run's failures only.
  std::vector<int> earlier_attempts_ PACKTRAIN_GUARDED_BY(mutex_);
  std::map<int, Helpers> helpers_ PACKTRAIN_GUARDED_BY(mutex_);  // running jobs that lend_cores_to
  std::set<int> moved_to_cpu_ PACKTRAIN_GUARDED_BY(mutex_);  // GPU jobs that ran out of GPU memory in a last slot
  std::map<int, int> gpu_slots_at_start_ PACKTRAIN_GUARDED_BY(mutex_);  // running GPU jobs: their GPU's slots then
  std::map<int, std::shared_ptr<JobMemory>> job_memory_ PACKTRAIN_GUARDED_BY(mutex_);  // running jobs' memory
  CondVar lease_ended_;                               // close_leases waits here (notify_all)
  RunSummary summary_ PACKTRAIN_GUARDED_BY(mutex_);
  std::vector<std::pair<int, JobRecord>> early_ended_ PACKTRAIN_GUARDED_BY(mutex_);
};

}  // namespace packtrain
