// Magnitude masks: exact sparsity, what is left dense, ties, iterative
// rounds, and masked weights staying exactly zero through training.
#include <packtrain/lth/mask.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/train/checkpoint.hpp>
#include <packtrain/train/trainer.hpp>

#include "common/test_util.hpp"
#include "packtrain_paths.hpp"

#include <packtrain/models/models.hpp>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <optional>

using namespace packtrain;
using lth::Scope;

namespace {

// conv -> batch norm -> linear -> linear (the output layer), with biases.
struct SmallNetImpl : torch::nn::Module {
  SmallNetImpl() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3)));
    bn = register_module("bn", torch::nn::BatchNorm2d(4));
    hidden = register_module("hidden", torch::nn::Linear(4 * 6 * 6, 20));
    out = register_module("out", torch::nn::Linear(20, 10));
    torch::manual_seed(7);
    torch::NoGradGuard no_grad;
    for (auto& p : parameters()) p.normal_();
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  torch::nn::Linear hidden{nullptr}, out{nullptr};
};
TORCH_MODULE(SmallNet);

std::int64_t removed_in(const at::Tensor& keep) { return (keep == 0).sum().item<std::int64_t>(); }

std::int64_t expected_removed(double s, std::int64_t n) { return std::llround(s * static_cast<double>(n)); }

// Every parameter and buffer that is not a conv/linear weight, cloned.
std::map<std::string, at::Tensor> dense_tensors(torch::nn::Module& m) {
  std::map<std::string, at::Tensor> out;
  for (const auto& p : m.named_parameters())
    if (p.key().find("weight") == std::string::npos || p.key().rfind("bn.", 0) == 0) out[p.key()] = p.value().clone();
  for (const auto& b : m.named_buffers()) out["buffer:" + b.key()] = b.value().clone();
  return out;
}

}  // namespace

TEST(Mask, PrunableWeightsAreConvAndLinearWeightsOnly) {
  SmallNet net;
  const auto w = lth::prunable_weights(*net);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].first, "conv.weight");
  EXPECT_EQ(w[1].first, "hidden.weight");
  EXPECT_EQ(w[2].first, "out.weight");
}

// A TorchScript model's layers are not LibTorch's modules: its weights are
// found by name (tests/fixtures/torchscript: the zoo's LeNet-5 with a batch
// norm after conv1, its classifier an nn.Sequential).
TEST(Mask, ATorchScriptModelsPrunableWeightsAreItsWeightsOfTwoOrMoreDimensions) {
  auto net = models::make_model(std::string(PACKTRAIN_TORCHSCRIPT_FIXTURES) + "/lenet5_bn.pt",
                                {.channels = 1, .height = 28, .width = 28, .classes = 10});
  std::vector<std::string> names;
  for (const auto& [name, w] : lth::prunable_weights(*net)) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"conv1.weight", "conv2.weight", "fc.0.weight", "fc.2.weight", "fc.4.weight"}));
  // A mask of it zeroes the file's weights in the module that forward runs.
  const auto mask = lth::magnitude_mask(*net, 0.9, Scope::global);
  mask.apply(*net);
  const auto weights = lth::prunable_weights(*net);
  std::int64_t zeros = 0, total = 0;
  for (const auto& [name, w] : weights) {
    zeros += (w == 0).sum().item<std::int64_t>();
    total += w.numel();
  }
  EXPECT_EQ(zeros, expected_removed(0.9, total));
  torch::NoGradGuard no_grad;
  for (auto& [name, w] : weights) w.zero_();
  net->eval();
  // Every weight zero: the logits are what the biases alone give, the same for any image.
  const auto logits = net->forward(torch::randn({2, 1, 28, 28}));
  EXPECT_TRUE(torch::allclose(logits[0], logits[1]));
}

