// FusedSgd and FusedAdam against LibTorch's SGD and Adam: the same numbers
// within float rounding, step after step, and the same state (a checkpoint
// written by one is read by the other).
#include <packtrain/train/fused_optimizers.hpp>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

using namespace packtrain::train;

namespace {

// Parameters of a few shapes, as a model has: matrices, a 4-d kernel, a bias.
std::vector<at::Tensor> make_params(std::uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<at::Tensor> out;
  for (const auto& shape : std::vector<std::vector<std::int64_t>>{{30, 17}, {6, 1, 5, 5}, {13}, {1000}})
    out.push_back(torch::randn(shape).requires_grad_());
  return out;
}

// The same gradients for both copies at each step, from a seeded generator.
void set_grads(std::vector<at::Tensor>& params, int step) {
  torch::manual_seed(1000 + step);
  for (auto& p : params) p.mutable_grad() = torch::randn_like(p) * (1 + step % 3);
}

void expect_close(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-5, 1e-6))
        << what << ": parameter " << i << " differs by " << (a[i] - b[i]).abs().max().item<float>();
    EXPECT_FALSE(torch::equal(a[i], make_params(1)[i])) << what << ": parameter " << i << " never moved";
  }
}

template <typename Fused, typename Plain, typename Options>
void compare(const Options& options, int steps, const std::string& what) {
  auto mine = make_params(1), theirs = make_params(1);
  Fused fused(mine, options);
  Plain plain(theirs, options);
  for (int s = 0; s < steps; ++s) {
    set_grads(mine, s);
    set_grads(theirs, s);
    fused.step();
    plain.step();
  }
  expect_close(mine, theirs, what);
}

}  // namespace

TEST(FusedOptimizers, SgdWithMomentumEqualsLibTorchs) {
  compare<FusedSgd, torch::optim::SGD>(torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(5e-4), 25, "sgd");
  compare<FusedSgd, torch::optim::SGD>(torch::optim::SGDOptions(0.01).momentum(0.5), 25, "sgd, no decay");
}

TEST(FusedOptimizers, AdamEqualsLibTorchs) {
  compare<FusedAdam, torch::optim::Adam>(torch::optim::AdamOptions(1e-3), 25, "adam");
  compare<FusedAdam, torch::optim::Adam>(torch::optim::AdamOptions(3e-3).weight_decay(1e-2).betas({0.8, 0.99}), 25,
                                         "adam, decay and other betas");
}

TEST(FusedOptimizers, ShapesTheLoopsCannotTakeGoThroughLibTorch) {
  // SGD without momentum, Nesterov and AMSGrad take LibTorch's own step.
  compare<FusedSgd, torch::optim::SGD>(torch::optim::SGDOptions(0.05), 5, "plain sgd");
  compare<FusedSgd, torch::optim::SGD>(torch::optim::SGDOptions(0.05).momentum(0.9).nesterov(true), 5, "nesterov");
  compare<FusedAdam, torch::optim::Adam>(torch::optim::AdamOptions(1e-3).amsgrad(true), 5, "amsgrad");
  // A non-contiguous parameter (a transposed leaf).
  auto odd = torch::randn({5, 7}).t().detach().requires_grad_();
  auto twin = odd.detach().clone().requires_grad_();
  ASSERT_FALSE(odd.is_contiguous());
  FusedAdam fused({odd}, torch::optim::AdamOptions(1e-2));
  torch::optim::Adam plain({twin}, torch::optim::AdamOptions(1e-2));
  for (int s = 0; s < 5; ++s) {
    odd.mutable_grad() = torch::full_like(odd, 0.5 + s);
    twin.mutable_grad() = torch::full_like(twin, 0.5 + s);
    fused.step();
    plain.step();
  }
  EXPECT_TRUE(torch::allclose(odd, twin, 1e-5, 1e-6));
}

TEST(FusedOptimizers, StateRoundTripsThroughLibTorchsArchive) {
  // Three fused steps, saved, loaded into LibTorch's Adam; both go on.
  auto mine = make_params(1), theirs = make_params(1);
  FusedAdam fused(mine, torch::optim::AdamOptions(1e-3));
  for (int s = 0; s < 3; ++s) {
    set_grads(mine, s);
    fused.step();
  }
  for (std::size_t i = 0; i < mine.size(); ++i) theirs[i].detach().copy_(mine[i].detach());
  torch::optim::Adam plain(theirs, torch::optim::AdamOptions(1e-3));
  std::stringstream bytes;
  {
    torch::serialize::OutputArchive out;
    fused.save(out);
    out.save_to(bytes);
  }
  torch::serialize::InputArchive in;
  in.load_from(bytes);
  plain.load(in);
  for (int s = 3; s < 10; ++s) {
    set_grads(mine, s);
    set_grads(theirs, s);
    fused.step();
    plain.step();
  }
  expect_close(mine, theirs, "adam after a round trip");
}

