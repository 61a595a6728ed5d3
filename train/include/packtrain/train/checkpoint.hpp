#pragma once
// Checkpoints: one file per saved epoch holding the model's parameters and
// buffers, the optimizer's state and the epoch (torch::save archives).
//
// Epoch e means "after e epochs": 0 holds the initial weights. Files are
// written under a temporary name and renamed, so a crash never leaves half a
// checkpoint.
//
//   save_checkpoint(checkpoint_path(dir, 3), model, &optimizer, 3);
//   int epoch = load_checkpoint(checkpoint_path(dir, 3), model, nullptr);  // weights only (lottery tickets)

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <filesystem>
#include <optional>

namespace packtrain::train {

// dir / "epoch-0003.pt".
std::filesystem::path checkpoint_path(const std::filesystem::path& dir, int epoch);

// Creates `path`'s folder if needed. Throws packtrain::Error naming the path
// when it cannot be written. `optimizer` may be null.
void save_checkpoint(const std::filesystem::path& path, const torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, int epoch);

// Loads into `model` (and `optimizer`, unless null) and returns the epoch.
// Throws packtrain::Error naming the path when it is missing, unreadable or
// does not fit the model (other layers or shapes).
int load_checkpoint(const std::filesystem::path& path, torch::nn::Module& model, torch::optim::Optimizer* optimizer);

// The checkpoint of the highest epoch in `dir`, if any.
std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& dir);

}  // namespace packtrain::train
