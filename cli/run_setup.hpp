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
#include <packtrain/distributed/mpi_sharing.hpp>
#include <packtrain/scheduler/console_sink.hpp>
#include <packtrain/scheduler/interrupt.hpp>
#include <packtrain/scheduler/job_runner.hpp>
#include <packtrain/scheduler/journal.hpp>
#include <packtrain/train/options.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace packtrain::cli {

// TrainOptions from the common options (batch size, optimizer, lr).
train::TrainOptions trainer_options(const CommonOptions& common);

// Each job's shard key: the id of the root of its dependency group (the job
// without `after` that it depends on, directly or through other jobs). A
// shard runs whole groups: a lottery-ticket chain split between shards
// would wait forever for its dense job. A job without dependencies (every
// kfold job) is its own root.
std::vector<std::string> shard_keys(const std::vector<Job>& jobs);

class RunSetup {
 public:
  // Validates the common options and finds the node's cores (one, with `serial`).
  RunSetup(const CommonOptions& common, std::string command, bool serial);
  ~RunSetup();

  const NodeResources& node() const { return node_; }
  std::shared_ptr<const data::DatasetSplit> load_data();

  // Prepares --out (refusing a finished run's folder without --resume), opens
  // the journal with `meta` (plus command and options), and starts the executor.
  void open_run(const nlohmann::json& meta);
  JobRunner& runner() { return *runner_; }
  Journal& journal();  // rank 0 only (is_root())
  const RunOptions& run_options() const { return run_options_; }

  // True for the process that writes results and prints (rank 0).
  bool is_root() const { return rank_ == 0; }
  int rank() const { return rank_; }
  // This rank's folder: --out on rank 0, --out/ranks/rank-N on the others.
  const std::filesystem::path& out() const { return out_; }
  // Whether the jobs of shard key `key` (see shard_keys) belong to this
  // --shard (always, without --shard).
  bool in_shard(const std::string& key) const;
  // Adds the jobs of this shard to the runner, and records the whole job
  // list and the shard in the journal's meta (`sweep_jobs`, `shard`).
  void add_jobs(std::vector<Job> jobs);
  // Runs the jobs added (sharing them with the other ranks under MPI).
  RunSummary run();

  nlohmann::json summary_json(const RunSummary& run) const;
  // Writes results.csv, results.json, trace.json and report.html (rank 0).
  void finish(const RunSummary& run, const nlohmann::json& summary, const std::vector<std::string>& columns);
  void print_outputs() const;

 private:
  CommonOptions common_;
  std::string command_;
  std::filesystem::path out_;
  InterruptGuard interrupts_;  // first: every thread created later inherits its signal mask
  std::unique_ptr<distributed::MpiSession> mpi_;  // under mpirun; finalized last
  int rank_ = 0;
  int shard_ = 0, shards_ = 1;
  NodeResources node_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<JobRunner> runner_;
  std::unique_ptr<ConsoleSink> console_;
  std::unique_ptr<dashboard::RunDashboard> dashboard_;  // rank 0: trace.json, report.html, --serve
  std::unique_ptr<distributed::MpiWorkSharing> sharing_;
  RunOptions run_options_;
};

}  // namespace packtrain::cli