TEST(Mask, GlobalSparsityIsExactAndCutsTheSmallestMagnitudes) {
  SmallNet net;
  const std::int64_t n = 4 * 9 + 144 * 20 + 20 * 10;
  for (const double s : {0.1, 0.333, 0.5, 0.9, 0.97}) {
    const auto mask = lth::magnitude_mask(*net, s, Scope::global);
    ASSERT_EQ(mask.total(), n);
    std::int64_t removed = 0;
    double largest_removed = 0, smallest_kept = 1e30;
    const auto weights = lth::prunable_weights(*net);
    for (std::size_t i = 0; i < weights.size(); ++i) {
      removed += removed_in(mask.keep[i]);
      const auto a = weights[i].second.detach().abs();
      const auto cut = a.masked_select(mask.keep[i] == 0), left = a.masked_select(mask.keep[i] == 1);
      if (cut.numel()) largest_removed = std::max(largest_removed, cut.max().item<double>());
      if (left.numel()) smallest_kept = std::min(smallest_kept, left.min().item<double>());
    }
    EXPECT_EQ(removed, expected_removed(s, n)) << s;
    EXPECT_DOUBLE_EQ(mask.sparsity(), static_cast<double>(expected_removed(s, n)) / n) << s;
    EXPECT_LE(largest_removed, smallest_kept) << s;
  }
}

TEST(Mask, PerLayerSparsityIsExactInEveryLayer) {
  SmallNet net;
  const double s = 0.85;
  const auto mask = lth::magnitude_mask(*net, s, Scope::per_layer);
  const auto weights = lth::prunable_weights(*net);
  for (std::size_t i = 0; i < weights.size(); ++i) {
    EXPECT_EQ(removed_in(mask.keep[i]), expected_removed(s, weights[i].second.numel())) << weights[i].first;
    const auto a = weights[i].second.detach().abs();
    EXPECT_LE(a.masked_select(mask.keep[i] == 0).max().item<double>(),
              a.masked_select(mask.keep[i] == 1).min().item<double>());
  }
  // A global mask at the same sparsity spreads the cut differently (the layers' scales differ here).
  {
    torch::NoGradGuard no_grad;
    net->out->weight.abs_().add_(100);
  }
  const auto global = lth::magnitude_mask(*net, s, Scope::global);
  const auto per_layer = lth::magnitude_mask(*net, s, Scope::per_layer);
  EXPECT_EQ(removed_in(global.keep[2]), 0);
  EXPECT_EQ(removed_in(per_layer.keep[2]), expected_removed(s, 200));
}

TEST(Mask, ApplyLeavesBiasesBatchNormAndTheOutputBiasDense) {
  SmallNet net;
  {
    torch::NoGradGuard no_grad;
    net->bn->weight.normal_();
    net->bn->running_mean.normal_();
  }
  const auto before = dense_tensors(*net);
  ASSERT_TRUE(before.count("out.bias"));
  ASSERT_TRUE(before.count("bn.weight"));
  ASSERT_TRUE(before.count("conv.bias"));
  const auto mask = lth::magnitude_mask(*net, 0.95, Scope::global);
  mask.apply(*net);
  const auto after = dense_tensors(*net);
  for (const auto& [name, t] : before) EXPECT_TRUE(torch::equal(t, after.at(name))) << name;
  const auto weights = lth::prunable_weights(*net);
  std::int64_t zeros = 0;
  for (const auto& [name, w] : weights) zeros += (w == 0).sum().item<std::int64_t>();
  EXPECT_EQ(zeros, mask.total() - mask.kept());
}

