#pragma once
// The training loop of one job.
//
// Trains a zoo model on an index view of a shared dataset part, validates on
// another after every epoch, and reports. Everything random (data order,
// augmentation) comes from TrainOptions::seed through generators of the job's
// own, so the same seed and options give bit-identical results on the same
// thread count, whichever other jobs run in the process meanwhile.
//
// A loss that turns NaN or infinite ends the run with status `diverged`, and
// should_stop() (checked between batches) with `cancelled`: both are results,
// not exceptions. Stopped for a preemption (should_checkpoint()), it first
// saves a mid-epoch checkpoint that resume_from() continues bit for bit. Bad options throw packtrain::Error before training starts.
//
//   auto data = packtrain::data::shared_dataset("fashion-mnist");
//   auto model = packtrain::models::make_model("mlp", {.seed = seed});
//   packtrain::train::Trainer trainer(model, TrainOptions().epochs(10).threads(1).seed(seed));
//   auto result = trainer.fit(TrainData::train_test(*data), {.on_epoch = [](const EpochMetrics& m) { ... }});
//   if (result.status == packtrain::JobStatus::done) use(result.val.top1);

#include <packtrain/data/dataset.hpp>
#include <packtrain/data/folds.hpp>
#include <packtrain/models/models.hpp>
#include <packtrain/scheduler/job.hpp>
#include <packtrain/train/checkpoint.hpp>
#include <packtrain/train/evaluate.hpp>
#include <packtrain/train/options.hpp>

#include <nlohmann/json.hpp>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace packtrain::train {

// What a run trains and validates on: index views into dataset parts (the
// tensors are shared, never copied).
struct TrainData {
  data::Dataset train;
  at::Tensor train_idx;
  data::Dataset val;
  at::Tensor val_idx;  // undefined or empty: no validation

  // The whole training part, validated on the whole test part.
  static TrainData train_test(const data::DatasetSplit& split);
  // Fold `fold` of the training part: train on its train_idx, validate on its val_idx.
  static TrainData from_fold(const data::DatasetSplit& split, const data::Fold& fold);
};

// A training job's cost (Job::cost, the simulator's FLOPs): each epoch
// trains on `train_samples` (a step about 3 forward passes: forward and
// backward) and validates on `val_samples` (one forward pass each).
inline double job_cost(double flops_per_sample, double train_samples, double val_samples, double epochs) {
  constexpr double kTrainingPasses = 3.0;
  return flops_per_sample * (kTrainingPasses * train_samples + val_samples) * epochs;
}

struct EpochMetrics {
  int epoch = 0;             // epochs completed, from 1
  double train_loss = 0;     // mean over the epoch's samples
  double val_loss = 0;       // NaN without validation data
  double val_top1 = 0;
  double val_top5 = 0;
  double lr = 0;             // at the epoch's last step
  double seconds = 0;        // the epoch's training and validation
};

struct TrainCallbacks {
  std::function<void(const EpochMetrics&)> on_epoch;
  // Checked before every batch; true ends the run as `cancelled`.
  std::function<bool()> should_stop;
  // Checked when should_stop() is true: true saves a mid-epoch checkpoint to
  // TrainOptions::preempt_checkpoint first (JobContext::checkpoint_requested).
  std::function<bool()> should_checkpoint;
  // After every optimizer step (e.g. to re-apply pruning masks).
  std::function<void(torch::nn::Module&)> after_step;
};

struct TrainResult {
  JobStatus status = JobStatus::done;  // done, diverged or cancelled
  int epochs_completed = 0;            // counting those before a resume
  std::int64_t steps = 0;              // optimizer steps taken by this fit()
  EvalMetrics val;                     // at the last completed epoch (NaN if none)
  double train_loss = 0;               // of the last completed epoch (NaN if none)
  std::vector<EpochMetrics> history;   // the epochs this fit() trained
  double seconds = 0;
  std::string message;                 // why it diverged or was cancelled
  // Cancelled with a mid-epoch checkpoint: where it was taken, and the
  // epoch's batches. A run resumed from it reports metrics()["resumed_at"].
  std::optional<CheckpointPosition> checkpointed_at;
  std::optional<CheckpointPosition> resumed_at;
  std::int64_t batches_per_epoch = 0;

  // {"val_top1", "val_top5", "val_loss", "train_loss", "epochs_completed", "steps", "train_seconds"}:
  // the metrics a job reports (JobOutcome::metrics); plus "checkpointed_at"
  // or "resumed_at" ({"epoch", "batch", "batches_per_epoch"}) after a
  // mid-epoch checkpoint.
  nlohmann::json metrics() const;
};

// The optimizer a Trainer builds over `parameters` (SGD with momentum or Adam, base rate and decay from `options`).
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& options, std::vector<at::Tensor> parameters);
// Whether `options` asks for a checkpoint after `epoch` (checkpoint_every, checkpoint_epochs).
bool checkpoint_due(const TrainOptions& options, int epoch);
// Throws packtrain::Error when `data` does not fit `model` (shapes, classes,
// index views) or the training view is empty: what fit() checks first.
void check_data_fits(const models::Model& model, const TrainData& data);

class Trainer {
 public:
  // Throws packtrain::Error for bad options. The optimizer is built here, over
  // the model's parameters.
  Trainer(std::shared_ptr<models::Model> model, TrainOptions options);

  // Trains options.epochs() epochs (from the resume checkpoint's epoch, if
  // any). Throws packtrain::Error for data the model cannot take or a
  // checkpoint that cannot be read, before the first step.
  TrainResult fit(const TrainData& data, const TrainCallbacks& callbacks = {});

  models::Model& model() { return *model_; }
  torch::optim::Optimizer& optimizer() { return *optimizer_; }
  const TrainOptions& options() const { return options_; }

 private:
  void save_if_due(int epoch);
  void remove_preempt_checkpoint() const;

  std::shared_ptr<models::Model> model_;
  TrainOptions options_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
};

}  // namespace packtrain::train
