#include <packtrain/models/zoo.hpp>

#include "layers.hpp"

#include <array>

namespace packtrain::models {
namespace {

constexpr std::int64_t kStemChannels = 64;
constexpr std::array<std::int64_t, 4> kStageChannels = {64, 128, 256, 512};
constexpr std::array<std::int64_t, 4> kStageStrides = {1, 2, 2, 2};
constexpr int kBlocksPerStage = 2;

}  // namespace

BasicBlockImpl::BasicBlockImpl(std::int64_t in_channels, std::int64_t out_channels, std::int64_t stride) {
  conv1_ = register_module("conv1", torch::nn::Conv2d(detail::conv(in_channels, out_channels, 3, stride, 1)));
  bn1_ = register_module("bn1", torch::nn::BatchNorm2d(out_channels));
  conv2_ = register_module("conv2", torch::nn::Conv2d(detail::conv(out_channels, out_channels, 3, 1, 1)));
  bn2_ = register_module("bn2", torch::nn::BatchNorm2d(out_channels));
  torch::nn::Sequential shortcut;
  if (stride != 1 || in_channels != out_channels) {
    shortcut->push_back(torch::nn::Conv2d(detail::conv(in_channels, out_channels, 1, stride, 0)));
    shortcut->push_back(torch::nn::BatchNorm2d(out_channels));
  }
  shortcut_ = register_module("shortcut", shortcut);
}

torch::Tensor BasicBlockImpl::forward(torch::Tensor x) {
  auto out = torch::relu(bn1_(conv1_(x)));
  out = bn2_(conv2_(out));
  out += shortcut_->is_empty() ? x : shortcut_->forward(x);
  return torch::relu(out);
}

ResNet18Impl::ResNet18Impl(const ModelOptions& o) : Model(o) {
  using detail::conv_flops;
  std::int64_t h = o.height, w = o.width;
  detail::require_positive("resnet18", o, h, w);
  stem_ = register_module("stem", torch::nn::Conv2d(detail::conv(o.channels, kStemChannels, 3, 1, 1)));
  stem_bn_ = register_module("stem_bn", torch::nn::BatchNorm2d(kStemChannels));
  flops_ += conv_flops(o.channels, kStemChannels, 3, 1, h, w);

  torch::nn::Sequential layers;
  std::int64_t channels = kStemChannels;
  for (std::size_t stage = 0; stage < kStageChannels.size(); ++stage) {
    for (int b = 0; b < kBlocksPerStage; ++b) {
      const std::int64_t stride = b == 0 ? kStageStrides[stage] : 1;
      const std::int64_t out = kStageChannels[stage];
      layers->push_back(BasicBlock(channels, out, stride));
      const auto oh = detail::window_out(h, 3, stride, 1), ow = detail::window_out(w, 3, stride, 1);
      flops_ += conv_flops(channels, out, 3, 1, oh, ow) + conv_flops(out, out, 3, 1, oh, ow);
      if (stride != 1 || channels != out) flops_ += conv_flops(channels, out, 1, 1, oh, ow);
      channels = out;
      h = oh;
      w = ow;
    }
  }
  layers_ = register_module("layers", layers);
  fc_ = register_module("fc", torch::nn::Linear(channels, o.classes));
  flops_ += detail::linear_flops(channels, o.classes);
}

torch::Tensor ResNet18Impl::forward(torch::Tensor images) {
  auto x = torch::relu(stem_bn_(stem_(images)));
  x = layers_->forward(x);
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  return fc_(x);
}

}  // namespace packtrain::models