TEST(Mask, TiesAreBrokenByPositionSoTheSameWeightsGiveTheSameMask) {
  SmallNet net;
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, w] : lth::prunable_weights(*net)) w.fill_(0.5);
  }
  const auto a = lth::magnitude_mask(*net, 0.1, Scope::global);
  const auto b = lth::magnitude_mask(*net, 0.1, Scope::global);
  const std::int64_t n = a.total(), cut = expected_removed(0.1, n);
  // Earlier layer and lower index first: the conv's 36 and then hidden's first ones.
  const auto flat = torch::cat({a.keep[0].flatten(), a.keep[1].flatten(), a.keep[2].flatten()});
  EXPECT_EQ(flat.slice(0, 0, cut).sum().item<double>(), 0.0);
  EXPECT_EQ(flat.slice(0, cut).sum().item<double>(), static_cast<double>(n - cut));
  for (std::size_t i = 0; i < a.keep.size(); ++i) EXPECT_TRUE(torch::equal(a.keep[i], b.keep[i]));
}

TEST(Mask, AnIterativeRoundRemovesTheRateOfWhatIsLeftAndKeepsEarlierCuts) {
  SmallNet net;
  const auto first = lth::magnitude_mask(*net, 0.2, Scope::global);
  // New magnitudes (as after training), where removed weights got large: they must stay removed.
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, w] : lth::prunable_weights(*net)) w.normal_();
    first.apply(*net);
    auto w = lth::prunable_weights(*net);
    for (std::size_t i = 0; i < w.size(); ++i) w[i].second.add_((1 - first.keep[i]) * 1000);
  }
  const auto second = lth::magnitude_mask(*net, 0.2, Scope::global, &first);
  const auto kept_before = first.kept();
  EXPECT_EQ(second.total() - second.kept(), (first.total() - kept_before) + expected_removed(0.2, kept_before));
  for (std::size_t i = 0; i < first.keep.size(); ++i)
    EXPECT_EQ(((first.keep[i] == 0) & (second.keep[i] == 1)).sum().item<std::int64_t>(), 0) << i;
  EXPECT_THROW(lth::magnitude_mask(*net, 1.5, Scope::global), Error);
}

TEST(Mask, SavesAndLoadsExactly) {
  packtrain::testing::TempDir dir;
  SmallNet net;
  const auto mask = lth::magnitude_mask(*net, 0.7, Scope::per_layer);
  mask.save(dir / "m/mask.pt");
  const auto back = lth::Mask::load(dir / "m/mask.pt");
  ASSERT_EQ(back.names, mask.names);
  for (std::size_t i = 0; i < mask.keep.size(); ++i) EXPECT_TRUE(torch::equal(back.keep[i], mask.keep[i]));
  EXPECT_THROW(lth::Mask::load(dir / "missing.pt"), Error);
}

