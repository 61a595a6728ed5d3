#include <packtrain/data/loader.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/train/checkpoint.hpp>
#include <packtrain/train/fused_optimizers.hpp>
#include <packtrain/train/trainer.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

namespace packtrain::train {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string shape_text(std::int64_t c, std::int64_t h, std::int64_t w) {
  return std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w);
}

// The data must be what the model was built for: checked up front, so a
// mismatch is a clear Error and not a LibTorch shape error mid-run.
void check_fits(const models::Model& model, const data::Dataset& part, const at::Tensor& idx, const char* what) {
  const auto& o = model.options();
  if (!part.images.defined() || part.images.dim() != 4)
    throw Error(std::string(what) + " images must be N x C x H x W");
  const auto& s = part.images.sizes();
  if (s[1] != o.channels || s[2] != o.height || s[3] != o.width)
    throw Error(std::string("the model takes ") + shape_text(o.channels, o.height, o.width) + " inputs but the " + what +
                " images are " + shape_text(s[1], s[2], s[3]));
  if (part.size() > 0 && part.labels.max().item<std::int64_t>() >= o.classes)
    throw Error(std::string("the ") + what + " labels go up to " + std::to_string(part.labels.max().item<std::int64_t>()) +
                " but the model has " + std::to_string(o.classes) + " classes");
  if (idx.defined() && idx.numel() > 0 &&
      (idx.min().item<std::int64_t>() < 0 || idx.max().item<std::int64_t>() >= part.size()))
    throw Error(std::string("the ") + what + " index view reaches outside its dataset part");
}

}  // namespace

TrainData TrainData::train_test(const data::DatasetSplit& split) {
  return TrainData{split.train, data::all_indices(split.train), split.test, data::all_indices(split.test)};
}

TrainData TrainData::from_fold(const data::DatasetSplit& split, const data::Fold& fold) {
  return TrainData{split.train, fold.train_idx, split.train, fold.val_idx};
}

nlohmann::json TrainResult::metrics() const {
  // NaN has no JSON form: an absent figure is null.
  const auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  const auto position = [this](const CheckpointPosition& at) {
    return nlohmann::json{{"epoch", at.epoch}, {"batch", at.batch}, {"batches_per_epoch", batches_per_epoch}};
  };
  nlohmann::json out = {{"val_top1", number(val.top1)},
          {"val_top5", number(val.top5)},
          {"val_loss", number(val.loss)},
          {"train_loss", number(train_loss)},
          {"epochs_completed", epochs_completed},
          {"steps", steps},
          {"train_seconds", seconds}};
  if (checkpointed_at) out["checkpointed_at"] = position(*checkpointed_at);
  if (resumed_at) out["resumed_at"] = position(*resumed_at);
  return out;
}

Trainer::Trainer(std::shared_ptr<models::Model> model, TrainOptions options)
    : model_(std::move(model)), options_(std::move(options)) {
  if (!model_) throw Error("Trainer needs a model");
  options_.validate();
  optimizer_ = make_optimizer(options_, model_->parameters());
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& options, std::vector<at::Tensor> parameters) {
  const double lr = options.effective_lr();
  const double decay = options.effective_weight_decay();
  if (options.optimizer() == OptimizerKind::sgd)
    return std::make_unique<FusedSgd>(
        std::move(parameters),
        torch::optim::SGDOptions(lr).momentum(options.momentum()).weight_decay(decay).nesterov(false));
  return std::make_unique<FusedAdam>(std::move(parameters), torch::optim::AdamOptions(lr).weight_decay(decay));
}

bool checkpoint_due(const TrainOptions& options, int epoch) {
  const auto& listed = options.checkpoint_epochs();
  const bool every = options.checkpoint_every() > 0 && epoch > 0 && epoch % options.checkpoint_every() == 0;
  return every || std::find(listed.begin(), listed.end(), epoch) != listed.end();
}

void check_data_fits(const models::Model& model, const TrainData& data) {
  check_fits(model, data.train, data.train_idx, "training");
  if (!data.train_idx.defined() || data.train_idx.numel() == 0) throw Error("the training index view is empty");
  if (data.val_idx.defined() && data.val_idx.numel() > 0) check_fits(model, data.val, data.val_idx, "validation");
}

void Trainer::save_if_due(int epoch) {
  if (!checkpoint_due(options_, epoch)) return;
  save_checkpoint(checkpoint_path(options_.checkpoint_dir(), epoch), *model_, optimizer_.get(), epoch);
  remove_preempt_checkpoint();  // this one is later
}

void Trainer::remove_preempt_checkpoint() const {
  if (options_.preempt_checkpoint().empty()) return;
  std::error_code ec;
  std::filesystem::remove(options_.preempt_checkpoint(), ec);  // absent is fine
}

