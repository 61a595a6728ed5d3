#include <packtrain/train/fused_optimizers.hpp>

#include "update_kernels.hpp"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>

namespace packtrain::train {
namespace {

// A tensor the loops can take: a dense, contiguous float32 CPU tensor
// (layout first: is_contiguous() throws on sparse and oneDNN tensors).
bool plain_float(const at::Tensor& t) {
  return t.layout() == at::kStrided && !t.is_mkldnn() && t.device().is_cpu() && t.scalar_type() == at::kFloat &&
         t.is_contiguous();
}

// LibTorch's key for a parameter's state.
std::string key_of(const at::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

// Every parameter with a gradient, its gradient (any dense layout: copied
// contiguous) and the state tensors it has already (say, loaded from a
// checkpoint) fit the loops; otherwise LibTorch's own step takes the call.
template <typename State>
bool all_fusable(const std::vector<torch::optim::OptimizerParamGroup>& groups,
                 const ska::flat_hash_map<std::string, std::unique_ptr<torch::optim::OptimizerParamState>>& states,
                 const std::function<std::vector<at::Tensor>(const State&)>& tensors_of) {
  for (const auto& group : groups)
    for (const auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const auto& g = p.grad();
      if (!plain_float(p) || g.layout() != at::kStrided || g.is_mkldnn() || g.scalar_type() != at::kFloat ||
          !g.device().is_cpu() || !g.sizes().equals(p.sizes()))
        return false;
      const auto it = states.find(key_of(p));
      if (it == states.end()) continue;
      const auto* state = dynamic_cast<const State*>(it->second.get());
      if (!state) return false;
      for (const auto& t : tensors_of(*state))
        if (!t.defined() || !plain_float(t) || !t.sizes().equals(p.sizes())) return false;
    }
  return true;
}

// The loop over `n` elements in pieces over the calling thread's intra-op
// threads, as LibTorch's element-wise operations split theirs.
template <typename Loop>
void in_pieces(std::int64_t n, const Loop& loop) {
  constexpr std::int64_t kGrain = 32768;
  at::parallel_for(0, n, kGrain, [&](std::int64_t begin, std::int64_t end) {
    loop(static_cast<std::size_t>(begin), static_cast<std::size_t>(end - begin));
  });
}

}  // namespace

torch::Tensor FusedSgd::step(LossClosure closure) {
  const auto fits = [this] {
    for (auto& group : param_groups_) {
      const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
      if (o.momentum() == 0 || o.nesterov() || o.dampening() != 0) return false;
    }
    return all_fusable<torch::optim::SGDParamState>(
        param_groups_, state_, [](const torch::optim::SGDParamState& s) { return std::vector{s.momentum_buffer()}; });
  };
  if (closure || !fits()) return torch::optim::SGD::step(std::move(closure));
  torch::NoGradGuard no_grad;
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const auto g = p.grad().contiguous();
      auto it = state_.find(key_of(p));
      const bool first = it == state_.end();
      if (first) {
        auto state = std::make_unique<torch::optim::SGDParamState>();
        state->momentum_buffer(torch::empty_like(p, at::MemoryFormat::Contiguous));
        it = state_.emplace(key_of(p), std::move(state)).first;
      }
      const auto buf = static_cast<torch::optim::SGDParamState&>(*it->second).momentum_buffer();
      // As LibTorch's SGD (which steps p.data()), the parameter's version
      // is left alone.
      float* pp = p.data_ptr<float>();
      const float* gp = g.data_ptr<float>();
      float* bp = buf.data_ptr<float>();
      const kernels::SgdStep s{.lr = static_cast<float>(o.lr()), .momentum = static_cast<float>(o.momentum()),
                               .decay = static_cast<float>(o.weight_decay()), .first = first};
      in_pieces(p.numel(), [&](std::size_t at, std::size_t n) { kernels::sgd(pp + at, gp + at, bp + at, n, s); });
    }
  }
  return {};
}

torch::Tensor FusedAdam::step(LossClosure closure) {
  const auto fits = [this] {
    for (auto& group : param_groups_)
      if (static_cast<const torch::optim::AdamOptions&>(group.options()).amsgrad()) return false;
    return all_fusable<torch::optim::AdamParamState>(
        param_groups_, state_,
        [](const torch::optim::AdamParamState& s) { return std::vector{s.exp_avg(), s.exp_avg_sq()}; });
  };
  if (closure || !fits()) return torch::optim::Adam::step(std::move(closure));
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
      // As LibTorch's Adam (an in-place operation on p): autograd still
      // refuses a graph that saved the old values.
      p.unsafeGetTensorImpl()->bump_version();
      const auto t = static_cast<double>(state.step());
      const double bias_correction1 = 1 - std::pow(beta1, t), bias_correction2 = 1 - std::pow(beta2, t);
      float* pp = p.data_ptr<float>();
      const float* gp = g.data_ptr<float>();
      float* mp = state.exp_avg().data_ptr<float>();
      float* vp = state.exp_avg_sq().data_ptr<float>();
      const kernels::AdamStep s{.beta1 = static_cast<float>(beta1), .beta2 = static_cast<float>(beta2),
                                .eps = static_cast<float>(o.eps()), .decay = static_cast<float>(o.weight_decay()),
                                .step_size = static_cast<float>(o.lr() / bias_correction1),
                                .sqrt_bc2 = static_cast<float>(std::sqrt(bias_correction2))};
      in_pieces(p.numel(), [&](std::size_t at, std::size_t n) { kernels::adam(pp + at, gp + at, mp + at, vp + at, n, s); });
    }
  }
  return {};
}

}  // namespace packtrain::train
