#pragma once
// Max pooling over 2x2 windows with stride 2 (floor mode), the loops of
// pool.cpp: LibTorch-free, built with -O3 (models/CMakeLists.txt).
// LibTorch 1.13's max_pool2d kernel spends about 6 ns an input element on
// these windows, a third of lenet5's step at batch 32 (bench_step).
#include <cstddef>
#include <cstdint>

namespace packtrain::models::kernels {

// `planes` planes of h x w floats in, planes of (h/2) x (w/2) out. `which`
// (may be null: no gradient wanted) gets each window's winner, 0..3 in the
// order top-left, top-right, bottom-left, bottom-right, chosen as LibTorch
// chooses: the first largest, a NaN over any number (the last NaN).
void max_pool_2x2(const float* in, float* out, std::uint8_t* which, std::size_t planes, std::size_t h,
                  std::size_t w);

// The gradient: each window's winner gets its output's gradient, the other
// three 0. `grad_in` is planes x h x w and is written whole.
void max_pool_2x2_backward(const float* grad_out, const std::uint8_t* which, float* grad_in, std::size_t planes,
                           std::size_t h, std::size_t w);

// The same over channels-last images: `images` of h x w x c floats in,
// (h/2) x (w/2) x c out, `which` in the output's order.
void max_pool_2x2_nhwc(const float* in, float* out, std::uint8_t* which, std::size_t images, std::size_t h,
                       std::size_t w, std::size_t c);
void max_pool_2x2_nhwc_backward(const float* grad_out, const std::uint8_t* which, float* grad_in, std::size_t images,
                                std::size_t h, std::size_t w, std::size_t c);

}  // namespace packtrain::models::kernels
