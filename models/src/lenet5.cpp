#include <packtrain/models/zoo.hpp>

#include "layers.hpp"

namespace packtrain::models {
namespace {

constexpr std::int64_t kClassicSide = 32;  // LeNet-5 was drawn for 32x32 inputs
constexpr std::int64_t kKernel = 5;

}  // namespace

LeNet5Impl::LeNet5Impl(const ModelOptions& o) : Model(o) {
  using detail::window_out;
  const std::int64_t pad = std::min(o.height, o.width) < kClassicSide ? 2 : 0;
  const auto h1 = window_out(o.height, kKernel, 1, pad), w1 = window_out(o.width, kKernel, 1, pad);
  const auto h2 = h1 / 2, w2 = w1 / 2;
  const auto h3 = window_out(h2, kKernel, 1, 0), w3 = window_out(w2, kKernel, 1, 0);
  const auto h4 = h3 / 2, w4 = w3 / 2;
  detail::require_positive("lenet5", o, h4, w4);
  const std::int64_t flat = 16 * h4 * w4;

  conv1_ = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.channels, 6, kKernel).padding(pad)));
  conv2_ = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 16, kKernel)));
  fc1_ = register_module("fc1", torch::nn::Linear(flat, 120));
  fc2_ = register_module("fc2", torch::nn::Linear(120, 84));
  fc3_ = register_module("fc3", torch::nn::Linear(84, o.classes));
  flops_ = detail::conv_flops(o.channels, 6, kKernel, 1, h1, w1) + detail::conv_flops(6, 16, kKernel, 1, h3, w3) +
           detail::linear_flops(flat, 120) + detail::linear_flops(120, 84) + detail::linear_flops(84, o.classes);
}

torch::Tensor LeNet5Impl::forward(torch::Tensor images) {
  // Pooling before the ReLU gives the same numbers as after it (both keep
  // a window's largest value, and a negative one becomes 0 either way) on a
  // quarter of the elements.
  // Channels-last images take oneDNN's faster convolutions (about 1.5x
  // here, forward and backward; bench_step); the weights stay as they are.
  const auto cl = at::MemoryFormat::ChannelsLast;
  auto x = torch::relu(detail::max_pool_2x2(conv1_(images.contiguous(cl))));
  x = torch::relu(detail::max_pool_2x2(conv2_(x.contiguous(cl))));
  x = x.flatten(1);
  x = torch::relu(fc1_(x));
  x = torch::relu(fc2_(x));
  return fc3_(x);
}

}  // namespace packtrain::models
