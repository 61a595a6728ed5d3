#pragma once
// A small learnable problem for trainer tests (milliseconds per epoch):
// 1x28x28 images of 4 classes; class c is noise plus a bright 7x7 square in
// quadrant c.
#include <packtrain/data/dataset.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

namespace packtrain::testing {

inline data::Dataset toy_part(std::int64_t n, std::uint64_t seed) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto labels = torch::arange(n, torch::kInt64).remainder(4);
  auto images = torch::randn({n, 1, 28, 28}, generator) * 0.5;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto c = labels[i].item<std::int64_t>();
    images[i][0].narrow(0, 3 + 14 * (c / 2), 7).narrow(1, 3 + 14 * (c % 2), 7).add_(1.0);
  }
  return data::Dataset{images, labels};
}

inline data::DatasetSplit toy_split(std::int64_t n_train = 512, std::int64_t n_test = 128) {
  data::DatasetSplit split;
  split.name = "toy";
  split.train = toy_part(n_train, 1);
  split.test = toy_part(n_test, 2);
  split.classes = 4;
  split.channels = 1;
  split.height = 28;
  split.width = 28;
  return split;
}

}  // namespace packtrain::testing
