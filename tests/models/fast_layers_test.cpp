// The zoo's own layer loops give LibTorch's numbers: the 2x2 max pool
// (models/src/pool.cpp) forward and backward, ties, NaN and -inf included,
// and lenet5 as a whole against the same modules run the LibTorch way.
#include "../../models/src/layers.hpp"

#include <packtrain/models/models.hpp>
#include <packtrain/models/zoo.hpp>

#include <gtest/gtest.h>
#include <torch/torch.h>

using namespace packtrain::models;

namespace {

// Forward and input gradient of `pool` on a copy of `x`, for a fixed upstream gradient.
std::pair<torch::Tensor, torch::Tensor> run(const std::function<torch::Tensor(const torch::Tensor&)>& pool,
                                            const torch::Tensor& x, const torch::Tensor& upstream) {
  auto in = x.detach().clone().requires_grad_();
  auto out = pool(in);
  out.backward(upstream);
  return {out.detach(), in.grad()};
}

void expect_same_pool_in(const torch::Tensor& x) {
  const auto theirs_fn = [](const torch::Tensor& t) { return torch::max_pool2d(t, 2); };
  const auto upstream = torch::randn(theirs_fn(x).sizes());
  const auto [mine, mine_grad] = run(packtrain::models::detail::max_pool_2x2, x, upstream);
  const auto [theirs, theirs_grad] = run(theirs_fn, x, upstream);
  // Bit for bit: the same values picked, the same winners given the gradient.
  EXPECT_TRUE(torch::equal(mine.nan_to_num(7), theirs.nan_to_num(7))) << x.sizes();
  EXPECT_TRUE(torch::equal(mine_grad, theirs_grad)) << x.sizes();
  // An upstream gradient in the other layout comes back in the input's.
  const auto other = upstream.contiguous(upstream.is_contiguous() ? at::MemoryFormat::ChannelsLast
                                                                  : at::MemoryFormat::Contiguous);
  EXPECT_TRUE(torch::equal(run(packtrain::models::detail::max_pool_2x2, x, other).second, theirs_grad)) << x.sizes();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(packtrain::models::detail::max_pool_2x2(x).nan_to_num(7), theirs.nan_to_num(7))) << "without autograd";
}

// In both layouts the loops take: images one after another, and channels last.
void expect_same_pool(const torch::Tensor& x) {
  expect_same_pool_in(x);
  const auto cl = x.contiguous(at::MemoryFormat::ChannelsLast);
  expect_same_pool_in(cl);
  // The output keeps the input's layout, as LibTorch's does.
  EXPECT_TRUE(packtrain::models::detail::max_pool_2x2(cl).is_contiguous(at::MemoryFormat::ChannelsLast));
}

}  // namespace

TEST(FastLayers, MaxPool2x2EqualsLibTorchsOnEvenAndOddSizes) {
  torch::manual_seed(5);
  expect_same_pool(torch::randn({3, 4, 8, 8}));
  expect_same_pool(torch::randn({2, 3, 7, 9}));  // the last row and column fall outside every window
  expect_same_pool(torch::randn({1, 1, 2, 2}));
}

TEST(FastLayers, MaxPool2x2SplitOverThreadsGivesTheSameNumbers) {
  // Enough planes and images for at::parallel_for to split them over 2 threads.
  at::set_num_threads(2);
  torch::manual_seed(8);
  expect_same_pool(torch::randn({64, 16, 8, 8}));
  at::set_num_threads(1);
}

TEST(FastLayers, MaxPool2x2BreaksTiesAndNaNsAsLibTorchDoes) {
  torch::manual_seed(6);
  // Few distinct values: most windows have ties, and after a ReLU many are all 0.
  expect_same_pool(torch::randint(-2, 3, {2, 3, 6, 6}).to(torch::kFloat));
  expect_same_pool(torch::relu(torch::randint(-2, 3, {2, 3, 6, 6}).to(torch::kFloat)));
  auto odd = torch::randn({1, 2, 4, 4});
  odd[0][0][0][1] = NAN;
  odd[0][0][1][0] = NAN;
  odd[0][1].fill_(-INFINITY);
  expect_same_pool(odd);
}

