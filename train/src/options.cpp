#include <packtrain/scheduler/error.hpp>
#include <packtrain/train/options.hpp>

#include <algorithm>
#include <cmath>
#include <numbers>

namespace packtrain::train {
namespace {

constexpr double kSgdLr = 0.05;
constexpr double kAdamLr = 0.001;
constexpr double kSgdWeightDecay = 5e-4;
constexpr double kStepFactor = 0.1;  // "step": x0.1 at each milestone
constexpr double kStepMilestones[] = {0.5, 0.75};
constexpr int kWarmCycles = 3;  // "warm": cycles of S/7, 2S/7, 4S/7

double half_cosine(double base, double progress) { return 0.5 * base * (1.0 + std::cos(std::numbers::pi * progress)); }

}  // namespace

OptimizerKind optimizer_from_string(std::string_view name) {
  if (name == "sgd") return OptimizerKind::sgd;
  if (name == "adam") return OptimizerKind::adam;
  throw Error("unknown optimizer '" + std::string(name) + "' (known: sgd, adam)");
}

Schedule schedule_from_string(std::string_view name) {
  if (name == "none") return Schedule::none;
  if (name == "step") return Schedule::step;
  if (name == "cosine") return Schedule::cosine;
  if (name == "warm") return Schedule::warm;
  throw Error("unknown schedule '" + std::string(name) + "' (known: none, step, cosine, warm)");
}

std::string_view to_string(OptimizerKind kind) { return kind == OptimizerKind::sgd ? "sgd" : "adam"; }

std::string_view to_string(Schedule schedule) {
  switch (schedule) {
    case Schedule::none: return "none";
    case Schedule::step: return "step";
    case Schedule::cosine: return "cosine";
    case Schedule::warm: return "warm";
  }
  return "?";
}

const std::vector<std::string>& schedule_names() {
  static const std::vector<std::string> names = {"none", "step", "cosine", "warm"};
  return names;
}

double scheduled_lr(Schedule schedule, double base, std::int64_t step, std::int64_t total_steps) {
  const double total = static_cast<double>(std::max<std::int64_t>(total_steps, 1));
  const double s = static_cast<double>(std::clamp<std::int64_t>(step, 0, std::max<std::int64_t>(total_steps, 1)));
  switch (schedule) {
    case Schedule::none: return base;
    case Schedule::step: {
      double lr = base;
      for (const double milestone : kStepMilestones)
        if (s >= milestone * total) lr *= kStepFactor;
      return lr;
    }
    case Schedule::cosine: return half_cosine(base, s / total);
    case Schedule::warm: {
      // Cycle lengths total/7, 2 total/7, 4 total/7: find the cycle holding s.
      double length = total / ((1 << kWarmCycles) - 1);
      double start = 0;
      for (int cycle = 0; cycle + 1 < kWarmCycles && s >= start + length; ++cycle) {
        start += length;
        length *= 2;
      }
      return half_cosine(base, std::min(1.0, (s - start) / length));
    }
  }
  return base;
}

double TrainOptions::effective_lr() const {
  if (lr() > 0) return lr();
  return optimizer() == OptimizerKind::sgd ? kSgdLr : kAdamLr;
}

double TrainOptions::effective_weight_decay() const {
  if (weight_decay()) return *weight_decay();
  return optimizer() == OptimizerKind::sgd ? kSgdWeightDecay : 0.0;
}

void TrainOptions::validate() const {
  if (epochs() < 1) throw Error("epochs must be at least 1, not " + std::to_string(epochs()));
  if (batch_size() < 1) throw Error("batch size must be at least 1, not " + std::to_string(batch_size()));
  if (eval_batch_size() < 1) throw Error("evaluation batch size must be at least 1");
  if (!(lr() >= 0) || !std::isfinite(lr())) throw Error("learning rate must be 0 (default) or positive, not " + std::to_string(lr()));
  if (!(momentum() >= 0 && momentum() < 1)) throw Error("momentum must be in [0, 1), not " + std::to_string(momentum()));
  if (weight_decay() && !(*weight_decay() >= 0)) throw Error("weight decay must not be negative");
  if (threads() < 0) throw Error("threads must be 0 (leave as is) or positive, not " + std::to_string(threads()));
  if (checkpoint_every() < 0) throw Error("checkpoint interval must not be negative");
  for (const int e : checkpoint_epochs())
    if (e < 0 || e > epochs())
      throw Error("checkpoint epoch " + std::to_string(e) + " is outside 0.." + std::to_string(epochs()));
  if ((checkpoint_every() > 0 || !checkpoint_epochs().empty()) && checkpoint_dir().empty())
    throw Error("checkpoints asked for but no checkpoint folder given");
}

const std::vector<std::string>& result_columns() {
  static const std::vector<std::string> columns = {"job",      "status",   "model",    "schedule", "fold",
                                                   "epochs",   "val_top1", "val_top5", "val_loss", "seconds",
                                                   "cores",    "rank"};
  return columns;
}

}  // namespace packtrain::train
