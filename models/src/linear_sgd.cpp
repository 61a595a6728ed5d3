#include "layers.hpp"

#include <torch/torch.h>

namespace packtrain::models::detail {
namespace {

struct LinearSgdInBackward : torch::autograd::Function<LinearSgdInBackward> {
  // The weight comes as data, not as an input: autograd then neither
  // expects its gradient nor checks its version, which the step changes.
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& bias,
                               const torch::Tensor& weight, double lr, double weight_decay) {
    ctx->save_for_backward({x});
    ctx->saved_data["weight"] = weight;
    ctx->saved_data["lr"] = lr;
    ctx->saved_data["decay"] = weight_decay;
    return torch::addmm(bias, x, weight.t());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto x = ctx->get_saved_variables()[0];
    auto weight = ctx->saved_data["weight"].toTensor();
    const double lr = ctx->saved_data["lr"].toDouble(), decay = ctx->saved_data["decay"].toDouble();
    const auto& g = grads[0];
    torch::NoGradGuard no_grad;
    // The input's gradient first: it takes the weights before the step.
    torch::Tensor grad_x;
    if (ctx->needs_input_grad(0)) grad_x = g.mm(weight);
    weight.addmm_(g.t(), x, /*beta=*/1.0 - lr * decay, /*alpha=*/-lr);
    return {grad_x, g.sum(0), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor linear_sgd_in_backward(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                     double lr, double weight_decay) {
  return LinearSgdInBackward::apply(x, bias, weight.detach(), lr, weight_decay);
}

}  // namespace packtrain::models::detail
