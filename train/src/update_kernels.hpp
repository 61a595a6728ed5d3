#pragma once
// The optimizers' per-element updates as one pass over each parameter
// (fused_optimizers.cpp): plain loops over float arrays, built without
// LibTorch's headers so they can take their own optimization flags
// (-O3, no errno from sqrt) and an AVX2 clone chosen at load time.
#include <cstddef>

namespace packtrain::train::kernels {

// Adam (LibTorch 1.13's order of operations, in float):
//   g' = g + decay p;  m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2
//   p -= step_size m / (sqrt(v) / sqrt_bc2 + eps)
struct AdamStep {
  float beta1, beta2, eps, decay, step_size, sqrt_bc2;
};
void adam(float* p, const float* g, float* m, float* v, std::size_t n, const AdamStep& s);

// SGD with momentum, no dampening, no Nesterov (LibTorch's order):
//   g' = g + decay p;  buf = first ? g' : momentum buf + g';  p -= lr buf
struct SgdStep {
  float lr, momentum, decay;
  bool first;
};
void sgd(float* p, const float* g, float* buf, std::size_t n, const SgdStep& s);

}  // namespace packtrain::train::kernels
