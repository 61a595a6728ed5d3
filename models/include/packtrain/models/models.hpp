#pragma once
// The model zoo, by name: mlp (LeNet-300-100), lenet5, vgg11 (with batch
// norm), resnet18 (CIFAR-style) and mobilenetv2 (width multiplier). Each one
// takes C x H x W inputs of 1x28x28 or 3x32x32 (and any other size its
// pooling survives) and any number of classes.
//
// Weights are initialized from ModelOptions::seed through a generator of the
// model's own, never LibTorch's global one: jobs build models concurrently in
// one process, and the same seed must give the same weights whoever runs it.
//
//   auto model = packtrain::models::make_model("lenet5", {.channels = 1, .height = 28, .width = 28,
//                                                         .classes = 10, .seed = job_seed});
//   torch::Tensor logits = model->forward(images);  // B x classes
//   double cost = packtrain::models::estimate_flops("lenet5", options);

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace packtrain::models {

struct ModelOptions {
  std::int64_t channels = 1;
  std::int64_t height = 28;
  std::int64_t width = 28;
  std::int64_t classes = 10;
  double width_multiplier = 1.0;  // mobilenetv2 only: scales every layer's channels
  std::uint64_t seed = 0;         // initial weights
};

// What every zoo model is: a module mapping B x C x H x W images to B x classes logits.
class Model : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(torch::Tensor images) = 0;

  // The input shape and class count it was built for.
  const ModelOptions& options() const { return options_; }

  // Forward FLOPs per sample (a multiply-add counts 2), counted while the
  // layers were built: convolutions and linear layers, the rest ignored.
  double flops() const { return flops_; }

  // Plain SGD applied inside backward (Hogwild's workers): a layer that can
  // takes its step  w = (1 - lr decay) w - lr dL/dw  as one product added
  // into its weight while backward runs, so the gradient is never stored
  // and the weight is read and written once (mlp: its first layer, 235k of
  // its 266k weights). Returns the weights so updated, whose .grad stays
  // undefined; empty (the default) where the model has none. nullopt
  // turns it off.
  struct SgdInBackward {
    double lr = 0;
    double weight_decay = 0;
  };
  virtual std::vector<torch::Tensor> update_in_backward(std::optional<SgdInBackward> sgd) {
    (void)sgd;
    return {};
  }

 protected:
  explicit Model(const ModelOptions& options) : options_(options) {}

  ModelOptions options_;
  double flops_ = 0;
};

// Builds model `name` for `options`: a zoo model, or any other name as the
// path of a TorchScript file (models/scripted.hpp). Throws packtrain::Error
// for an unknown name (listing the known ones), a file that is not a
// TorchScript classifier, a class count below 2, a width multiplier not
// above 0, or an input the model cannot take (e.g. too small for its pooling).
std::shared_ptr<Model> make_model(const std::string& name, const ModelOptions& options);

// `model` is not a zoo name: make_model reads it as a TorchScript file.
bool is_model_file(const std::string& model);

// Its name in results: the zoo name, or the file's stem ("runs/net.pt": "net").
std::string model_label(const std::string& model);

// What job ids hold of a TorchScript file: 16 hex digits of a hash of its
// content (read once per process); "" for a zoo model. Throws as make_model.
std::string model_hash(const std::string& model);

// What a job's spec holds of `model`: {"model": its label}, and for a
// TorchScript file "model_hash" (so a changed file is a new job).
nlohmann::json model_spec(const std::string& model);

// The model a spec of model_spec() names: its zoo name, or the path of the
// TorchScript file with its hash that this process has read. Throws
// packtrain::Error for a file this process has not read.
std::string model_of_spec(const nlohmann::json& spec);

// "mlp", "lenet5", "vgg11", "resnet18", "mobilenetv2".
const std::vector<std::string>& model_names();

// Forward FLOPs per sample of make_model(name, options), for cost estimates
// (scheduling longest jobs first). Remembered per (name, input, classes, width).
double estimate_flops(const std::string& name, const ModelOptions& options);

// Re-draws every parameter of `model` from `seed` as the zoo initializes it:
// convolutions Kaiming-normal (fan out, ReLU), linear layers uniform in
// +-1/sqrt(fan in), batch norms weight 1 and bias 0; running statistics reset.
void initialize_weights(torch::nn::Module& model, std::uint64_t seed);

// Number of trainable scalars.
std::int64_t parameter_count(const torch::nn::Module& model);

}  // namespace packtrain::models
