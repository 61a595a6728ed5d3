#pragma once
// The zoo's modules, for code that wants one by type rather than by name
// (make_model() in models.hpp builds them by name). Each XxxImpl takes
// ModelOptions; TORCH_MODULE(Xxx) gives the usual shared-pointer holder.
//
//   packtrain::models::LeNet5 net(packtrain::models::ModelOptions{.classes = 10});
//   auto logits = net->forward(images);

#include <packtrain/models/models.hpp>

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

namespace packtrain::models {

// LeNet-300-100 (LeCun et al. 1998): flatten -> 300 -> 100 -> classes, ReLU.
class MlpImpl : public Model {
 public:
  explicit MlpImpl(const ModelOptions& options);
  torch::Tensor forward(torch::Tensor images) override;
  // The first layer (its input needs no gradient).
  std::vector<torch::Tensor> update_in_backward(std::optional<SgdInBackward> sgd) override;

 private:
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr}, fc3_{nullptr};
  std::optional<SgdInBackward> sgd_in_backward_;
};
TORCH_MODULE(Mlp);

// LeNet-5 with ReLU and max pooling: conv 5x5 (6) -> pool -> conv 5x5 (16)
// -> pool -> 120 -> 84 -> classes. Inputs under 32 pixels get 2 pixels of
// padding in the first convolution (28x28 then works as 32x32 does).
class LeNet5Impl : public Model {
 public:
  explicit LeNet5Impl(const ModelOptions& options);
  torch::Tensor forward(torch::Tensor images) override;

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr}, fc3_{nullptr};
};
TORCH_MODULE(LeNet5);

// VGG-11 with batch norm for small inputs: 8 conv 3x3 layers (64, M, 128, M,
// 256, 256, M, 512, 512, M, 512, 512, M), global average pool, one linear
// layer 512 -> classes (as in the CIFAR variants). A max pool that would
// leave the following convolutions under 2x2 is skipped (on 28x28 inputs the
// fourth: 28, 14, 7, 3, 3 -> 1), so batch norm works on a batch of one.
class Vgg11Impl : public Model {
 public:
  explicit Vgg11Impl(const ModelOptions& options);
  torch::Tensor forward(torch::Tensor images) override;

 private:
  torch::nn::Sequential features_{nullptr};
  torch::nn::Linear classifier_{nullptr};
};
TORCH_MODULE(Vgg11);

// ResNet's basic block: two 3x3 convolutions with batch norm, and a 1x1
// projection on the shortcut when the shape changes.
class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(std::int64_t in_channels, std::int64_t out_channels, std::int64_t stride);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  torch::nn::Sequential shortcut_{nullptr};  // empty: identity
};
TORCH_MODULE(BasicBlock);

// ResNet-18 for small images (He et al. 2016, CIFAR style): a 3x3 stem of 64
// channels at stride 1 and no max pool, then 4 stages of 2 basic blocks (64,
// 128, 256, 512; strides 1, 2, 2, 2), global average pool, linear.
class ResNet18Impl : public Model {
 public:
  explicit ResNet18Impl(const ModelOptions& options);
  torch::Tensor forward(torch::Tensor images) override;

 private:
  torch::nn::Conv2d stem_{nullptr};
  torch::nn::BatchNorm2d stem_bn_{nullptr};
  torch::nn::Sequential layers_{nullptr};
  torch::nn::Linear fc_{nullptr};
};
TORCH_MODULE(ResNet18);

// MobileNetV2's inverted residual: 1x1 expansion, 3x3 depthwise, 1x1
// projection (linear bottleneck); a residual connection when the shape stays.
class InvertedResidualImpl : public torch::nn::Module {
 public:
  InvertedResidualImpl(std::int64_t in_channels, std::int64_t out_channels, std::int64_t stride,
                       std::int64_t expansion);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::Sequential body_{nullptr};
  bool residual_ = false;
};
TORCH_MODULE(InvertedResidual);

// MobileNetV2 (Sandler et al. 2018) as torchvision builds it, with the
// strides of the stem and of the first 24-channel stage set to 1 for 28x28
// and 32x32 inputs (overall stride 8, not 32), and no dropout before the
// classifier (dropout would need a random stream per job; the small inputs
// do not need it). width_multiplier scales every stage's channels (rounded
// to multiples of 8) and, above 1, the last 1280-channel layer.
class MobileNetV2Impl : public Model {
 public:
  explicit MobileNetV2Impl(const ModelOptions& options);
  torch::Tensor forward(torch::Tensor images) override;

 private:
  torch::nn::Sequential features_{nullptr};
  torch::nn::Linear classifier_{nullptr};
};
TORCH_MODULE(MobileNetV2);

}  // namespace packtrain::models
