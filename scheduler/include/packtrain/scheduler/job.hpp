#pragma once
// A job: one independent piece of training work and what it needs.
//
// A job's identity is its spec (a JSON object saying what it computes:
// model, schedule, fold, epochs, ...). Its id is a stable hash of that spec,
// and its seed derives from the id, so results do not depend on which core
// or rank ran it (DESIGN.md decision 5).
//
//   packtrain::Job job;
//   job.name = "mlp/cosine/fold0";
//   job.spec = {{"model", "mlp"}, {"fold", 0}};
//   job.cost = 3.0e9;                       // longest first
//   job.run = [](packtrain::JobContext& ctx) {
//     ... train with ctx.threads() threads, check ctx.stop_requested() ...
//     return packtrain::JobOutcome{.metrics = {{"val_top1", 0.88}},
//                                  .artifacts = {"checkpoints/" + ctx.id() + "/final.pt"}};
//   };
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace packtrain {

// The journal's job states. queued -> running -> done | failed | diverged |
// cancelled; skipped when a dependency did not finish. A run killed at any
// moment leaves rows `running`: --resume runs those again. `crashed` is
// written by a supervising parent (cli/supervisor.hpp, DESIGN.md decision
// 13), never by a job: the job was running when the process died by a
// signal, twice; --resume never runs it again (its dependents are skipped).
enum class JobStatus { queued, running, done, failed, diverged, skipped, cancelled, crashed };

std::string_view to_string(JobStatus status);
JobStatus job_status_from_string(std::string_view text);  // throws Error on an unknown word

// What a job's function returns. Exceptions mean `failed`.
struct JobOutcome {
  JobStatus status = JobStatus::done;  // done, diverged or cancelled
  nlohmann::json metrics = nlohmann::json::object();
  std::string message;
  // The files the job wrote that others may read (a dependent job, a
  // --resume): paths relative to the run's folder, each existing when the
  // job returns. Recorded with the job; under MPI the job's end carries
  // them to the other ranks, which have folders of their own.
  std::vector<std::string> artifacts;
};

// One job's row in the journal, and what the runner knows of a job: its
// last attempt, its status and what it returned.
struct JobRecord {
  std::string id;
  std::string name;
  nlohmann::json spec = nlohmann::json::object();
  JobStatus status = JobStatus::queued;
  int attempts = 0;
  double started_at = 0;  // unix seconds, 0 if never started
  double ended_at = 0;
  std::vector<int> cores;
  int rank = 0;
  nlohmann::json metrics = nlohmann::json::object();
  std::string message;
  std::vector<std::string> artifacts;  // JobOutcome::artifacts: paths relative to the run's folder

  double seconds() const { return ended_at > started_at && started_at > 0 ? ended_at - started_at : 0; }
};

class JobContext;

struct Job {
  std::string name;                                   // for people: "mlp/cosine/fold3"
  nlohmann::json spec = nlohmann::json::object();     // identity
  int cores = 1;                                      // whole cores, pinned (an elastic job's minimum)
  // Elastic jobs: up to this many cores while others would be idle (0: just
  // `cores`). The extra cores run the helper the job registers with
  // JobContext::lend_cores_to and are taken back when a waiting job needs them.
  int max_cores = 0;
  // A GPU slot (0 or 1): the job runs on one of the node's GPUs beside the
  // others in its slots, on its own CUDA stream; it holds its `cores` too
  // (its thread feeds the GPU). JobContext::gpu() says which.
  int gpus = 0;
  std::uint64_t gpu_memory_mb = 0;                    // device memory its slot takes (where accounted)
  // Out of GPU memory in the only slot its GPU has left: run it on its
  // cores instead (else it fails as any job does).
  bool cpu_fallback = false;
  std::uint64_t memory_mb = 0;                        // 0: negligible
  double cost = 1.0;                                  // estimate, any unit; longest first
  int retries = 0;                                    // extra attempts after a failure
  std::vector<std::string> after;                     // ids of jobs this one waits for
  // Ids of jobs this one starts after, once they have ended however they
  // ended (order only: their failure skips nothing). A gang's lane uses it
  // so that its members start its jobs in the same order.
  std::vector<std::string> follows;
  // A gang job (trained by several processes together, dataparallel/gang.hpp):
  // the ranks that run it, every one of them from the start. Work sharing
  // never moves it; its first rank reports its end. Empty: one rank runs it.
  std::vector<int> gang_ranks;
  std::function<JobOutcome(JobContext&)> run;
  // Jobs to add once this one has ended done (packtrain batch: an entry
  // planned from another's results), called with its record (metrics
  // included): on the thread that ran it, before its end is recorded, so
  // the run cannot end first; in a resumed run, for a job done before, at
  // the start, with the journal's record. The jobs it returns are checked as
  // run() checks its own (an Error fails this job and adds none); they may
  // depend on any job added before them. Must not call the runner; several
  // jobs' then may run at once. Not with work sharing, nor on a rank other
  // than 0 (run() refuses it): other processes could not know them.
  std::function<std::vector<Job>(const JobRecord& done)> then;

  // 16 hex digits: FNV-1a 64 of the spec's canonical JSON text.
  std::string id() const;
};

// 64-bit FNV-1a of `text`, and a seed derived from a job id and a base seed.
std::uint64_t stable_hash(std::string_view text);
std::uint64_t derive_seed(const std::string& job_id, std::uint64_t base_seed);

// One core lent to a job's helper (JobContext::lend_cores_to). The helper
// runs on that core until it returns; it should return soon after
// should_return() turns true: a waiting job needs the core, or the job is
// ending. Everything it was doing must be left for the job's other threads
// (Hogwild leaves its minibatches in its deque, where they are stolen).
//
// A helper that sleeps between pieces of work hears the ask through
// return_token(), with no polling: a std::stop_callback on it runs on the
// thread that asks (the runner's, with its lock held: notify a condition
// there and nothing more, never call into the runner), or at once on the
// registering thread if the lease was asked back already. Notify under the
// mutex the sleeper's predicate is checked under, or the wakeup can be lost.
//
//   const std::stop_callback wake(lease.return_token(), [&] {
//     std::lock_guard lock(mutex);
//     work_or_return.notify_all();
//   });
//   std::unique_lock lock(mutex);
//   work_or_return.wait(lock, [&] { return lease.should_return() || !queue.empty(); });
class CoreLease {
 public:
  explicit CoreLease(int core) : core_(core) {}
  CoreLease(const CoreLease&) = delete;
  CoreLease& operator=(const CoreLease&) = delete;

  int core() const { return core_; }
  bool should_return() const { return give_back_.stop_requested(); }
  // Thread-safe; the first call runs the callbacks registered on return_token().
  void ask_to_return() { give_back_.request_stop(); }
  std::stop_token return_token() const { return give_back_.get_token(); }

 private:
  int core_;
  std::stop_source give_back_;
};

using CoreHelper = std::function<void(const CoreLease&)>;

// What a running job can ask of the runner. Passed to Job::run.
class JobContext {
 public:
  JobContext(std::string id, std::uint64_t seed, int attempt, std::vector<int> cores, int rank,
             std::stop_token stop, std::function<void(const nlohmann::json&)> report)
      : id_(std::move(id)), seed_(seed), attempt_(attempt), cores_(std::move(cores)), rank_(rank),
        stop_(std::move(stop)), report_(std::move(report)) {}

  const std::string& id() const { return id_; }
  std::uint64_t seed() const { return seed_; }
  int attempt() const { return attempt_; }            // 1 for the first try
  const std::vector<int>& cores() const { return cores_; }
  // The GPU of the job's slot (its CUDA ordinal, GpuDevice::index) and the
  // slot's number there; -1 when it runs on its cores only.
  int gpu() const { return gpu_; }
  int gpu_slot() const { return gpu_slot_; }
  void set_gpu(int gpu, int slot) {
    gpu_ = gpu;
    gpu_slot_ = slot;
  }
  int threads() const { return static_cast<int>(cores_.size()); }  // the intra-op thread budget
  int rank() const { return rank_; }
  // True after Ctrl-C: stop at the next checkpoint and return `cancelled`.
  bool stop_requested() const { return stop_.stop_requested(); }
  // True when the run is preempted (SIGTERM, SIGUSR1: JobRunner::request_preempt),
  // set before stop_requested() turns true: a job that can should save what
  // it needs to go on from its current step (a --resume's attempt of it
  // reads that), then return `cancelled` as for a stop.
  bool checkpoint_requested() const { return preempt_ != nullptr && preempt_->load(std::memory_order_acquire); }
  // The same request, for a job that sleeps on a condition: a
  // std::stop_callback on this token runs when the runner is asked to stop
  // (JobRunner::request_stop, on the thread that asks), or at once on the
  // registering thread if it was asked already. Notify the sleeper under its
  // mutex (see CoreLease for an example). A job run without a runner gets a
  // token that is never asked.
  std::stop_token stop_token() const { return stop_; }
  // Emits a `progress` event (per-epoch metrics) to the run's sinks.
  void report(const nlohmann::json& progress) const {
    if (report_) report_(progress);
  }
  // The records of the jobs this one waits for (Job::after, Job::follows),
  // as they ended, in that order. Empty without a runner.
  const std::vector<JobRecord>& dependencies() const { return dependencies_; }
  // The most cores this job may have at once (Job::max_cores, at least cores()).
  int max_cores() const { return std::max(max_cores_, threads()); }
  // Lends cores to the job: each call of `helper` runs on its own core, a
  // thread pinned there with a budget of one intra-op thread. The job's own
  // cores beyond its first (the one running Job::run) are lent at once and
  // kept to the end; an elastic job also gets idle cores of the node, up to
  // max_cores(), for as long as no waiting job needs them. Call once. When
  // Job::run returns, every lease is asked to return and the runner waits
  // for the helpers before it records the job's end, so `helper` may only
  // use state that outlives Job::run (hold it in a shared_ptr). A helper
  // that throws fails the job. Without a runner (a test calling Job::run
  // directly) nothing is lent.
  void lend_cores_to(CoreHelper helper) const {
    if (lend_) lend_(std::move(helper));
  }

  // For the runner: what dependencies() returns.
  void set_dependencies(std::vector<JobRecord> records) { dependencies_ = std::move(records); }
  // For the runner: the flag request_preempt() sets (outlives the job).
  void set_preempt_flag(const std::atomic<bool>* flag) { preempt_ = flag; }

  // For the runner: how lend_cores_to reaches it.
  void set_elastic(int max_cores, std::function<void(CoreHelper)> lend) {
    max_cores_ = max_cores;
    lend_ = std::move(lend);
  }

 private:
  std::string id_;
  std::uint64_t seed_;
  int attempt_;
  std::vector<int> cores_;
  int rank_;
  std::stop_token stop_;
  std::function<void(const nlohmann::json&)> report_;
  int max_cores_ = 0;
  int gpu_ = -1, gpu_slot_ = -1;
  std::function<void(CoreHelper)> lend_;
  const std::atomic<bool>* preempt_ = nullptr;
  std::vector<JobRecord> dependencies_;
};

}  // namespace packtrain
