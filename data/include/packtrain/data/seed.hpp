#pragma once
// Independent random streams from one job seed.
//
// Jobs run concurrently in one process, so nothing in packtrain draws from
// LibTorch's global generator: each consumer (weight init, each epoch's
// shuffle, each batch's augmentation) makes its own at::Generator from
// mix_seed(job seed, what it is for). mix_seed(s, 1) and mix_seed(s + 1, 0)
// are unrelated, unlike s + 1 and (s + 1) + 0.
//
//   auto gen = at::make_generator<at::CPUGeneratorImpl>(packtrain::data::mix_seed(seed, epoch));

#include <cstdint>

namespace packtrain::data {

// splitmix64's finalizer applied to (seed, salt): a well-mixed 64-bit seed.
constexpr std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t salt) {
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (salt + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace packtrain::data