namespace {

// Trains an mlp on random 1x28x28 data for 2 epochs with `optimizer` (under a
// MaskedTraining when `masked`), checking after every step whether the removed
// weights and their momentum are exactly zero. Returns how many (step, weight) checks found a
// removed weight that was not zero.
struct StepCheck {
  std::int64_t steps = 0;
  std::int64_t nonzero_removed = 0;   // removed weights found non-zero after a step
  std::int64_t nonzero_momentum = 0;  // removed entries of momentum buffers found non-zero
  bool kept_weights_moved = false;
};

StepCheck train_masked(train::OptimizerKind optimizer, bool masked) {
  torch::manual_seed(3);
  data::Dataset part{torch::randn({256, 1, 28, 28}), torch::randint(0, 10, {256}, torch::kInt64)};
  auto model = models::make_model("mlp", {.seed = 11});
  const auto mask = lth::magnitude_mask(*model, 0.9, Scope::global);
  mask.apply(*model);
  std::vector<at::Tensor> start;
  for (auto& [name, w] : lth::prunable_weights(*model)) start.push_back(w.detach().clone());
  train::Trainer trainer(model, train::TrainOptions()
                                    .epochs(2)
                                    .batch_size(32)
                                    .optimizer(optimizer)
                                    .weight_decay(5e-4)
                                    .momentum(0.9)
                                    .lr(optimizer == train::OptimizerKind::sgd ? 0.1 : 0.01)
                                    .threads(1)
                                    .prefetch(false));
  std::optional<lth::MaskedTraining> keep_zero;
  if (masked) keep_zero.emplace(mask, trainer.model(), &trainer.optimizer());
  StepCheck check;
  train::TrainCallbacks callbacks;
  callbacks.after_step = [&](torch::nn::Module& m) {
    ++check.steps;
    const auto weights = lth::prunable_weights(m);
    auto& state = trainer.optimizer().state();
    for (std::size_t i = 0; i < weights.size(); ++i) {
      const auto removed = mask.keep[i] == 0;
      check.nonzero_removed += (weights[i].second.detach().masked_select(removed) != 0).sum().item<std::int64_t>();
      const auto key = c10::guts::to_string(weights[i].second.unsafeGetTensorImpl());
      ASSERT_TRUE(state.count(key));
      std::vector<at::Tensor> moments;
      if (auto* s = dynamic_cast<torch::optim::SGDParamState*>(state.at(key).get())) moments = {s->momentum_buffer()};
      if (auto* s = dynamic_cast<torch::optim::AdamParamState*>(state.at(key).get())) moments = {s->exp_avg(), s->exp_avg_sq()};
      ASSERT_FALSE(moments.empty());
      for (const auto& t : moments) check.nonzero_momentum += (t.masked_select(removed) != 0).sum().item<std::int64_t>();
    }
  };
  const train::TrainData td{part, data::all_indices(part), part, torch::arange(64, torch::kInt64)};
  const auto result = trainer.fit(td, callbacks);
  EXPECT_EQ(result.status, JobStatus::done);
  const auto weights = lth::prunable_weights(*model);
  for (std::size_t i = 0; i < weights.size(); ++i)
    check.kept_weights_moved |= !torch::equal(weights[i].second.masked_select(mask.keep[i] == 1),
                                              start[i].masked_select(mask.keep[i] == 1));
  return check;
}

}  // namespace

TEST(MaskedTraining, RemovedWeightsStayExactlyZeroAfterEverySgdStepWithMomentumAndWeightDecay) {
  const auto c = train_masked(train::OptimizerKind::sgd, true);
  EXPECT_EQ(c.steps, 16);
  EXPECT_EQ(c.nonzero_removed, 0);
  EXPECT_EQ(c.nonzero_momentum, 0);
  EXPECT_TRUE(c.kept_weights_moved);
}

TEST(MaskedTraining, RemovedWeightsStayExactlyZeroAfterEveryAdamStep) {
  const auto c = train_masked(train::OptimizerKind::adam, true);
  EXPECT_EQ(c.nonzero_removed, 0);
  EXPECT_EQ(c.nonzero_momentum, 0);
  EXPECT_TRUE(c.kept_weights_moved);
}

TEST(MaskedTraining, WithoutItRemovedWeightsWouldRegrow) {
  // The control: the same training unmasked moves the removed weights, so the
  // tests above would catch a MaskedTraining that did nothing.
  const auto c = train_masked(train::OptimizerKind::sgd, false);
  EXPECT_GT(c.nonzero_removed, 0);
  EXPECT_GT(c.nonzero_momentum, 0);
}

namespace {

// `steps` plain SGD steps (momentum 0.9, weight decay 5e-4) of `model` on one random batch.
void sgd_steps(models::Model& model, torch::optim::SGD& sgd, int steps) {
  torch::manual_seed(5);
  const auto x = torch::randn({32, 1, 28, 28});
  const auto y = torch::randint(0, 10, {32}, torch::kInt64);
  for (int s = 0; s < steps; ++s) {
    sgd.zero_grad();
    torch::nn::functional::cross_entropy(model.forward(x), y).backward();
    sgd.step();
  }
}

// Removed entries of the weights and of their momentum buffers that are not zero.
std::int64_t nonzero_removed(models::Model& model, torch::optim::SGD& sgd, const lth::Mask& mask) {
  std::int64_t n = 0;
  const auto weights = lth::prunable_weights(model);
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const auto removed = mask.keep[i] == 0;
    n += (weights[i].second.detach().masked_select(removed) != 0).sum().item<std::int64_t>();
    const auto key = c10::guts::to_string(weights[i].second.unsafeGetTensorImpl());
    const auto& buffer = static_cast<torch::optim::SGDParamState&>(*sgd.state().at(key)).momentum_buffer();
    n += (buffer.masked_select(removed) != 0).sum().item<std::int64_t>();
  }
  return n;
}

}  // namespace

