#pragma once
// Checkpoints: one file per saved epoch holding the model's parameters and
// buffers, the optimizer's state and the epoch (torch::save archives).
//
// Epoch e means "after e epochs": 0 holds the initial weights. Files are
// written under a temporary name and renamed, so a crash never leaves half a
// checkpoint.
//
// A mid-epoch checkpoint (preemption: SIGTERM) also holds where in its epoch
// the run was: the batches of epoch `epoch` already trained, and the sums
// behind that epoch's mean training loss, so a run resumed from it goes on
// with the next batch and ends with the bits of an uninterrupted one (the
// loader's order is a function of (seed, epoch)).
//
//   save_checkpoint(checkpoint_path(dir, 3), model, &optimizer, 3);
//   int epoch = load_checkpoint(checkpoint_path(dir, 3), model, nullptr);  // weights only (lottery tickets)

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <filesystem>
#include <optional>

namespace packtrain::train {

// Where in a run a checkpoint was taken: `epoch` epochs done, then `batch`
// batches of the next one, whose training losses summed to `loss_sum` over
// `samples` samples (all 0 at an epoch's end).
struct CheckpointPosition {
  int epoch = 0;
  std::int64_t batch = 0;
  double loss_sum = 0;
  std::int64_t samples = 0;
};

// dir / "epoch-0003.pt".
std::filesystem::path checkpoint_path(const std::filesystem::path& dir, int epoch);
// dir / "preempted.pt": a job's mid-epoch checkpoint (latest_checkpoint() ignores it).
std::filesystem::path preempt_checkpoint_path(const std::filesystem::path& dir);

// Creates `path`'s folder if needed. Throws packtrain::Error naming the path
// when it cannot be written. `optimizer` may be null.
void save_checkpoint(const std::filesystem::path& path, const torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, int epoch);
// The same, taken at `at` (a mid-epoch position when at.batch > 0).
void save_checkpoint(const std::filesystem::path& path, const torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, const CheckpointPosition& at);

// Loads into `model` (and `optimizer`, unless null) and returns the epoch.
// Throws packtrain::Error naming the path when it is missing, unreadable or
// does not fit the model (other layers or shapes).
int load_checkpoint(const std::filesystem::path& path, torch::nn::Module& model, torch::optim::Optimizer* optimizer);
// The same, returning the whole position (an epoch checkpoint's has batch 0).
CheckpointPosition load_checkpoint_position(const std::filesystem::path& path, torch::nn::Module& model,
                                            torch::optim::Optimizer* optimizer);

// The checkpoint of the highest epoch in `dir`, if any.
std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& dir);

}  // namespace packtrain::train
