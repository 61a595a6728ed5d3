#pragma once
// Fused models (horizontal fusion, as HFTA: Wang et al., MLSys 2021): K
// models of one architecture trained as one module. Their weights are
// stacked (a convolution's K sets of filters are one grouped convolution,
// a linear layer's K matrices one batched product), so a step runs each
// operator once for all K instead of K times: fewer, larger operators on
// the same core. Each model keeps its own numbers: nothing in a fused
// module mixes one model's weights or inputs with another's, and one
// model's NaN stays in its own slices.
//
//   std::vector<std::shared_ptr<Model>> folds = ...;  // K lenet5s, each with its job's seed
//   auto fused = packtrain::models::make_fused(folds);   // starts from their weights
//   auto logits = fused->forward(images);                // images K x B x C x H x W -> K x B x classes
//   fused->copy_into(2, *folds[2]);                      // model 2's weights back, e.g. to evaluate it
#include <packtrain/models/models.hpp>

#include <memory>
#include <string>
#include <vector>

namespace packtrain::models {

class FusedModel : public torch::nn::Module {
 public:
  // K x B x C x H x W images (model k's batch at [k]) -> K x B x classes logits.
  virtual torch::Tensor forward(torch::Tensor images) = 0;
  // Writes model k's slices of the fused weights into `model` (one of the
  // architecture and options it was built from).
  virtual void copy_into(int k, Model& model) const = 0;
  int size() const { return size_; }
  const ModelOptions& options() const { return options_; }

 protected:
  FusedModel(int size, const ModelOptions& options) : size_(size), options_(options) {}
  int size_;
  ModelOptions options_;
};

// The zoo models that fuse: mlp and lenet5 (their layers are linear layers,
// convolutions and pooling only; batch norm's running statistics and the
// larger models' channel counts gain nothing from fusing on a CPU core).
bool fusable(const std::string& model);

// One fused module holding `models`' current weights, in their order.
// Throws packtrain::Error for fewer than 2 models, models that are not all
// of one fusable architecture, or models built for other inputs.
std::shared_ptr<FusedModel> make_fused(const std::string& model, const std::vector<std::shared_ptr<Model>>& models);

}  // namespace packtrain::models
