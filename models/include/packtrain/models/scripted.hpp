#pragma once
// TorchScript models: a network written in Python, scripted and saved
//
//   torch.jit.script(net).save("net.pt")
//
// and trained by packtrain wherever a zoo model is (make_model("net.pt", ...)).
// The file is read once per process; every model made of it is a deep copy
// of that module, wrapped as a Model whose parameters and buffers ARE the
// module's tensors (the same tensors, by the module's own names: "fc1.weight"),
// so optimizers, checkpoints, masks, Hogwild's shared weights and replicas
// work on it as on a zoo model.
//
// A TorchScript model starts from the weights saved in its file (the seed
// of ModelOptions is not used: every job of one file starts alike), and is
// refused unless its forward takes one tensor and returns B x classes logits
// for the dataset's images.
//
//   auto model = packtrain::models::make_model("net.pt", {.channels = 1, .height = 28, .width = 28, .classes = 10});
//   packtrain::models::model_label("runs/net.pt");  // "net": its name in results
//   packtrain::models::model_hash("runs/net.pt");   // 16 hex digits of its content, for job ids

#include <packtrain/models/models.hpp>

#include <memory>
#include <string>

namespace packtrain::models {

namespace detail {
// make_model() and estimate_flops() for a TorchScript file.
std::shared_ptr<Model> make_scripted(const std::string& path, const ModelOptions& options);
double scripted_flops(const std::string& path, const ModelOptions& options);
}  // namespace detail

class ScriptedModel : public Model {
 public:
  ~ScriptedModel() override;

  torch::Tensor forward(torch::Tensor images) override;

  // Sets the module's training flag (batch norm, dropout) with the wrapper's.
  void train(bool on = true) override;

  // Its graph draws random numbers (dropout), from LibTorch's global generator.
  bool draws_random() const;

  // The file it was read from, as given.
  const std::string& path() const;

 private:
  friend std::shared_ptr<Model> detail::make_scripted(const std::string& path, const ModelOptions& options);
  struct Impl;
  ScriptedModel(std::unique_ptr<Impl> impl, const ModelOptions& options, double flops);
  std::unique_ptr<Impl> impl_;
};

}  // namespace packtrain::models