TrainResult Trainer::fit(const TrainData& data, const TrainCallbacks& callbacks) {
  const auto started = std::chrono::steady_clock::now();
  check_data_fits(*model_, data);

  if (options_.threads() > 0) {
    // LibTorch initializes a thread's OpenMP count lazily, from a process-wide
    // value any job may have set: trigger that first, then set ours.
    (void)at::get_num_threads();
    at::set_num_threads(options_.threads());  // OpenMP's per-thread count (and oneDNN's, which follows it)
  }

  TrainResult result;
  result.val = EvalMetrics{kNaN, kNaN, kNaN, 0};
  result.train_loss = kNaN;
  CheckpointPosition at;
  if (!options_.resume_from().empty()) {
    at = load_checkpoint_position(options_.resume_from(), *model_, optimizer_.get());
    if (at.epoch < 0 || at.epoch > options_.epochs() || (at.batch > 0 && at.epoch == options_.epochs()))
      throw Error("checkpoint " + options_.resume_from() + " is at epoch " + std::to_string(at.epoch) +
                  ", outside this run's 0.." + std::to_string(options_.epochs()));
    if (at.batch > 0) result.resumed_at = at;
  } else {
    save_if_due(0);
  }
  const int first_epoch = at.epoch;
  result.epochs_completed = first_epoch;

  data::BatchLoader loader(data.train, data.train_idx,
                           data::LoaderOptions()
                               .batch_size(options_.batch_size())
                               .seed(options_.seed())
                               .augment(options_.augment())
                               .prefetch(options_.prefetch())
                               .prefetch_on_one_core(options_.prefetch_on_one_core()));
  const std::int64_t steps_per_epoch = loader.batches_per_epoch();
  result.batches_per_epoch = steps_per_epoch;
  if (at.batch < 0 || at.batch >= steps_per_epoch)
    throw Error("checkpoint " + options_.resume_from() + " is at batch " + std::to_string(at.batch) +
                " of an epoch, which has " + std::to_string(steps_per_epoch) + " here (other data or batch size?)");
  const std::int64_t total_steps = steps_per_epoch * options_.epochs();
  std::int64_t step = steps_per_epoch * first_epoch + at.batch;
  const double base_lr = options_.effective_lr();
  double lr = scheduled_lr(options_.schedule(), base_lr, step, total_steps);

  const auto finish = [&](JobStatus status, std::string message) {
    result.status = status;
    result.message = std::move(message);
    result.seconds = seconds_since(started);
    model_->eval();
    return result;
  };

  for (int epoch = first_epoch; epoch < options_.epochs(); ++epoch) {
    const auto epoch_started = std::chrono::steady_clock::now();
    model_->train();
    // A mid-epoch checkpoint's epoch goes on from its batch and loss sums.
    const bool resuming = epoch == first_epoch;
    loader.start_epoch(epoch, resuming ? at.batch : 0);
    double loss_sum = resuming ? at.loss_sum : 0;
    std::int64_t seen = resuming ? at.samples : 0;
    while (auto batch = loader.next()) {
      if (callbacks.should_stop && callbacks.should_stop()) {
        const std::int64_t done = step - steps_per_epoch * epoch;  // batches of this epoch trained
        if (callbacks.should_checkpoint && callbacks.should_checkpoint() && !options_.preempt_checkpoint().empty()) {
          const CheckpointPosition here{.epoch = epoch, .batch = done, .loss_sum = loss_sum, .samples = seen};
          save_checkpoint(options_.preempt_checkpoint(), *model_, optimizer_.get(), here);
          result.checkpointed_at = here;
          return finish(JobStatus::cancelled, "preempted in epoch " + std::to_string(epoch + 1) + " after batch " +
                                                  std::to_string(done) + " of " + std::to_string(steps_per_epoch) +
                                                  ": checkpoint saved, --resume goes on from there");
        }
        return finish(JobStatus::cancelled, "stopped in epoch " + std::to_string(epoch + 1) + " after " +
                                                std::to_string(result.steps) + " steps");
      }
      lr = scheduled_lr(options_.schedule(), base_lr, step, total_steps);
      for (auto& group : optimizer_->param_groups()) group.options().set_lr(lr);
      optimizer_->zero_grad();
      const auto logits = model_->forward(batch->images);
      const auto loss = options_.loss() ? options_.loss()(logits, batch->labels)
                                        : torch::nn::functional::cross_entropy(logits, batch->labels);
      const double loss_value = loss.item<double>();
      if (!std::isfinite(loss_value))
        return finish(JobStatus::diverged, "training loss became " + std::to_string(loss_value) + " in epoch " +
                                               std::to_string(epoch + 1) + " (lr " + std::to_string(lr) + ")");
      loss.backward();
      optimizer_->step();
      ++step;
      ++result.steps;
      if (callbacks.after_step) callbacks.after_step(*model_);
      const auto count = batch->labels.size(0);
      loss_sum += loss_value * static_cast<double>(count);
      seen += count;
    }

    const auto val = evaluate(*model_, data.val, data.val_idx, options_.eval_batch_size());
    if (val.samples > 0 && !std::isfinite(val.loss))
      return finish(JobStatus::diverged, "validation loss became " + std::to_string(val.loss) + " after epoch " +
                                             std::to_string(epoch + 1));
    EpochMetrics metrics;
    metrics.epoch = epoch + 1;
    metrics.train_loss = loss_sum / static_cast<double>(seen);
    metrics.val_loss = val.loss;
    metrics.val_top1 = val.top1;
    metrics.val_top5 = val.top5;
    metrics.lr = lr;
    metrics.seconds = seconds_since(epoch_started);
    result.history.push_back(metrics);
    result.val = val;
    result.train_loss = metrics.train_loss;
    result.epochs_completed = epoch + 1;
    save_if_due(epoch + 1);
    if (callbacks.on_epoch) callbacks.on_epoch(metrics);
  }
  remove_preempt_checkpoint();
  return finish(JobStatus::done, "");
}

}  // namespace packtrain::train
