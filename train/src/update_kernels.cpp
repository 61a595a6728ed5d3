// Built with -O3 -fno-math-errno and without the LibTorch precompiled
// header (train/CMakeLists.txt). Each loop is compiled twice, for any
// x86-64 and for AVX2 with FMA; the second is taken where the CPU has them
// (checked once, by feature, not by model).
#include "update_kernels.hpp"

#include <packtrain/train/blas.hpp>

#include <cmath>

namespace packtrain::train::kernels {
namespace {

// The bodies, inlined into each of the two compilations below. A weight
// decay of 0 adds nothing (as LibTorch skips it): 0 x inf would be NaN.
__attribute__((always_inline)) inline void adam_body(float* __restrict p, const float* __restrict g,
                                                     float* __restrict m, float* __restrict v, std::size_t n,
                                                     const AdamStep& s) {
  const float b1 = s.beta1, b2 = s.beta2, one_b1 = 1.0f - s.beta1, one_b2 = 1.0f - s.beta2;
  const float eps = s.eps, decay = s.decay, step = s.step_size, sqrt_bc2 = s.sqrt_bc2;
  const bool decays = decay != 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    const float grad = decays ? g[i] + decay * p[i] : g[i];
    const float mi = b1 * m[i] + one_b1 * grad;
    const float vi = b2 * v[i] + one_b2 * (grad * grad);
    m[i] = mi;
    v[i] = vi;
    p[i] -= step * (mi / (std::sqrt(vi) / sqrt_bc2 + eps));
  }
}

__attribute__((always_inline)) inline void sgd_body(float* __restrict p, const float* __restrict g,
                                                    float* __restrict buf, std::size_t n, const SgdStep& s) {
  const float lr = s.lr, momentum = s.momentum, decay = s.decay;
  const bool decays = decay != 0.0f;
  if (s.first) {
    for (std::size_t i = 0; i < n; ++i) {
      const float grad = decays ? g[i] + decay * p[i] : g[i];
      buf[i] = grad;
      p[i] -= lr * grad;
    }
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const float b = momentum * buf[i] + (decays ? g[i] + decay * p[i] : g[i]);
    buf[i] = b;
    p[i] -= lr * b;
  }
}

void adam_any(float* p, const float* g, float* m, float* v, std::size_t n, const AdamStep& s) {
  adam_body(p, g, m, v, n, s);
}
void sgd_any(float* p, const float* g, float* buf, std::size_t n, const SgdStep& s) { sgd_body(p, g, buf, n, s); }

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) void adam_avx2(float* p, const float* g, float* m, float* v, std::size_t n,
                                                   const AdamStep& s) {
  adam_body(p, g, m, v, n, s);
}
__attribute__((target("avx2,fma"))) void sgd_avx2(float* p, const float* g, float* buf, std::size_t n,
                                                  const SgdStep& s) {
  sgd_body(p, g, buf, n, s);
}

bool has_avx2() {
  static const bool yes = this_cpu().avx2_fma;
  return yes;
}
#endif

}  // namespace

void adam(float* p, const float* g, float* m, float* v, std::size_t n, const AdamStep& s) {
#if defined(__x86_64__)
  if (has_avx2()) return adam_avx2(p, g, m, v, n, s);
#endif
  adam_any(p, g, m, v, n, s);
}

void sgd(float* p, const float* g, float* buf, std::size_t n, const SgdStep& s) {
#if defined(__x86_64__)
  if (has_avx2()) return sgd_avx2(p, g, buf, n, s);
#endif
  sgd_any(p, g, buf, n, s);
}

}  // namespace packtrain::train::kernels
