// Built with -O3 -fno-math-errno and without the LibTorch precompiled
// header (train/CMakeLists.txt); each loop has a default and an AVX2+FMA
// clone, picked by the loader for the machine it runs on.
#include "update_kernels.hpp"

#include <cmath>

namespace packtrain::train::kernels {

__attribute__((target_clones("arch=haswell", "default"))) void adam(float* __restrict p, const float* __restrict g,
                                                                     float* __restrict m, float* __restrict v,
                                                                     std::size_t n, const AdamStep& s) {
  const float b1 = s.beta1, b2 = s.beta2, one_b1 = 1.0f - s.beta1, one_b2 = 1.0f - s.beta2;
  const float eps = s.eps, decay = s.decay, step = s.step_size, sqrt_bc2 = s.sqrt_bc2;
  for (std::size_t i = 0; i < n; ++i) {
    const float grad = g[i] + decay * p[i];
    const float mi = b1 * m[i] + one_b1 * grad;
    const float vi = b2 * v[i] + one_b2 * (grad * grad);
    m[i] = mi;
    v[i] = vi;
    p[i] -= step * (mi / (std::sqrt(vi) / sqrt_bc2 + eps));
  }
}

__attribute__((target_clones("arch=haswell", "default"))) void sgd(float* __restrict p, const float* __restrict g,
                                                                    float* __restrict buf, std::size_t n,
                                                                    const SgdStep& s) {
  const float lr = s.lr, momentum = s.momentum, decay = s.decay;
  if (s.first) {
    for (std::size_t i = 0; i < n; ++i) {
      const float grad = g[i] + decay * p[i];
      buf[i] = grad;
      p[i] -= lr * grad;
    }
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const float b = momentum * buf[i] + (g[i] + decay * p[i]);
    buf[i] = b;
    p[i] -= lr * b;
  }
}

}  // namespace packtrain::train::kernels