TEST(FusedOptimizers, AdamsStepCountsAsAnInPlaceChangeAndSgdsDoesNotAsInLibTorch) {
  auto a = torch::randn({4}).requires_grad_(), b = torch::randn({4}).requires_grad_();
  FusedAdam adam({a}, torch::optim::AdamOptions(0.1));
  FusedSgd sgd({b}, torch::optim::SGDOptions(0.1).momentum(0.9));
  const auto a_before = a._version(), b_before = b._version();
  a.mutable_grad() = torch::ones_like(a);
  b.mutable_grad() = torch::ones_like(b);
  adam.step();
  sgd.step();
  EXPECT_GT(a._version(), a_before);
  EXPECT_EQ(b._version(), b_before);
}

TEST(FusedOptimizers, NoDecayLeavesAnInfiniteWeightAndItsStateAsLibTorchDoes) {
  // 0 x inf is NaN: a decay of 0 must add nothing at all.
  auto mine = torch::tensor({1.0f, INFINITY}).requires_grad_(), theirs = mine.detach().clone().requires_grad_();
  FusedSgd fused({mine}, torch::optim::SGDOptions(0.1).momentum(0.9));
  torch::optim::SGD plain({theirs}, torch::optim::SGDOptions(0.1).momentum(0.9));
  for (int s = 0; s < 2; ++s) {
    mine.mutable_grad() = torch::ones_like(mine);
    theirs.mutable_grad() = torch::ones_like(theirs);
    fused.step();
    plain.step();
  }
  EXPECT_TRUE(torch::equal(mine, theirs)) << mine << theirs;
  EXPECT_FALSE(torch::isnan(mine).any().item<bool>());
}

TEST(FusedOptimizers, AParameterWithoutAGradientAndSeveralGroupsAreTakenAsLibTorchTakesThem) {
  auto mine = make_params(1), theirs = make_params(1);
  // Adam with a large eps (where it sits in the update shows) and two groups.
  const auto options = torch::optim::AdamOptions(1e-2).eps(0.5);
  const auto groups = [&](std::vector<at::Tensor>& p) {
    return std::vector<torch::optim::OptimizerParamGroup>{
        torch::optim::OptimizerParamGroup({p[0], p[1]}),
        torch::optim::OptimizerParamGroup({p[2], p[3]}, std::make_unique<torch::optim::AdamOptions>(
                                                            torch::optim::AdamOptions(3e-2).eps(1e-3)))};
  };
  FusedAdam fused(groups(mine), options);
  torch::optim::Adam plain(groups(theirs), options);
  for (int s = 0; s < 6; ++s) {
    set_grads(mine, s);
    set_grads(theirs, s);
    // Parameter 2 has no gradient on even steps: it must not move then.
    if (s % 2 == 0) {
      mine[2].mutable_grad().reset();
      theirs[2].mutable_grad().reset();
    }
    fused.step();
    plain.step();
  }
  expect_close(mine, theirs, "adam, two groups, a missing gradient, eps 0.5");
}

TEST(FusedOptimizers, LibTorchsStateGoesOnInTheFusedLoops) {
  // The other way from the round trip above: LibTorch's SGD writes, FusedSgd reads.
  auto mine = make_params(1), theirs = make_params(1);
  torch::optim::SGD plain(theirs, torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(5e-4));
  for (int s = 0; s < 3; ++s) {
    set_grads(theirs, s);
    plain.step();
  }
  for (std::size_t i = 0; i < mine.size(); ++i) mine[i].detach().copy_(theirs[i].detach());
  std::stringstream bytes;
  {
    torch::serialize::OutputArchive out;
    plain.save(out);
    out.save_to(bytes);
  }
  FusedSgd fused(mine, torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(5e-4));
  torch::serialize::InputArchive in;
  in.load_from(bytes);
  fused.load(in);
  for (int s = 3; s < 8; ++s) {
    set_grads(mine, s);
    set_grads(theirs, s);
    fused.step();
    plain.step();
  }
  expect_close(mine, theirs, "sgd from LibTorch's state");
}

// --- OpenBLAS's kernels (packtrain/train/blas.hpp) ---

#include <packtrain/train/blas.hpp>

TEST(BlasKernels, FallbacksAreReplacedByWhatTheCpuTakes) {
  const CpuFeatures avx512{.avx2_fma = true, .avx512 = true}, avx2{.avx2_fma = true, .avx512 = false}, old{};
  EXPECT_EQ(better_blas_core("Prescott", avx512), "SkylakeX");
  EXPECT_EQ(better_blas_core("Prescott", avx2), "Haswell");
  EXPECT_EQ(better_blas_core("NEHALEM", avx2), "Haswell");
  EXPECT_EQ(better_blas_core("Prescott", old), "");  // nothing better to take
  EXPECT_EQ(better_blas_core("Haswell", avx512), "");  // its own pick is an AVX2 one: kept
  EXPECT_EQ(better_blas_core("Zen", avx2), "");
  EXPECT_EQ(better_blas_core("", avx512), "");        // not OpenBLAS
}

TEST(BlasKernels, ThisTestRunsOnKernelsItsCpuCanTakeBest) {
  // The test binary links packtrain::train, so its start chose the kernels.
  const auto core = blas_core();
  ASSERT_FALSE(core.empty()) << "LibTorch's BLAS here is OpenBLAS (libopenblas0-openmp)";
  EXPECT_EQ(better_blas_core(core, this_cpu()), "") << "still on OpenBLAS's fallback kernels: " << core;
}
