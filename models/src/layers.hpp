#pragma once
// Helpers the zoo's models share: output sizes, FLOP counts, input checks.
#include <packtrain/models/models.hpp>
#include <packtrain/scheduler/error.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace packtrain::models::detail {

// Output size of a convolution or pooling window along one axis.
inline std::int64_t window_out(std::int64_t size, std::int64_t kernel, std::int64_t stride, std::int64_t padding) {
  return (size + 2 * padding - kernel) / stride + 1;
}

// Forward FLOPs of a convolution producing out_h x out_w (a multiply-add is 2).
inline double conv_flops(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t groups,
                         std::int64_t out_h, std::int64_t out_w) {
  return 2.0 * static_cast<double>(out * out_h * out_w) * static_cast<double>(in / groups * kernel * kernel);
}

inline double linear_flops(std::int64_t in, std::int64_t out) { return 2.0 * static_cast<double>(in * out); }

// A bias-free convolution (batch norm follows it).
inline torch::nn::Conv2dOptions conv(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride,
                                     std::int64_t padding, std::int64_t groups = 1) {
  return torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).groups(groups).bias(false);
}

inline std::string shape_text(const ModelOptions& o) {
  return std::to_string(o.channels) + "x" + std::to_string(o.height) + "x" + std::to_string(o.width);
}

// Throws when `h` x `w` (a feature map size) has vanished.
inline void require_positive(const std::string& model, const ModelOptions& o, std::int64_t h, std::int64_t w) {
  if (h < 1 || w < 1)
    throw Error("model " + model + " cannot take " + shape_text(o) + " inputs: too small for its convolutions and pooling");
}

// torch::max_pool2d(x, 2) for float32 CPU images, with the same numbers
// and gradients, in loops several times faster than LibTorch 1.13's
// (pool.cpp); anything else goes to torch::max_pool2d.
torch::Tensor max_pool_2x2(const torch::Tensor& x);

// x W^T + b whose backward, instead of giving W a gradient, steps W in
// place: W = (1 - lr decay) W - lr g^T x, one matrix product into W
// (linear_sgd.cpp). b gets its gradient as usual; x one only if it needs it.
torch::Tensor linear_sgd_in_backward(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                     double lr, double weight_decay);

}  // namespace packtrain::models::detail