TEST(MaskedTraining, ZeroesMomentumTheOptimizerAlreadyHasAndKeepsItZero) {
  // Momentum built up unmasked (as in a resumed run) would move the removed
  // weights again: the constructor must zero it, not only the weights.
  auto model = models::make_model("mlp", {.seed = 11});
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(5e-4));
  sgd_steps(*model, sgd, 3);
  const auto mask = lth::magnitude_mask(*model, 0.8, Scope::global);
  ASSERT_GT(nonzero_removed(*model, sgd, mask), 0);
  lth::MaskedTraining masked(mask, *model, &sgd);
  EXPECT_EQ(nonzero_removed(*model, sgd, mask), 0);
  for (int s = 0; s < 5; ++s) {
    sgd_steps(*model, sgd, 1);
    EXPECT_EQ(nonzero_removed(*model, sgd, mask), 0) << "after step " << s;
  }
}

TEST(MaskedTraining, MasksOnlyWhileItLives) {
  auto model = models::make_model("mlp", {.seed = 11});
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  const auto mask = lth::magnitude_mask(*model, 0.8, Scope::per_layer);
  {
    const lth::MaskedTraining masked(mask, *model, &sgd);
    sgd_steps(*model, sgd, 3);
    EXPECT_EQ(nonzero_removed(*model, sgd, mask), 0);
  }
  // Its gradient hooks went with it: the removed weights regrow.
  sgd_steps(*model, sgd, 1);
  EXPECT_GT(nonzero_removed(*model, sgd, mask), 0);
}

TEST(MaskedTraining, RefusesOptimizersWhoseZerosMightNotStayZero) {
  auto model = models::make_model("mlp", {.seed = 11});
  torch::optim::RMSprop rmsprop(model->parameters(), torch::optim::RMSpropOptions(0.01));
  const auto mask = lth::magnitude_mask(*model, 0.5, Scope::global);
  EXPECT_THROW((lth::MaskedTraining{mask, *model, &rmsprop}), Error);
  auto other = lth::magnitude_mask(*models::make_model("lenet5", {.seed = 1}), 0.5, Scope::global);
  EXPECT_THROW((lth::MaskedTraining{other, *model, nullptr}), Error);
}

TEST(MaskedTraining, KeepsMaskingAfterACheckpointIsLoadedIntoTheModel) {
  // As in a retrain: the Trainer loads the ticket after the hooks are set.
  // Loading replaces the node autograd accumulates the weights' gradients
  // with (measured: LibTorch 1.13 drops it), which must not end the masking.
  packtrain::testing::TempDir dir;
  auto model = models::make_model("mlp", {.seed = 11});
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(5e-4));
  const auto mask = lth::magnitude_mask(*model, 0.8, Scope::global);
  mask.apply(*model);
  train::save_checkpoint(dir / "ticket.pt", *model, &sgd, 0);
  const lth::MaskedTraining masked(mask, *model, &sgd);
  sgd_steps(*model, sgd, 2);
  const auto node = torch::autograd::impl::try_get_grad_accumulator(lth::prunable_weights(*model)[0].second);
  train::load_checkpoint(dir / "ticket.pt", *model, &sgd);
  EXPECT_NE(torch::autograd::impl::try_get_grad_accumulator(lth::prunable_weights(*model)[0].second), node);
  for (int s = 0; s < 3; ++s) {
    sgd_steps(*model, sgd, 1);
    EXPECT_EQ(nonzero_removed(*model, sgd, mask), 0) << "after step " << s;
  }
}
