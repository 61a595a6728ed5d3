#pragma once
// What every sweep subcommand does around its sweep, in the order that keeps
// bad input harmless: catch Ctrl-C first (before any thread exists), check
// options and cores, load the data, and only then touch the output folder,
// open the journal and start the executor. At the end: results.csv,
// results.json, and the lines that say where they are.
//
// Under mpirun (or srun with MPI) every rank runs the same command and
// builds the same jobs; rank 0 owns --out (journal, results, progress
// line), the others work in --out/ranks/rank-N on their own node, and the
// ranks share the jobs (distributed/mpi_sharing.hpp). Without MPI,
// --shard i/n runs a disjoint share of the jobs (SLURM job arrays).
#include "common_options.hpp"

#include <packtrain/dashboard/run_dashboard.hpp>
#include <packtrain/data/dataset.hpp>
#include <packtrain/dataparallel/gang.hpp>
#include <packtrain/distributed/mpi_sharing.hpp>
#include <packtrain/scheduler/console_sink.hpp>
#include <packtrain/scheduler/gang_plan.hpp>
#include <packtrain/scheduler/interrupt.hpp>
#include <packtrain/scheduler/job_runner.hpp>
#include <packtrain/scheduler/mutex.hpp>
#include <packtrain/scheduler/journal.hpp>
#include <packtrain/train/options.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace packtrain::cli {

// TrainOptions from the common options (batch size, optimizer, lr).
train::TrainOptions trainer_options(const CommonOptions& common);

// `packtrain simulate`: while capture_jobs_for_simulation() holds a
// CapturedJobs, a RunSetup stands for a virtual node of `cores` cores (no
// MPI, no --out needed, nothing detected or written), and open_run() checks
// the jobs as it would, moves them there and throws JobsCaptured: the
// command's own code builds the jobs, and none runs.
struct CapturedJobs {
  int cores = 1;
  std::string command;
  std::vector<Job> jobs;
  nlohmann::json meta;
  std::shared_ptr<const data::DatasetSplit> data;  // what the command loaded (its models' input shape)
};
struct JobsCaptured {};
void capture_jobs_for_simulation(CapturedJobs* into);  // nullptr: off

class RunSetup {
 public:
  // Validates the common options and finds the node's cores (one, with `serial`).
  RunSetup(const CommonOptions& common, std::string command, bool serial);
  ~RunSetup();

  const NodeResources& node() const { return node_; }
  std::shared_ptr<const data::DatasetSplit> load_data();

  // Checks everything that can refuse the run before anything is written:
  // that every job fits the node, --out (a new or empty folder; with
  // --resume, a folder holding this same run: same command, same job list,
  // same shard), and the --serve port. Then creates --out, opens the
  // journal with `meta` (plus the command, the flags, the results'
  // `columns`, the node's cores, the whole job list and the shard), starts
  // the executor and adds this shard's jobs to the runner.
  void open_run(const nlohmann::json& meta, std::vector<Job> jobs, const std::vector<std::string>& columns);
  JobRunner& runner() { return *runner_; }
  Journal& journal();  // rank 0 only (is_root())
  const RunOptions& run_options() const { return run_options_; }

