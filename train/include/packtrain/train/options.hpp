#pragma once
// How a job trains: optimizer, learning-rate schedule, epochs, batches,
// thread budget and checkpoints, in LibTorch's builder style.
//
//   auto options = packtrain::train::TrainOptions().epochs(10).lr(0.05).schedule(Schedule::cosine).threads(1);

#include <torch/arg.h>

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace packtrain::train {

// SGD: momentum 0.9, weight decay 5e-4, no Nesterov. Adam: LibTorch's betas
// and eps, no weight decay unless asked.
enum class OptimizerKind { sgd, adam };

// Learning-rate schedules, defined over the whole run and applied at every
// optimizer step (step s of S = epochs x batches per epoch):
//   none    the base rate throughout;
//   step    the base rate, x0.1 from 50% of the run, x0.01 from 75%;
//   cosine  base/2 x (1 + cos(pi s / S)): one half cosine from the base rate to 0;
//   warm    cosine with warm restarts (Loshchilov & Hutter, SGDR): three
//           cycles, each twice as long as the one before (S/7, 2S/7, 4S/7),
//           each from the base rate down to 0. Fitting the cycles to the run
//           (rather than fixing the first one in epochs) makes every run end
//           at the bottom of a cycle, so its final accuracy is comparable
//           with the other schedules' whatever the epoch count.
enum class Schedule { none, step, cosine, warm };

OptimizerKind optimizer_from_string(std::string_view name);  // "sgd" | "adam", else Error
Schedule schedule_from_string(std::string_view name);        // "none" | "step" | "cosine" | "warm", else Error
std::string_view to_string(OptimizerKind kind);
std::string_view to_string(Schedule schedule);

// The columns of results.csv for jobs that train one model (kfold, train;
// lth and hogwild add their own): DESIGN.md, "The command line".
const std::vector<std::string>& result_columns();
const std::vector<std::string>& schedule_names();

// The learning rate at optimizer step `step` (0-based) of a run of
// `total_steps`, for `schedule` and base rate `base`.
double scheduled_lr(Schedule schedule, double base, std::int64_t step, std::int64_t total_steps);

// A training loss over a batch: logits (B x classes) and int64 labels (B)
// to a scalar. Validation always reports cross-entropy, comparable across runs.
using LossFunction = std::function<at::Tensor(const at::Tensor& logits, const at::Tensor& labels)>;

struct TrainOptions {
  TORCH_ARG(int, epochs) = 5;
  TORCH_ARG(std::int64_t, batch_size) = 64;
  TORCH_ARG(OptimizerKind, optimizer) = OptimizerKind::sgd;
  // 0: the optimizer's default (0.05 for SGD, 0.001 for Adam).
  TORCH_ARG(double, lr) = 0.0;
  TORCH_ARG(double, momentum) = 0.9;
  // Unset: 5e-4 for SGD, 0 for Adam.
  TORCH_ARG(std::optional<double>, weight_decay) = std::nullopt;
  TORCH_ARG(Schedule, schedule) = Schedule::cosine;
  // The data's order and augmentation. (The initial weights come from
  // models::ModelOptions::seed.)
  TORCH_ARG(std::uint64_t, seed) = 0;
  // Intra-op threads of the calling thread (at::set_num_threads and OpenMP),
  // set before training; 0 leaves the thread's setting as it is.
  TORCH_ARG(int, threads) = 0;
  // Random crop and flip; for 3x32x32 inputs only.
  TORCH_ARG(bool, augment) = false;
  // The loader's helper thread (data::LoaderOptions): used when the calling
  // thread may run on several CPUs, or on one too with prefetch_on_one_core.
  TORCH_ARG(bool, prefetch) = true;
  TORCH_ARG(bool, prefetch_on_one_core) = false;
  TORCH_ARG(std::int64_t, eval_batch_size) = 1000;
  // Checkpoints go to checkpoint_dir (checkpoint_path(dir, epoch)) after
  // every `checkpoint_every` epochs (0: none) and after each epoch listed in
  // checkpoint_epochs (0 is the initial weights, `epochs` the final ones).
  TORCH_ARG(std::string, checkpoint_dir) = "";
  TORCH_ARG(int, checkpoint_every) = 0;
  TORCH_ARG(std::vector<int>, checkpoint_epochs) = {};
  // A checkpoint to go on from: its weights, optimizer state and epoch (and,
  // for a mid-epoch one, its batch and loss sums). The run then ends as the
  // uninterrupted one would have (same options needed).
  TORCH_ARG(std::string, resume_from) = "";
  // Where fit() writes a mid-epoch checkpoint when TrainCallbacks::
  // should_checkpoint asks (preemption); empty: it stops without one. fit()
  // removes the file once a later checkpoint or the run's end supersedes it.
  TORCH_ARG(std::string, preempt_checkpoint) = "";
  // The training loss; empty: cross-entropy.
  TORCH_ARG(LossFunction, loss) = {};

 public:  // TORCH_ARG leaves the section private
  double effective_lr() const;
  double effective_weight_decay() const;
  // Throws packtrain::Error naming the first bad option.
  void validate() const;
};

}  // namespace packtrain::train
