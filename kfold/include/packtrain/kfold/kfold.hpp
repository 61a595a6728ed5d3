#pragma once
// K-fold cross-validation sweeps: models x schedules x folds, each
// (model, schedule, fold) an independent job packed onto the cores.
//
// The sweep splits the training part of one shared dataset into k folds
// (stratified by default, deterministic from the seed), turns every
// (model, schedule, fold) into a job whose identity is its spec, runs them
// on a JobRunner, and aggregates validation top-1 per (model, schedule).
//
//   auto data = packtrain::data::shared_dataset("fashion-mnist");
//   packtrain::kfold::KFold sweep(data, packtrain::kfold::KFoldOptions().folds(5)
//       .trainer(packtrain::train::TrainOptions().epochs(2).batch_size(64)));
//   sweep.add_model("mlp").add_model("lenet5")
//        .add_schedule(Schedule::cosine).add_schedule(Schedule::warm);
//   auto result = sweep.run(runner, run_options);
//   for (const auto& g : result.groups) std::printf("%s %s %.4f\n", g.model.c_str(), ...);
#include <packtrain/data/dataset.hpp>
#include <packtrain/dataparallel/data_parallel.hpp>
#include <packtrain/data/folds.hpp>
#include <packtrain/models/models.hpp>
#include <packtrain/scheduler/job_runner.hpp>
#include <packtrain/train/options.hpp>

#include <torch/arg.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace packtrain::kfold {

// Builds a fresh model for a job (the initial weights must come from
// options.seed, which the sweep sets to the job's seed).
using ModelFactory = std::function<std::shared_ptr<models::Model>(const models::ModelOptions& options)>;

struct KFoldOptions {
  TORCH_ARG(int, folds) = 5;
  TORCH_ARG(bool, stratified) = true;
  TORCH_ARG(std::uint64_t, seed) = 1;          // folds and every job's seed derive from it
  TORCH_ARG(std::int64_t, limit) = 0;          // use the first N training samples only (0: all)
  TORCH_ARG(int, cores_per_job) = 1;
  // Jobs with more than one core, or room to grow (max_cores_per_job above
  // cores_per_job: they take idle cores at the tail of the sweep and give
  // them back), train data-parallel replicas on micro_batch samples
  // (dataparallel/): their numbers depend on micro_batch, never on the cores
  // they had. One-core jobs train as before (train::Trainer). 0: cores_per_job.
  TORCH_ARG(int, max_cores_per_job) = 0;
  TORCH_ARG(std::int64_t, micro_batch) = dataparallel::kDefaultMicroBatch;
  // Each job's memory budget (Job::memory_mb; 0: none).
  TORCH_ARG(std::uint64_t, memory_mb_per_job) = 0;
  // Replicas or intra-op threads for multi-core jobs; unset: each model's
  // default (dataparallel::default_parallelism). Threads do not grow.
  TORCH_ARG(std::optional<dataparallel::Parallelism>, parallelism) = std::nullopt;
  // Trainer parameters shared by every job: epochs, batch size, optimizer,
  // lr, checkpoint frequency. Its schedule, seed and threads are set per job.
  TORCH_ARG(train::TrainOptions, trainer) = train::TrainOptions().epochs(2);
  // Emit a progress event every `print_every` epochs (0: none).
  TORCH_ARG(int, print_every) = 1;
  // Gang jobs (under mpirun, --ranks-per-job): the gang that trains job
  // `id` on this rank, null where one rank trains it alone. When set, every
  // job trains replicas on micro_batch samples (a job's numbers are then
  // the same whether a gang or one rank runs it: dataparallel/gang.hpp).
  TORCH_ARG(dataparallel::GangOf, gangs) = nullptr;
  // Fused folds (train/fused_trainer.hpp): with `fuse`, the folds of a
  // (model, schedule) whose model fusion pays for (train::fusion_pays) train
  // as fused jobs of several folds each, enough of them to keep `fuse_cores`
  // cores busy (the run's cores in all, every rank's; 0: no fusing). Each
  // fold keeps its journal row (its id and seed unchanged): it waits for its
  // fused job and returns the outcome that job wrote for it into
  // <checkpoint_root>/<fused job id>/fold<k>.json (so fusing needs a
  // checkpoint_root; without that file it trains alone). Only one-core jobs
  // that train alone fuse (no replicas or gangs); fused jobs write no
  // checkpoints. KFold::run refuses a runner whose base seed is not `seed`
  // (a fused job seeds each fold as the runner would).
  TORCH_ARG(bool, fuse) = false;
  TORCH_ARG(int, fuse_cores) = 0;
  // Jobs checkpoint into <checkpoint_root>/<job id>/ when trainer().checkpoint_every() > 0,
  // and a resumed job goes on from its latest checkpoint.
  TORCH_ARG(std::string, checkpoint_root) = "";
};

// Mean and standard deviation of validation top-1 over the folds of one
// (model, schedule) that finished.
struct GroupSummary {
  std::string model;
  std::string schedule;
  int folds_done = 0;
  int folds_total = 0;
  double mean_top1 = 0;
  double std_top1 = 0;   // sample standard deviation (0 for one fold)
  double mean_loss = 0;
  bool best = false;     // the highest mean top-1
};

struct KFoldResult {
  RunSummary run;                      // every job's record, counts, makespan
  std::vector<GroupSummary> groups;
  double sum_job_seconds = 0;          // of every job in the sweep (resumed ones included)
  double speedup = 0;                  // sum of job times / makespan
};

class KFold {
 public:
  explicit KFold(std::shared_ptr<const data::DatasetSplit> data, KFoldOptions options = {});

  // Adds a model; without a factory, the zoo's model of that name. Throws
  // Error for an unknown zoo name or one whose input does not fit the data.
  KFold& add_model(const std::string& name, ModelFactory factory = {});
  KFold& add_schedule(train::Schedule schedule);

  // One job per (model, schedule, fold), in that order. Throws Error when no
  // model or schedule was added, or k is not in [2, training samples].
  std::vector<Job> jobs() const;

  // Adds the jobs to `runner`, runs them and aggregates.
  KFoldResult run(JobRunner& runner, const RunOptions& options) const;

  const KFoldOptions& options() const { return options_; }

 private:
  struct ModelEntry {
    std::string name;
    ModelFactory factory;
    double flops = 0;
    bool zoo = true;  // models::make_model builds it (a zoo model or a TorchScript file; not a caller's factory)
    std::string label;  // its name in results: models::model_label, or a caller's name as given
  };
  std::shared_ptr<const data::DatasetSplit> data_;
  KFoldOptions options_;
  std::vector<ModelEntry> models_;
  std::vector<train::Schedule> schedules_;
  std::shared_ptr<const std::vector<data::Fold>> folds_;
};

// Groups, sum of job times and speedup of a finished run of kfold jobs.
KFoldResult result_of(RunSummary run);

// Groups records of kfold jobs by (model, schedule), in first-seen order.
std::vector<GroupSummary> summarize(const std::vector<JobRecord>& records);

// The summary table the CLI prints: one line per (model, schedule), the best
// marked, "—" for a group with no finished fold; then the speed line
// (format_speedup) over `cores` in all, on `ranks` ranks.
std::string format_summary(const KFoldResult& result, int cores, int ranks = 1);

}  // namespace packtrain::kfold
