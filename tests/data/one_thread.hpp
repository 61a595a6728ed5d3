#pragma once
// ctest runs two tests at a time on a 2-core machine: each test process keeps
// to one intra-op thread, or their OpenMP teams fight over the cores (spinning
// barriers make that many times slower). Include this in one source file of a
// test binary; tests that want more threads ask for them.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

namespace packtrain::testing {

class OneIntraOpThread : public ::testing::Environment {
 public:
  void SetUp() override {
    (void)at::get_num_threads();  // LibTorch's lazy per-thread init first
    at::set_num_threads(1);
  }
};

// Registered before gtest_main's RUN_ALL_TESTS, at static initialization.
[[maybe_unused]] inline ::testing::Environment* const kOneIntraOpThread =
    ::testing::AddGlobalTestEnvironment(new OneIntraOpThread);

}  // namespace packtrain::testing
