#include "pool_kernels.hpp"

#include <cmath>
#include <cstring>

namespace packtrain::models::kernels {
namespace {

// One window's winner, as LibTorch's scan picks it (from below everything,
// a larger value or a NaN replaces the best so far): written without
// branches, so the loops below vectorize.
inline float winner(float v0, float v1, float v2, float v3, std::uint8_t& at) {
  float best = v0;  // v0 wins against the start, or is -inf and stays first
  int k = 0;
  const auto take = [&](float v, int index) {
    const bool wins = v > best || v != v;
    best = wins ? v : best;
    k = wins ? index : k;
  };
  take(v1, 1);
  take(v2, 2);
  take(v3, 3);
  at = static_cast<std::uint8_t>(k);
  return best;
}

}  // namespace

// (An AVX2 compilation of these loops measured slower than the default one
// in bench_step: the windows' strided loads and byte-wide winners vectorize
// poorly at 6 and 16 channels.)
void max_pool_2x2(const float* in, float* out, std::uint8_t* which, std::size_t planes, std::size_t h,
                  std::size_t w) {
  const std::size_t oh = h / 2, ow = w / 2;
  for (std::size_t p = 0; p < planes; ++p) {
    const float* plane = in + p * h * w;
    for (std::size_t i = 0; i < oh; ++i) {
      const float* top = plane + 2 * i * w;
      const float* bottom = top + w;
      float* o = out + (p * oh + i) * ow;
      std::uint8_t* k = which ? which + (p * oh + i) * ow : nullptr;
      for (std::size_t j = 0; j < ow; ++j) {
        std::uint8_t at;
        o[j] = winner(top[2 * j], top[2 * j + 1], bottom[2 * j], bottom[2 * j + 1], at);
        if (k) k[j] = at;
      }
    }
  }
}

void max_pool_2x2_backward(const float* grad_out, const std::uint8_t* which, float* grad_in, std::size_t planes,
                           std::size_t h, std::size_t w) {
  std::memset(grad_in, 0, planes * h * w * sizeof(float));
  const std::size_t oh = h / 2, ow = w / 2;
  for (std::size_t p = 0; p < planes; ++p)
    for (std::size_t i = 0; i < oh; ++i) {
      float* top = grad_in + p * h * w + 2 * i * w;
      const float* g = grad_out + (p * oh + i) * ow;
      const std::uint8_t* k = which + (p * oh + i) * ow;
      for (std::size_t j = 0; j < ow; ++j) top[(k[j] >> 1) * w + 2 * j + (k[j] & 1)] = g[j];
    }
}

void max_pool_2x2_nhwc(const float* in, float* out, std::uint8_t* which, std::size_t images, std::size_t h,
                       std::size_t w, std::size_t c) {
  const std::size_t oh = h / 2, ow = w / 2, row = w * c;
  for (std::size_t b = 0; b < images; ++b)
    for (std::size_t i = 0; i < oh; ++i)
      for (std::size_t j = 0; j < ow; ++j) {
        const float* tl = in + (b * h + 2 * i) * row + 2 * j * c;
        const std::size_t o = ((b * oh + i) * ow + j) * c;
        for (std::size_t ch = 0; ch < c; ++ch) {
          std::uint8_t at;
          out[o + ch] = winner(tl[ch], tl[c + ch], tl[row + ch], tl[row + c + ch], at);
          if (which) which[o + ch] = at;
        }
      }
}

void max_pool_2x2_nhwc_backward(const float* grad_out, const std::uint8_t* which, float* grad_in, std::size_t images,
                                std::size_t h, std::size_t w, std::size_t c) {
  std::memset(grad_in, 0, images * h * w * c * sizeof(float));
  const std::size_t oh = h / 2, ow = w / 2, row = w * c;
  for (std::size_t b = 0; b < images; ++b)
    for (std::size_t i = 0; i < oh; ++i)
      for (std::size_t j = 0; j < ow; ++j) {
        float* tl = grad_in + (b * h + 2 * i) * row + 2 * j * c;
        const std::size_t o = ((b * oh + i) * ow + j) * c;
        for (std::size_t ch = 0; ch < c; ++ch) {
          const auto k = which[o + ch];
          tl[(k >> 1) * row + (k & 1) * c + ch] = grad_out[o + ch];
        }
      }
}

}  // namespace packtrain::models::kernels
