#include <packtrain/models/zoo.hpp>

#include "layers.hpp"

namespace packtrain::models {

MlpImpl::MlpImpl(const ModelOptions& o) : Model(o) {
  const std::int64_t inputs = o.channels * o.height * o.width;
  fc1_ = register_module("fc1", torch::nn::Linear(inputs, 300));
  fc2_ = register_module("fc2", torch::nn::Linear(300, 100));
  fc3_ = register_module("fc3", torch::nn::Linear(100, o.classes));
  flops_ = detail::linear_flops(inputs, 300) + detail::linear_flops(300, 100) + detail::linear_flops(100, o.classes);
}

std::vector<torch::Tensor> MlpImpl::update_in_backward(std::optional<SgdInBackward> sgd) {
  sgd_in_backward_ = sgd;
  return sgd ? std::vector<torch::Tensor>{fc1_->weight} : std::vector<torch::Tensor>{};
}

torch::Tensor MlpImpl::forward(torch::Tensor images) {
  auto x = images.flatten(1);
  if (sgd_in_backward_ && is_training() && torch::GradMode::is_enabled())
    x = torch::relu(detail::linear_sgd_in_backward(x, fc1_->weight, fc1_->bias, sgd_in_backward_->lr,
                                                   sgd_in_backward_->weight_decay));
  else
    x = torch::relu(fc1_(x));
  x = torch::relu(fc2_(x));
  return fc3_(x);
}

}  // namespace packtrain::models
