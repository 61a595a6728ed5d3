#include <packtrain/data/loader.hpp>
#include <packtrain/models/fused.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/train/evaluate.hpp>
#include <packtrain/train/fused_trainer.hpp>

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <limits>

namespace packtrain::train {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Every fold's validation with one fused forward a batch (the fused model's
// current weights); `batch_size` images in all, split among the folds.
// Folds whose views differ in size are evaluated each alone.
// Folds no longer training are skipped (their models keep their last weights).
std::vector<EvalMetrics> evaluate_folds(models::FusedModel& fused, std::vector<FusedFold>& folds,
                                        const std::vector<bool>& training, std::int64_t batch_size) {
  const auto k_folds = folds.size();
  std::vector<EvalMetrics> out(k_folds);
  const auto size_of = [](const FusedFold& f) { return f.data.val_idx.defined() ? f.data.val_idx.numel() : 0; };
  const std::int64_t n = size_of(folds.front());
  bool same = true;
  for (const auto& f : folds) same = same && size_of(f) == n;
  if (!same || n == 0) {
    for (std::size_t k = 0; k < k_folds; ++k) {
      if (!training[k]) continue;
      fused.copy_into(static_cast<int>(k), *folds[k].model);
      out[k] = evaluate(*folds[k].model, folds[k].data.val, folds[k].data.val_idx, batch_size);
    }
    return out;
  }
  const bool was_training = fused.is_training();
  fused.eval();
  torch::NoGradGuard no_grad;
  const std::int64_t per_fold = std::max<std::int64_t>(1, batch_size / static_cast<std::int64_t>(k_folds));
  std::vector<EvalSums> sums(k_folds);
  for (std::int64_t start = 0; start < n; start += per_fold) {
    const auto count = std::min(per_fold, n - start);
    std::vector<at::Tensor> images, labels;
    for (auto& f : folds) {
      const auto idx = f.data.val_idx.narrow(0, start, count);
      images.push_back(f.data.val.images.index_select(0, idx));
      labels.push_back(f.data.val.labels.index_select(0, idx));
    }
    const auto logits = fused.forward(torch::stack(images));
    for (std::size_t k = 0; k < k_folds; ++k) {
      const auto s = eval_sums(logits[static_cast<std::int64_t>(k)], labels[k]);
      sums[k].loss += s.loss;
      sums[k].top1 += s.top1;
      sums[k].top5 += s.top5;
    }
  }
  if (was_training) fused.train();
  const auto count = static_cast<double>(n);
  for (std::size_t k = 0; k < k_folds; ++k)
    out[k] = EvalMetrics{sums[k].loss / count, static_cast<double>(sums[k].top1) / count,
                         static_cast<double>(sums[k].top5) / count, n};
  return out;
}

}  // namespace

std::string why_not_fused(const std::string& model, const std::vector<std::int64_t>& train_sizes,
                          const TrainOptions& options) {
  if (!models::fusable(model)) return "model " + model + " does not fuse (mlp and lenet5 do)";
  if (train_sizes.size() < 2) return "one fold alone has nothing to fuse with";
  for (const auto n : train_sizes)
    if (n != train_sizes.front())
      return "the folds train on " + std::to_string(train_sizes.front()) + " and " + std::to_string(n) +
             " samples: their steps would not line up";
  if (options.checkpoint_every() > 0 || !options.checkpoint_epochs().empty())
    return "fused folds do not write checkpoints";
  if (!options.resume_from().empty()) return "fused folds do not go on from a checkpoint";
  if (options.loss()) return "fused folds train on cross-entropy only";
  return "";
}

bool fusion_pays(const std::string& model, std::int64_t batch_size) {
  constexpr std::int64_t kLargestMeasured = 256;
  return model == "lenet5" && batch_size <= kLargestMeasured;
}