TEST(FastLayers, MaxPool2x2TakesOtherTensorsThroughLibTorch) {
  const auto doubles = torch::randn({1, 2, 4, 4}, torch::kDouble);
  EXPECT_TRUE(torch::equal(packtrain::models::detail::max_pool_2x2(doubles), torch::max_pool2d(doubles, 2)));
  const auto strided = torch::randn({2, 3, 8, 16}).slice(3, 0, 16, 2);  // every other column
  ASSERT_FALSE(strided.is_contiguous() || strided.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(torch::equal(packtrain::models::detail::max_pool_2x2(strided), torch::max_pool2d(strided, 2)));
}

// lenet5 runs its convolutions channels last (another oneDNN kernel, other
// rounding) and pools before its ReLUs: the numbers of the plain way within
// float rounding.
class LeNet5Inputs : public ::testing::TestWithParam<std::int64_t> {};

TEST_P(LeNet5Inputs, GiveTheNumbersOfThePlainLibTorchWay) {
  const std::int64_t channels = GetParam(), side = channels == 1 ? 28 : 32;
  LeNet5 model(ModelOptions{.channels = channels, .height = side, .width = side, .seed = 3});
  const auto children = model->named_children();
  auto conv1 = children["conv1"]->as<torch::nn::Conv2d>(), conv2 = children["conv2"]->as<torch::nn::Conv2d>();
  auto fc1 = children["fc1"]->as<torch::nn::Linear>(), fc2 = children["fc2"]->as<torch::nn::Linear>(),
       fc3 = children["fc3"]->as<torch::nn::Linear>();
  const auto reference = [&](const torch::Tensor& images) {
    auto x = torch::max_pool2d(torch::relu(conv1->forward(images)), 2);
    x = torch::max_pool2d(torch::relu(conv2->forward(x)), 2).flatten(1);
    return fc3->forward(torch::relu(fc2->forward(torch::relu(fc1->forward(x)))));
  };
  torch::manual_seed(4);
  const auto images = torch::rand({16, channels, side, side});
  const auto labels = torch::randint(0, 10, {16});
  const auto grads_of = [&](const torch::Tensor& logits) {
    model->zero_grad();
    torch::nn::functional::cross_entropy(logits, labels).backward();
    std::vector<torch::Tensor> out;
    for (const auto& p : model->parameters()) out.push_back(p.grad().clone());
    return std::make_pair(logits.detach(), out);
  };
  const auto [mine, mine_grads] = grads_of(model->forward(images));
  const auto [theirs, theirs_grads] = grads_of(reference(images));
  EXPECT_TRUE(torch::allclose(mine, theirs, 1e-4, 1e-5)) << (mine - theirs).abs().max().item<float>();
  ASSERT_EQ(mine_grads.size(), theirs_grads.size());
  for (std::size_t i = 0; i < mine_grads.size(); ++i)
    EXPECT_TRUE(torch::allclose(mine_grads[i], theirs_grads[i], 1e-4, 1e-5))
        << "parameter " << i << ": " << (mine_grads[i] - theirs_grads[i]).abs().max().item<float>();
}

// Gray 28x28 (conv1's one channel leaves the layout ambiguous) and colour 32x32.
INSTANTIATE_TEST_SUITE_P(FastLayers, LeNet5Inputs, ::testing::Values(1, 3));

// Hogwild's step inside backward: mlp's first layer ends where plain SGD
// (gradient, decay, step) puts it, and its gradient is never stored.
TEST(FastLayers, MlpFirstLayerStepsInsideBackwardAsPlainSgdWould) {
  auto stepped = make_model("mlp", ModelOptions{.seed = 9}), plain = make_model("mlp", ModelOptions{.seed = 9});
  ASSERT_TRUE(torch::equal(stepped->parameters()[0], plain->parameters()[0]));
  const double lr = 0.05, decay = 5e-4;
  const auto updated = stepped->update_in_backward(Model::SgdInBackward{lr, decay});
  const auto w = stepped->named_parameters()["fc1.weight"];
  ASSERT_EQ(updated.size(), 1u);
  EXPECT_TRUE(updated[0].is_same(w));
  torch::manual_seed(2);
  const auto images = torch::rand({16, 1, 28, 28});
  const auto labels = torch::randint(0, 10, {16});
  for (int step = 0; step < 3; ++step) {
    for (auto& p : stepped->parameters()) p.mutable_grad().reset();
    torch::nn::functional::cross_entropy(stepped->forward(images), labels).backward();
    plain->zero_grad();
    torch::nn::functional::cross_entropy(plain->forward(images), labels).backward();
    torch::NoGradGuard no_grad;
    const auto p = plain->named_parameters()["fc1.weight"];
    p.add_(p.grad() + decay * p, -lr);
    EXPECT_FALSE(w.grad().defined()) << "step " << step;
    // The other layers get gradients as usual (Hogwild steps them after backward).
    for (const auto& name : {"fc1.bias", "fc2.weight", "fc3.weight"}) {
      const auto mine = stepped->named_parameters()[name], theirs = plain->named_parameters()[name];
      ASSERT_TRUE(mine.grad().defined()) << name;
      EXPECT_TRUE(torch::allclose(mine.grad(), theirs.grad(), 1e-4, 1e-6)) << name << " at step " << step;
      mine.add_(mine.grad(), -lr);
      theirs.add_(theirs.grad(), -lr);
    }
    EXPECT_TRUE(torch::allclose(w, p, 1e-5, 1e-6))
        << "step " << step << ": " << (w - p).abs().max().item<float>();
    EXPECT_FALSE(torch::equal(w, make_model("mlp", ModelOptions{.seed = 9})->named_parameters()["fc1.weight"]));
  }
  // An input that needs a gradient gets it from the weights before the step.
  {
    auto mine_x = images.flatten(1).clone().requires_grad_(), theirs_x = images.flatten(1).clone().requires_grad_();
    const auto w0 = w.detach().clone();
    const auto b = stepped->named_parameters()["fc1.bias"];
    packtrain::models::detail::linear_sgd_in_backward(mine_x, w, b, lr, decay).sum().backward();
    torch::addmm(b.detach(), theirs_x, w0.t()).sum().backward();
    EXPECT_TRUE(torch::allclose(mine_x.grad(), theirs_x.grad(), 1e-5, 1e-6));
    EXPECT_FALSE(torch::equal(w, w0)) << "the weight took its step";
  }
  // Off again, and in evaluation: the plain layer.
  stepped->update_in_backward(std::nullopt);
  torch::nn::functional::cross_entropy(stepped->forward(images), labels).backward();
  EXPECT_TRUE(w.grad().defined());
}
