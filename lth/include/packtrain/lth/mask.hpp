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
//   packtrain::lth::MaskedTraining masked(mask, trainer.model(), &trainer.optimizer());
//   trainer.fit(data);  // the removed weights are exactly 0 after every step
//   mask.save(dir / "mask.pt");
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace packtrain::lth {

enum class Scope { global, per_layer };

// The prunable weights of `model` (conv and linear layers' `weight`; of a
// TorchScript model, every trained parameter named "weight" or "....weight"
// of 2 or more dimensions), with their names ("fc1.weight"), in registration order.
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

class GradientMask;  // mask.cpp: the hooks on one weight

// Keeps masked weights exactly zero while training, by masking their
// gradients. The constructor zeroes the removed weights and any optimizer
// state they already have (SGD's momentum buffer, Adam's moments), then hooks
// every weight the mask prunes (layers it keeps whole are left alone): each
// backward() ends by zeroing the removed entries of weight.grad(), so the
// optimizer never sees a gradient there.
//
// Why that is enough: SGD (momentum, Nesterov, weight decay) and Adam/AdamW
// update each entry from its own weight, gradient and state only, and an
// entry whose three are 0 gets an update of exactly 0 (momentum 0.9 x 0 +
// 0 + decay x 0; Adam's 0 / (sqrt(0) + eps)). So the removed weights and
// their state stay exactly 0 after every step with nothing to do after it:
// one multiply per masked weight per backward, where masking the weights and
// the momentum after each step took two (Adam: three).
//
// The hooks live as long as this object: while it lives, those weights train
// masked, through checkpoints loaded into the model too. A checkpoint may
// hold non-zero removed weights or optimizer state: call reset() after
// loading one that was not saved masked. A NaN or inf gradient at a removed
// weight stays NaN (0 x NaN); the trainer stops such a run as diverged.
class MaskedTraining {
 public:
  // `optimizer` may be null when it has no state yet. The mask is copied.
  // Throws Error when the mask is for another model, or for an optimizer
  // other than SGD, Adam and AdamW.
  MaskedTraining(Mask mask, torch::nn::Module& model, torch::optim::Optimizer* optimizer);
  ~MaskedTraining();
  MaskedTraining(const MaskedTraining&) = delete;
  MaskedTraining& operator=(const MaskedTraining&) = delete;

  // Zeroes the removed weights and their optimizer state again.
  void reset();

 private:
  std::vector<at::Tensor> weights_;   // the weights the mask prunes, each with
  std::vector<at::Tensor> keep_;      // its mask in the weight's dtype
  std::vector<std::unique_ptr<GradientMask>> hooks_;  // and its hooks
  torch::optim::Optimizer* optimizer_;
};

}  // namespace packtrain::lth