  // True for the process that writes results and prints (rank 0).
  bool is_root() const { return rank_ == 0; }
  int rank() const { return rank_; }
  // Cores of the run: this node's, summed over every rank under MPI (after open_run).
  int total_cores() const { return total_cores_; }
  int ranks() const;  // 1 without MPI
  // The same figure before open_run, for planning jobs (collective under
  // MPI: every rank calls it, at the same point).
  int cores_in_all();
  // True under `packtrain simulate`: the jobs are captured, not run.
  static bool simulating();
  // --shard's N (1 without shards).
  int shards() const { return shards_; }
  // Resuming a run (--resume and --out holds one): the journal's meta value
  // `key`, "" where the run recorded none; nullopt for a new run. For job
  // plans that must be the run's own on every resume (kfold's fused folds).
  // Collective under MPI: every rank calls it, at the same point.
  std::optional<std::string> resumed_meta(const std::string& key);
  // This rank's folder: --out on rank 0, --out/ranks/rank-N on the others.
  const std::filesystem::path& out() const { return out_; }
  // Runs the jobs added (sharing them with the other ranks under MPI; after
  // gang(), every rank runs every job instead, together).
  RunSummary run();
  // Under mpirun: one gang of every rank (collective: every rank calls it,
  // at the same point, before open_run). Each job is then trained by every
  // rank at once (dataparallel/gang.hpp) instead of shared out; rank 0
  // records it. Null without MPI.
  std::shared_ptr<dataparallel::Gang> gang();
  // Under mpirun with --ranks-per-job R (kfold, lth): the gang this rank
  // trains job `job_id` in, or null where the job runs on one rank (a solo
  // job, or a gang this rank is not in). Valid after open_run(), which
  // plans the gangs (scheduler/gang_plan.hpp); thread-safe.
  std::shared_ptr<dataparallel::Gang> gang_for(const std::string& job_id) const;
  // gang_for as a sweep's option (KFoldOptions::gangs, LthOptions::gangs);
  // null without --ranks-per-job above 1.
  dataparallel::GangOf gangs();
  // A gang's job calls this first thing: a Ctrl-C (or mpirun's SIGTERM)
  // that came before it stops the job now, at its first exchange with the
  // other ranks, rather than keeping this rank's runner from starting it
  // (the other ranks would wait for it forever).
  void gang_job_started();
  // After run(): the gang's exchanges, the bytes this rank sent in them and
  // the seconds spent in them.
  std::int64_t gang_exchanges() const;
  std::int64_t gang_bytes() const;
  double gang_seconds() const;

  nlohmann::json summary_json(const RunSummary& run) const;
  // Records `summary` in the journal, then writes results.csv, results.json,
  // trace.json and report.html (rank 0) the way `packtrain report` does.
  void finish(const RunSummary& run, const nlohmann::json& summary);
  void print_outputs() const;
  // The line that says how much faster the run was than its jobs one after
  // another, on how many cores, or that there was nothing to run.
  std::string speed_line(const RunSummary& run) const;

 private:
  // --token, --token-file, --bind: a dashboard other machines can reach needs a token.
  void check_dashboard_access();
  // open_run(), --ranks-per-job: plans the gangs, makes the lanes'
  // communicators (collective) and wraps each gang job this rank is in.
  void plan_gang_jobs(std::vector<Job>& jobs);

  CommonOptions common_;
  std::string command_;
  nlohmann::json normalization_;  // load_data(): the figures the images were normalized with
  std::filesystem::path out_;
  InterruptGuard interrupts_;  // first: every thread created later inherits its signal mask
  std::unique_ptr<distributed::MpiSession> mpi_;  // under mpirun; finalized last
  int rank_ = 0;
  int shard_ = 0, shards_ = 1;
  NodeResources node_;
  int total_cores_ = 0;
  bool journal_failed_ = false;  // run(): a journal write failed; nothing more is written
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<JobRunner> runner_;
  std::unique_ptr<ConsoleSink> console_;
  std::unique_ptr<dashboard::RunDashboard> dashboard_;  // rank 0: trace.json, report.html, --serve
  std::unique_ptr<distributed::MpiWorkSharing> sharing_;
  std::unique_ptr<distributed::MpiGangComm> gang_comm_;  // gang(): every rank runs every job
  std::optional<GangPlan> gang_plan_;                     // --ranks-per-job
  std::vector<std::unique_ptr<distributed::MpiGangComm>> gang_lanes_;  // this rank's group's lanes
  std::map<std::string, std::shared_ptr<dataparallel::Gang>> gangs_;   // by job id: the gang jobs this rank is in
  Mutex gang_mutex_;                                      // the interrupt's thread and the job's
  bool gang_started_ PACKTRAIN_GUARDED_BY(gang_mutex_) = false;
  bool gang_stop_pending_ PACKTRAIN_GUARDED_BY(gang_mutex_) = false;
  std::atomic<bool> preempt_asked_{false};  // the stop asked was a preemption (SIGTERM, SIGUSR1)
  RunOptions run_options_;
};

}  // namespace packtrain::cli