std::vector<TrainResult> fit_fused(const std::string& model, std::vector<FusedFold>& folds, const TrainOptions& options,
                                   const FusedCallbacks& callbacks) {
  const auto started = std::chrono::steady_clock::now();
  options.validate();
  std::vector<std::int64_t> sizes;
  for (const auto& f : folds) {
    if (!f.model) throw Error("a fused fold has no model");
    check_data_fits(*f.model, f.data);
    sizes.push_back(f.data.train_idx.numel());
  }
  if (const auto why = why_not_fused(model, sizes, options); !why.empty()) throw Error("cannot fuse: " + why);
  if (options.threads() > 0) {
    (void)at::get_num_threads();  // as Trainer::fit: LibTorch's lazy per-thread count first
    at::set_num_threads(options.threads());
  }

  const auto k_folds = static_cast<std::int64_t>(folds.size());
  std::vector<std::shared_ptr<models::Model>> members;
  std::vector<std::unique_ptr<data::BatchLoader>> loaders;
  for (const auto& f : folds) {
    members.push_back(f.model);
    loaders.push_back(std::make_unique<data::BatchLoader>(f.data.train, f.data.train_idx,
                                                          data::LoaderOptions()
                                                              .batch_size(options.batch_size())
                                                              .seed(f.seed)
                                                              .augment(options.augment())
                                                              .prefetch(options.prefetch())
                                                              .prefetch_on_one_core(options.prefetch_on_one_core())));
  }
  auto fused = models::make_fused(model, members);
  auto optimizer = make_optimizer(options, fused->parameters());

  std::vector<TrainResult> results(folds.size());
  for (auto& r : results) {
    r.val = EvalMetrics{kNaN, kNaN, kNaN, 0};
    r.train_loss = kNaN;
    r.batches_per_epoch = loaders.front()->batches_per_epoch();
  }
  std::vector<bool> training(folds.size(), true);
  std::int64_t alive = k_folds;
  // Ends fold k's run with its weights as they are now (before this step's update).
  const auto finish = [&](std::size_t k, JobStatus status, std::string message) {
    fused->copy_into(static_cast<int>(k), *folds[k].model);
    folds[k].model->eval();
    results[k].status = status;
    results[k].message = std::move(message);
    results[k].seconds = seconds_since(started);
    training[k] = false;
    --alive;
  };

  const std::int64_t steps_per_epoch = loaders.front()->batches_per_epoch();
  const std::int64_t total_steps = steps_per_epoch * options.epochs();
  const double base_lr = options.effective_lr();
  std::int64_t step = 0;
  double lr = scheduled_lr(options.schedule(), base_lr, 0, total_steps);
  for (int epoch = 0; epoch < options.epochs() && alive > 0; ++epoch) {
    const auto epoch_started = std::chrono::steady_clock::now();
    fused->train();
    for (auto& l : loaders) l->start_epoch(epoch);
    std::vector<double> loss_sum(folds.size(), 0.0);
    std::vector<std::int64_t> seen(folds.size(), 0);
    for (std::int64_t b = 0; b < steps_per_epoch && alive > 0; ++b) {
      if (callbacks.should_stop && callbacks.should_stop()) {
        for (std::size_t k = 0; k < folds.size(); ++k)
          if (training[k])
            finish(k, JobStatus::cancelled, "stopped in epoch " + std::to_string(epoch + 1) + " after " +
                                                std::to_string(results[k].steps) + " steps");
        break;
      }
      std::vector<at::Tensor> images, labels;
      for (auto& l : loaders) {
        auto batch = l->next();
        if (!batch) throw Error("a fused fold's loader ran out of batches early");  // equal sizes: cannot happen
        images.push_back(batch->images);
        labels.push_back(batch->labels);
      }
      const auto count = labels.front().size(0);
      lr = scheduled_lr(options.schedule(), base_lr, step, total_steps);
      for (auto& group : optimizer->param_groups()) group.options().set_lr(lr);
      optimizer->zero_grad();
      const auto logits = fused->forward(torch::stack(images));  // K x B x classes
      const auto target = torch::stack(labels);
      const auto losses = torch::nn::functional::cross_entropy(
                              logits.reshape({k_folds * count, -1}), target.reshape({k_folds * count}),
                              torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone))
                              .view({k_folds, count})
                              .mean(1);
      const auto values = losses.detach().to(torch::kDouble).contiguous();
      const double* value = values.data_ptr<double>();
      std::vector<std::int64_t> stepping;
      for (std::size_t k = 0; k < folds.size(); ++k) {
        if (!training[k]) continue;
        if (!std::isfinite(value[k])) {
          finish(k, JobStatus::diverged, "training loss became " + std::to_string(value[k]) + " in epoch " +
                                             std::to_string(epoch + 1) + " (lr " + std::to_string(lr) + ")");
          continue;
        }
        stepping.push_back(static_cast<std::int64_t>(k));
      }
      if (stepping.empty()) break;
      // The folds that go on: each one's gradient is its own mean loss's.
      losses.index_select(0, torch::tensor(stepping, torch::kLong)).sum().backward();
      optimizer->step();
      ++step;
      for (const auto k : stepping) {
        const auto i = static_cast<std::size_t>(k);
        ++results[i].steps;
        loss_sum[i] += value[i] * static_cast<double>(count);
        seen[i] += count;
      }
    }
    const auto validation = evaluate_folds(*fused, folds, training, options.eval_batch_size());
    for (std::size_t k = 0; k < folds.size(); ++k) {
      if (!training[k]) continue;
      const auto& val = validation[k];
      if (val.samples > 0 && !std::isfinite(val.loss)) {
        finish(k, JobStatus::diverged,
               "validation loss became " + std::to_string(val.loss) + " after epoch " + std::to_string(epoch + 1));
        continue;
      }
      EpochMetrics metrics;
      metrics.epoch = epoch + 1;
      metrics.train_loss = loss_sum[k] / static_cast<double>(seen[k]);
      metrics.val_loss = val.loss;
      metrics.val_top1 = val.top1;
      metrics.val_top5 = val.top5;
      metrics.lr = lr;
      metrics.seconds = seconds_since(epoch_started);
      results[k].history.push_back(metrics);
      results[k].val = val;
      results[k].train_loss = metrics.train_loss;
      results[k].epochs_completed = epoch + 1;
      if (callbacks.on_epoch) callbacks.on_epoch(static_cast<int>(k), metrics);
    }
  }
  for (std::size_t k = 0; k < folds.size(); ++k)
    if (training[k]) finish(k, JobStatus::done, "");  // copies each fold's final weights into its model
  return results;
}

}  // namespace packtrain::train
