#pragma once
// LibTorch's SGD (momentum) and Adam with each parameter's update done in
// one pass over its memory (train/src/update_kernels.cpp), where LibTorch
// runs five to eight tensor operations per parameter, each a pass of its
// own. They are LibTorch's classes underneath: the same options, the same
// per-parameter state (SGDParamState, AdamParamState), so checkpoints and
// lottery-ticket masks read and write them as before, and the numbers
// equal LibTorch's within float rounding (tests/train/fused_optimizers_test.cpp).
//
//   auto adam = std::make_unique<packtrain::train::FusedAdam>(params, torch::optim::AdamOptions(1e-3));
//
// The loops run in pieces over the calling thread's intra-op threads, and
// in AVX2 where the CPU has it. Parameters, gradients or loaded state that
// are not dense float32 CPU tensors of the parameter's shape, AMSGrad, SGD
// without momentum or with Nesterov or dampening, and closures go through
// LibTorch's own step(). As in LibTorch, Adam's step counts as an in-place
// change of each parameter (autograd's version check) and SGD's does not.
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

namespace packtrain::train {

class FusedSgd : public torch::optim::SGD {
 public:
  using torch::optim::SGD::SGD;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

class FusedAdam : public torch::optim::Adam {
 public:
  using torch::optim::Adam::Adam;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace packtrain::train
