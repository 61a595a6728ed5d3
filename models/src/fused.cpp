#include <packtrain/models/fused.hpp>
#include <packtrain/models/zoo.hpp>
#include <packtrain/scheduler/error.hpp>

#include "layers.hpp"

#include <torch/torch.h>

#include <array>

namespace packtrain::models {
namespace {

constexpr std::int64_t kClassicSide = 32;  // lenet5's padding rule (lenet5.cpp)

// The parameter `name` of every model, in order.
std::vector<torch::Tensor> each(const std::vector<std::shared_ptr<Model>>& models, const std::string& name) {
  std::vector<torch::Tensor> out;
  for (const auto& m : models) {
    const auto params = m->named_parameters();
    const auto* p = params.find(name);
    if (p == nullptr) throw Error("cannot fuse: a model has no parameter " + name);
    out.push_back(p->detach());
  }
  return out;
}

// Fused linear layers: K weight matrices as one K x in x out tensor, the
// biases as K x out; forward is one batched product per layer.
class FusedLinears {
 public:
  FusedLinears(torch::nn::Module& owner, const std::vector<std::shared_ptr<Model>>& models,
               const std::vector<std::string>& layers) {
    for (const auto& layer : layers) {
      // Stored transposed, K x in x out: the batched product and its weight
      // gradient are then plain row-major products (no transposed copy).
      weights_.push_back(owner.register_parameter(
          layer + "_weight", torch::stack(each(models, layer + ".weight")).transpose(1, 2).contiguous()));
      biases_.push_back(owner.register_parameter(layer + "_bias", torch::stack(each(models, layer + ".bias"))));
      names_.push_back(layer);
    }
  }

  // x: K x B x in -> K x B x out, ReLU between the layers.
  torch::Tensor forward(torch::Tensor x) const {
    for (std::size_t i = 0; i < weights_.size(); ++i) {
      x = torch::baddbmm(biases_[i].unsqueeze(1), x, weights_[i]);
      if (i + 1 < weights_.size()) x = torch::relu(x);
    }
    return x;
  }

  void copy_into(int k, Model& model) const {
    torch::NoGradGuard no_grad;
    auto params = model.named_parameters();
    for (std::size_t i = 0; i < weights_.size(); ++i) {
      params[names_[i] + ".weight"].copy_(weights_[i][k].t());
      params[names_[i] + ".bias"].copy_(biases_[i][k]);
    }
  }

 private:
  std::vector<torch::Tensor> weights_, biases_;
  std::vector<std::string> names_;
};

class FusedMlp : public FusedModel {
 public:
  FusedMlp(const std::vector<std::shared_ptr<Model>>& models)
      : FusedModel(static_cast<int>(models.size()), models.front()->options()),
        linears_(*this, models, {"fc1", "fc2", "fc3"}) {}

  torch::Tensor forward(torch::Tensor images) override {
    return linears_.forward(images.flatten(2));  // K x B x (C H W)
  }
  void copy_into(int k, Model& model) const override { linears_.copy_into(k, model); }

 private:
  FusedLinears linears_;
};

// K sets of convolution filters as one grouped convolution: the images of
// model k are input channels k C .. k C + C - 1, its filters output
// channels k F .. k F + F - 1.
torch::Tensor stacked_filters(const std::vector<std::shared_ptr<Model>>& models, const std::string& name) {
  return torch::cat(each(models, name));
}

class FusedLeNet5 : public FusedModel {
 public:
  FusedLeNet5(const std::vector<std::shared_ptr<Model>>& models)
      : FusedModel(static_cast<int>(models.size()), models.front()->options()),
        conv1_w_(register_parameter("conv1_weight", stacked_filters(models, "conv1.weight"))),
        conv1_b_(register_parameter("conv1_bias", stacked_filters(models, "conv1.bias"))),
        conv2_w_(register_parameter("conv2_weight", stacked_filters(models, "conv2.weight"))),
        conv2_b_(register_parameter("conv2_bias", stacked_filters(models, "conv2.bias"))),
        linears_(*this, models, {"fc1", "fc2", "fc3"}) {
    pad_ = std::min(options_.height, options_.width) < kClassicSide ? 2 : 0;
  }

  torch::Tensor forward(torch::Tensor images) override {
    // As LeNet5Impl::forward, channels last, pooling before the ReLU; the K
    // models' images side by side as channels of one batch.
    const auto k = images.size(0), b = images.size(1);
    const auto cl = at::MemoryFormat::ChannelsLast;
    const std::array<std::int64_t, 2> one{1, 1}, none{0, 0}, pad{pad_, pad_};
    auto x = images.transpose(0, 1).reshape({b, k * images.size(2), images.size(3), images.size(4)});
    x = torch::conv2d(x.contiguous(cl), conv1_w_, conv1_b_, one, at::IntArrayRef(pad), one, k);
    x = torch::relu(detail::max_pool_2x2(x));
    x = torch::conv2d(x.contiguous(cl), conv2_w_, conv2_b_, one, at::IntArrayRef(none), one, k);
    x = torch::relu(detail::max_pool_2x2(x));
    // B x (K 16) x h x w -> K x B x (16 h w), each model's features in its own flatten order.
    x = x.reshape({b, k, -1}).transpose(0, 1);
    return linears_.forward(x);
  }

  void copy_into(int k, Model& model) const override {
    {
      torch::NoGradGuard no_grad;
      auto params = model.named_parameters();
      const auto f1 = conv1_w_.size(0) / size_, f2 = conv2_w_.size(0) / size_;
      params["conv1.weight"].copy_(conv1_w_.narrow(0, k * f1, f1));
      params["conv1.bias"].copy_(conv1_b_.narrow(0, k * f1, f1));
      params["conv2.weight"].copy_(conv2_w_.narrow(0, k * f2, f2));
      params["conv2.bias"].copy_(conv2_b_.narrow(0, k * f2, f2));
    }
    linears_.copy_into(k, model);
  }

 private:
  torch::Tensor conv1_w_, conv1_b_, conv2_w_, conv2_b_;
  FusedLinears linears_;
  std::int64_t pad_ = 0;
};

}  // namespace

bool fusable(const std::string& model) { return model == "mlp" || model == "lenet5"; }

std::shared_ptr<FusedModel> make_fused(const std::string& model, const std::vector<std::shared_ptr<Model>>& models) {
  if (!fusable(model)) throw Error("model " + model + " does not fuse (only mlp and lenet5 do)");
  if (models.size() < 2) throw Error("fusing needs at least 2 models, not " + std::to_string(models.size()));
  const auto& o = models.front()->options();
  for (const auto& m : models) {
    if (!m) throw Error("cannot fuse a missing model");
    const auto& p = m->options();
    if (p.channels != o.channels || p.height != o.height || p.width != o.width || p.classes != o.classes)
      throw Error("cannot fuse models built for other inputs or classes");
    const bool right = model == "mlp" ? dynamic_cast<MlpImpl*>(m.get()) != nullptr
                                      : dynamic_cast<LeNet5Impl*>(m.get()) != nullptr;
    if (!right) throw Error("cannot fuse: a model is not a zoo " + model);
  }
  if (model == "mlp") return std::make_shared<FusedMlp>(models);
  return std::make_shared<FusedLeNet5>(models);
}

}  // namespace packtrain::models
