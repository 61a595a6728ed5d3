#pragma once
// Training K models of one fusable architecture as one fused model
// (models/fused.hpp): the k folds of one model and schedule, each with its
// own initial weights, data, order and metrics, stepped together.
//
// Each fold's numbers are those of its own Trainer::fit, up to float
// rounding: the same initial weights (its model), the same batches in the
// same order (its seed), the same rate at every step, and an optimizer
// update that is elementwise (SGD, Adam), so one step over the stacked
// weights is the K steps. The loss stepped on is the sum of the folds'
// mean losses: each fold's gradient is its own.
//
//   std::vector<packtrain::train::FusedFold> folds;  // model, data, seed of each
//   auto results = packtrain::train::fit_fused("lenet5", folds, options, callbacks);
//   // results[k] is fold k's TrainResult; its model holds its final weights
#include <packtrain/train/trainer.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace packtrain::train {

struct FusedFold {
  std::shared_ptr<models::Model> model;  // its initial weights in; its final weights out
  TrainData data;
  std::uint64_t seed = 0;                // its batches' order (TrainOptions::seed of its own run)
};

struct FusedCallbacks {
  // After each epoch, per fold still training (diverged ones stop reporting).
  std::function<void(int fold, const EpochMetrics&)> on_epoch;
  // Checked before every step; true ends every fold's run as `cancelled`.
  std::function<bool()> should_stop;
};

// Why these folds cannot train fused with these options (empty: they can):
// the model does not fuse, the folds' training views differ in size (their
// steps would not line up), fewer than 2 folds, or options fusing does not
// carry (checkpoints, a custom loss, resuming).
std::string why_not_fused(const std::string& model, const std::vector<std::int64_t>& train_sizes,
                          const TrainOptions& options);

// Whether fusing folds of `model` at `batch_size` trains them faster than
// one after another on one core, as bench_fused measured (docs/performance.md):
// lenet5 1.25-1.4x at batch 32-256 (its convolutions of 1-16 channels
// become 4-64 channel ones); mlp about even (1.02x: its products are large
// enough alone), so it stays unfused and packs more freely.
bool fusion_pays(const std::string& model, std::int64_t batch_size);

// Trains the folds fused for options.epochs() epochs (options' seed is
// ignored: each fold's own is used) and returns each fold's result. A fold
// whose loss turns non-finite ends `diverged` there, as its own run would,
// and the others go on. Throws packtrain::Error where why_not_fused says
// why, or for data a model cannot take.
std::vector<TrainResult> fit_fused(const std::string& model, std::vector<FusedFold>& folds, const TrainOptions& options,
                                   const FusedCallbacks& callbacks = {});

}  // namespace packtrain::train
