#pragma once
// Magnitude pruning masks for lottery tickets (Frankle & Carbin, ICLR 2019).
//
// What is pruned: the weights of convolution and linear layers, the output
// layer's included. Biases, batch-norm parameters and buffers stay dense.
// Sparsity is the fraction of those weights removed: a mask at sparsity s
// over n prunable weights removes exactly round(s x n) of them (per layer:
// round(s x n_l) of each layer's n_l). The smallest magnitudes go first;
// ties are broken by position (the earlier layer, then the lower flat index
// goes first), so the same weights always give the same mask.
//
//   auto mask = packtrain::lth::magnitude_mask(*model, 0.9, Scope::global);  // 10% left
//   packtrain::lth::MaskedTraining masked(mask, *model, &trainer.optimizer());
//   callbacks.after_step = [&](torch::nn::Module&) { masked.apply(); };
//   mask.save(dir / "mask.pt");
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace packtrain::lth {

enum class Scope { global, per_layer };

// The prunable weights of `model` (conv and linear layers' `weight`), with
// their names ("fc1.weight"), in registration order.
std::vector<std::pair<std::string, at::Tensor>> prunable_weights(torch::nn::Module& model);

// 0/1 float tensors, one per prunable weight, each the shape of its weight.
class Mask {
 public:
  Mask() = default;

  std::vector<std::string> names;
  std::vector<at::Tensor> keep;  // 1: kept, 0: removed; contiguous float32

  std::int64_t total() const;    // prunable weights
  std::int64_t kept() const;
  double sparsity() const;       // removed / total

  // Multiplies each weight of `model` by its mask, in place. Throws Error when
  // `model`'s prunable weights are not the ones this mask was made for.
  void apply(torch::nn::Module& model) const;

  // A torch archive; load() throws Error naming the path when it is missing or not a mask.
  void save(const std::filesystem::path& path) const;
  static Mask load(const std::filesystem::path& path);
};

// Removes round(fraction x remaining) of the prunable weights still kept,
// smallest magnitudes of `model`'s current weights first (see the header
// comment): with no `previous` mask, every weight remains, so `fraction` is the
// sparsity. With a previous mask (iterative pruning), the weights it removed
// stay removed and the new mask removes `fraction` of what it kept.
// Throws Error for a fraction outside [0, 1] or a previous mask of another model.
Mask magnitude_mask(torch::nn::Module& model, double fraction, Scope scope, const Mask* previous = nullptr);

// Keeps masked weights exactly zero while training: apply() after every
// optimizer step zeroes the removed weights and their momentum (SGD's
// momentum buffer, Adam's moments), with in-place multiplies on contiguous
// tensors (no allocation). The gradient of a removed weight is still computed
// by backward(); it moves that weight away from zero only inside the step,
// and apply() puts it back, so after every step the removed weights are 0
// and nothing of them carries into the next step.
//
// Note: weight decay and momentum act elementwise, so masking after the step
// is equivalent to masking the gradient before it and the weight after it.
class MaskedTraining {
 public:
  // `optimizer` may be null (weights only). The mask is copied.
  MaskedTraining(Mask mask, torch::nn::Module& model, torch::optim::Optimizer* optimizer);
  void apply();

 private:
  Mask mask_;
  std::vector<at::Tensor> weights_;
  torch::optim::Optimizer* optimizer_;
  std::vector<std::vector<at::Tensor>> state_;  // per weight: its momentum tensors, once the optimizer made them
  bool have_state_ = false;
};

}  // namespace packtrain::lth
