#include <packtrain/models/zoo.hpp>

#include "layers.hpp"

#include <array>

namespace packtrain::models {
namespace {

constexpr std::int64_t kPool = 0;  // a max pool in the layer list
constexpr std::array<std::int64_t, 13> kLayers = {64, kPool, 128, kPool, 256, 256, kPool, 512, 512, kPool, 512, 512, kPool};

}  // namespace

Vgg11Impl::Vgg11Impl(const ModelOptions& o) : Model(o) {
  torch::nn::Sequential features;
  std::int64_t channels = o.channels, h = o.height, w = o.width;
  detail::require_positive("vgg11", o, h, w);
  for (std::size_t i = 0; i < kLayers.size(); ++i) {
    const auto layer = kLayers[i];
    if (layer == kPool) {
      // Small inputs run out of pixels before the fifth pool. Skip a pool
      // that would leave convolutions under 2x2 (batch norm of a batch of one
      // would then see one value per channel); the last one only needs a 2x2 map.
      const bool last = i + 1 == kLayers.size();
      const std::int64_t needed = last ? 2 : 4;
      if (h >= needed && w >= needed) {
        features->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2)));
        h /= 2;
        w /= 2;
      }
      continue;
    }
    // With a bias, redundant before batch norm, as torchvision's and the CIFAR VGGs have it.
    features->push_back(torch::nn::Conv2d(detail::conv(channels, layer, 3, 1, 1).bias(true)));
    features->push_back(torch::nn::BatchNorm2d(layer));
    features->push_back(torch::nn::ReLU(torch::nn::ReLUOptions(true)));
    flops_ += detail::conv_flops(channels, layer, 3, 1, h, w);
    channels = layer;
  }
  features_ = register_module("features", features);
  classifier_ = register_module("classifier", torch::nn::Linear(channels, o.classes));
  flops_ += detail::linear_flops(channels, o.classes);
}

torch::Tensor Vgg11Impl::forward(torch::Tensor images) {
  auto x = features_->forward(images);
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  return classifier_(x);
}

}  // namespace packtrain::models
