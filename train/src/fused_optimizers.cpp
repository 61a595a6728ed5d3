#include <packtrain/train/fused_optimizers.hpp>

#include "update_kernels.hpp"

#include <torch/torch.h>

#include <cmath>

namespace packtrain::train {
namespace {

// A parameter the fused loops can take: contiguous float32 on the CPU.
bool fusable(const at::Tensor& p) {
  return p.device().is_cpu() && p.scalar_type() == at::kFloat && p.is_contiguous() && !p.is_sparse();
}

bool all_fusable(const std::vector<torch::optim::OptimizerParamGroup>& groups) {
  for (const auto& group : groups)
    for (const auto& p : group.params())
      if (p.grad().defined() && (!fusable(p) || p.grad().is_sparse() || p.grad().scalar_type() != at::kFloat))
        return false;
  return true;
}

// LibTorch's key for a parameter's state.
std::string key_of(const at::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

// Written through its pointer: counted as LibTorch's in-place operations
// count, so autograd still refuses a graph that saved the old values.
void changed_in_place(const at::Tensor& p) { p.unsafeGetTensorImpl()->bump_version(); }

}  // namespace

torch::Tensor FusedSgd::step(LossClosure closure) {
  if (closure || !all_fusable(param_groups_)) return torch::optim::SGD::step(std::move(closure));
  torch::NoGradGuard no_grad;
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
    if (o.momentum() == 0 || o.nesterov() || o.dampening() != 0) {
      // Rare shapes of SGD: LibTorch's loop for every group keeps one code path per call.
      return torch::optim::SGD::step();
    }
  }
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const auto g = p.grad().contiguous();
      auto it = state_.find(key_of(p));
      bool first = it == state_.end();
      if (first) {
        auto state = std::make_unique<torch::optim::SGDParamState>();
        state->momentum_buffer(torch::empty_like(p, at::MemoryFormat::Contiguous));
        it = state_.emplace(key_of(p), std::move(state)).first;
      }
      auto& state = static_cast<torch::optim::SGDParamState&>(*it->second);
      if (!state.momentum_buffer().is_contiguous()) state.momentum_buffer(state.momentum_buffer().contiguous());
      const auto& buf = state.momentum_buffer();
      changed_in_place(p);
      kernels::sgd(p.data_ptr<float>(), g.data_ptr<float>(), buf.data_ptr<float>(), static_cast<std::size_t>(p.numel()),
                   {.lr = static_cast<float>(o.lr()), .momentum = static_cast<float>(o.momentum()),
                    .decay = static_cast<float>(o.weight_decay()), .first = first});
    }
  }
  return {};
}

torch::Tensor FusedAdam::step(LossClosure closure) {
  if (closure || !all_fusable(param_groups_)) return torch::optim::Adam::step(std::move(closure));
  for (auto& group : param_groups_)
    if (static_cast<const torch::optim::AdamOptions&>(group.options()).amsgrad()) return torch::optim::Adam::step();
  torch::NoGradGuard no_grad;
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::AdamOptions&>(group.options());
    const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const auto g = p.grad().contiguous();
      auto it = state_.find(key_of(p));
      if (it == state_.end()) {
        auto state = std::make_unique<torch::optim::AdamParamState>();
        state->step(0);
        state->exp_avg(torch::zeros_like(p, at::MemoryFormat::Contiguous));
        state->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Contiguous));
        it = state_.emplace(key_of(p), std::move(state)).first;
      }
      auto& state = static_cast<torch::optim::AdamParamState&>(*it->second);
      state.step(state.step() + 1);
      // Loaded from a checkpoint, the moments may come in another layout.
      if (!state.exp_avg().is_contiguous()) state.exp_avg(state.exp_avg().contiguous());
      if (!state.exp_avg_sq().is_contiguous()) state.exp_avg_sq(state.exp_avg_sq().contiguous());
      changed_in_place(p);
      const auto t = static_cast<double>(state.step());
      const double bias_correction1 = 1 - std::pow(beta1, t), bias_correction2 = 1 - std::pow(beta2, t);
      kernels::adam(p.data_ptr<float>(), g.data_ptr<float>(), state.exp_avg().data_ptr<float>(),
                    state.exp_avg_sq().data_ptr<float>(), static_cast<std::size_t>(p.numel()),
                    {.beta1 = static_cast<float>(beta1), .beta2 = static_cast<float>(beta2),
                     .eps = static_cast<float>(o.eps()), .decay = static_cast<float>(o.weight_decay()),
                     .step_size = static_cast<float>(o.lr() / bias_correction1),
                     .sqrt_bc2 = static_cast<float>(std::sqrt(bias_correction2))});
    }
  }
  return {};
}

}  // namespace packtrain::train
