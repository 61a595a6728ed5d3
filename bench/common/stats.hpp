#pragma once
// Figures every bench prints: the median of its rounds (on a shared, noisy
// machine the median moves less than the mean or the minimum).
#include <algorithm>
#include <vector>

namespace packtrain::bench {

// The middle value (the upper one of an even count). `values` must not be empty.
inline double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace packtrain::bench
