#include <packtrain/models/zoo.hpp>

#include "layers.hpp"

#include <algorithm>
#include <array>
#include <cmath>

namespace packtrain::models {
namespace {

struct Stage {
  std::int64_t expansion, channels, blocks, stride;
};
// torchvision's settings, with the 24-channel stage at stride 1 (2 there) for small inputs.
constexpr std::array<Stage, 7> kStages = {{
    {1, 16, 1, 1}, {6, 24, 2, 1}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1},
}};
constexpr std::int64_t kStemChannels = 32;
constexpr std::int64_t kLastChannels = 1280;
constexpr std::int64_t kRound = 8;  // channel counts are multiples of 8

// torchvision's _make_divisible: the nearest multiple of 8, never 10% below `v`.
std::int64_t make_divisible(double v) {
  auto rounded = std::max<std::int64_t>(kRound, static_cast<std::int64_t>(v + kRound / 2.0) / kRound * kRound);
  if (static_cast<double>(rounded) < 0.9 * v) rounded += kRound;
  return rounded;
}

// Conv, batch norm, ReLU6.
void conv_bn_relu6(torch::nn::Sequential& seq, std::int64_t in, std::int64_t out, std::int64_t kernel,
                   std::int64_t stride, std::int64_t groups) {
  seq->push_back(torch::nn::Conv2d(detail::conv(in, out, kernel, stride, (kernel - 1) / 2, groups)));
  seq->push_back(torch::nn::BatchNorm2d(out));
  seq->push_back(torch::nn::Functional([](const torch::Tensor& x) { return torch::hardtanh(x, 0.0, 6.0); }));
}

}  // namespace

InvertedResidualImpl::InvertedResidualImpl(std::int64_t in_channels, std::int64_t out_channels, std::int64_t stride,
                                           std::int64_t expansion) {
  const std::int64_t hidden = in_channels * expansion;
  torch::nn::Sequential body;
  if (expansion != 1) conv_bn_relu6(body, in_channels, hidden, 1, 1, 1);
  conv_bn_relu6(body, hidden, hidden, 3, stride, hidden);
  body->push_back(torch::nn::Conv2d(detail::conv(hidden, out_channels, 1, 1, 0)));
  body->push_back(torch::nn::BatchNorm2d(out_channels));
  body_ = register_module("body", body);
  residual_ = stride == 1 && in_channels == out_channels;
}

torch::Tensor InvertedResidualImpl::forward(torch::Tensor x) {
  return residual_ ? x + body_->forward(x) : body_->forward(x);
}

MobileNetV2Impl::MobileNetV2Impl(const ModelOptions& o) : Model(o) {
  using detail::conv_flops;
  using detail::window_out;
  std::int64_t h = o.height, w = o.width;
  detail::require_positive("mobilenetv2", o, h, w);
  const double m = o.width_multiplier;

  torch::nn::Sequential features;
  std::int64_t channels = make_divisible(kStemChannels * m);
  conv_bn_relu6(features, o.channels, channels, 3, 1, 1);
  flops_ += conv_flops(o.channels, channels, 3, 1, h, w);
  for (const auto& stage : kStages) {
    const std::int64_t out = make_divisible(static_cast<double>(stage.channels) * m);
    for (std::int64_t b = 0; b < stage.blocks; ++b) {
      const std::int64_t stride = b == 0 ? stage.stride : 1;
      features->push_back(InvertedResidual(channels, out, stride, stage.expansion));
      const std::int64_t hidden = channels * stage.expansion;
      const auto oh = window_out(h, 3, stride, 1), ow = window_out(w, 3, stride, 1);
      if (stage.expansion != 1) flops_ += conv_flops(channels, hidden, 1, 1, h, w);
      flops_ += conv_flops(hidden, hidden, 3, hidden, oh, ow) + conv_flops(hidden, out, 1, 1, oh, ow);
      channels = out;
      h = oh;
      w = ow;
    }
  }
  const std::int64_t last = make_divisible(static_cast<double>(kLastChannels) * std::max(1.0, m));
  conv_bn_relu6(features, channels, last, 1, 1, 1);
  flops_ += conv_flops(channels, last, 1, 1, h, w);
  features_ = register_module("features", features);
  classifier_ = register_module("classifier", torch::nn::Linear(last, o.classes));
  flops_ += detail::linear_flops(last, o.classes);
}

torch::Tensor MobileNetV2Impl::forward(torch::Tensor images) {
  auto x = features_->forward(images);
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  return classifier_(x);
}

}  // namespace packtrain::models
