// TorchScript models (models/scripted.hpp), on the files that
// tests/fixtures/torchscript/make_fixtures.py made in Python.
#include "../data/one_thread.hpp"
#include "common/test_util.hpp"
#include "packtrain_paths.hpp"

#include <packtrain/models/models.hpp>
#include <packtrain/models/scripted.hpp>
#include <packtrain/scheduler/error.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>

namespace {

namespace models = packtrain::models;
using models::ModelOptions;
using ::testing::HasSubstr;

constexpr ModelOptions kGray28{.channels = 1, .height = 28, .width = 28, .classes = 10};

std::string fixture(const std::string& name) { return std::string(PACKTRAIN_TORCHSCRIPT_FIXTURES) + "/" + name; }

// The message make_model throws for `model`, or "" when it builds.
std::string refusal(const std::string& model, const ModelOptions& o = kGray28) {
  try {
    (void)models::make_model(model, o);
  } catch (const packtrain::Error& e) {
    return e.what();
  }
  return "";
}

TEST(ScriptedModel, ItsParametersAreTheModulesByTheirPythonNames) {
  auto model = models::make_model(fixture("tiny_mlp.pt"), kGray28);
  EXPECT_NE(dynamic_cast<models::ScriptedModel*>(model.get()), nullptr);
  std::vector<std::string> names;
  for (const auto& p : model->named_parameters()) names.push_back(p.key());
  EXPECT_THAT(names, ::testing::ElementsAre("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"));
  EXPECT_EQ(models::parameter_count(*model), 784 * 32 + 32 + 32 * 10 + 10);
  for (const auto& p : model->parameters()) EXPECT_TRUE(p.requires_grad());

  // Zeroing the wrapper's tensors zeroes what forward computes with.
  const auto images = torch::randn({3, 1, 28, 28});
  EXPECT_GT(model->forward(images).abs().sum().item<double>(), 0);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.zero_();
  }
  EXPECT_EQ(model->forward(images).abs().sum().item<double>(), 0);
}

TEST(ScriptedModel, EachModelOfAFileIsACopyStartingFromTheFilesWeights) {
  auto a = models::make_model(fixture("tiny_mlp.pt"), kGray28);
  auto b = models::make_model(fixture("tiny_mlp.pt"), kGray28);
  const auto images = torch::randn({4, 1, 28, 28});
  EXPECT_TRUE(torch::equal(a->forward(images), b->forward(images)));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : a->parameters()) p.add_(1.0);
  }
  EXPECT_FALSE(torch::equal(a->forward(images), b->forward(images)));
  // A third one still starts from the file's weights, not from a's.
  auto c = models::make_model(fixture("tiny_mlp.pt"), kGray28);
  EXPECT_TRUE(torch::equal(b->forward(images), c->forward(images)));
}

TEST(ScriptedModel, TrainingStepsLowerTheLoss) {
  auto model = models::make_model(fixture("lenet5_bn.pt"), kGray28);
  torch::manual_seed(0);
  const auto images = torch::randn({16, 1, 28, 28});
  const auto labels = torch::randint(0, 10, {16}, torch::kInt64);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    sgd.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(images), labels);
    loss.backward();
    sgd.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  EXPECT_LT(last, first * 0.5);
}

TEST(ScriptedModel, EvalSwitchesTheModulesBatchNormToItsRunningStatistics) {
  auto model = models::make_model(fixture("lenet5_bn.pt"), kGray28);
  const auto images = torch::randn({8, 1, 28, 28}) * 3 + 1;
  torch::NoGradGuard no_grad;
  model->train();
  const auto batch_statistics = model->forward(images);
  model->eval();
  const auto running_statistics = model->forward(images);
  EXPECT_FALSE(model->is_training());
  EXPECT_FALSE(torch::allclose(batch_statistics, running_statistics));
  // The running mean is a buffer of the wrapper, moved by the train-mode pass.
  bool found = false;
  for (const auto& b : model->named_buffers())
    if (b.key() == "bn1.running_mean") {
      found = true;
      EXPECT_GT(b.value().abs().sum().item<double>(), 0);
    }
  EXPECT_TRUE(found);
}

// The FLOPs counted from the operators a forward pass runs equal those the
// zoo counts while building the same architecture.
TEST(ScriptedModel, FlopsCountedFromItsOperatorsMatchTheZoosCount) {
  EXPECT_DOUBLE_EQ(models::estimate_flops(fixture("lenet_300_100.pt"), kGray28), models::estimate_flops("mlp", kGray28));
  EXPECT_DOUBLE_EQ(models::estimate_flops(fixture("lenet5_bn.pt"), kGray28), models::estimate_flops("lenet5", kGray28));
  EXPECT_DOUBLE_EQ(models::make_model(fixture("tiny_mlp.pt"), kGray28)->flops(), 2.0 * (784 * 32 + 32 * 10));
}

TEST(ScriptedModel, LabelIsTheStemAndHashFollowsTheContent) {
  packtrain::testing::TempDir dir;
  std::filesystem::copy_file(fixture("tiny_mlp.pt"), dir / "net.pt");
  std::filesystem::copy_file(fixture("wrong_width.pt"), dir / "other.pt");
  EXPECT_EQ(models::model_label((dir / "net.pt").string()), "net");
  EXPECT_EQ(models::model_label("mlp"), "mlp");
  EXPECT_EQ(models::model_hash("mlp"), "");
  EXPECT_FALSE(models::is_model_file("lenet5"));
  EXPECT_TRUE(models::is_model_file("net.pt"));
  const auto hash = models::model_hash((dir / "net.pt").string());
  EXPECT_EQ(hash.size(), 16u);
  EXPECT_EQ(hash, models::model_hash(fixture("tiny_mlp.pt")));  // the content, not the path
  EXPECT_NE(hash, models::model_hash((dir / "other.pt").string()));
}

TEST(ScriptedModel, TiedWeightsAreOneParameter) {
  auto model = models::make_model(fixture("tied_mlp.pt"), kGray28);
  std::vector<std::string> names;
  for (const auto& p : model->named_parameters()) names.push_back(p.key());
  EXPECT_THAT(names, ::testing::ElementsAre("fc1.weight", "fc1.bias", "hidden.weight", "hidden.bias", "out.weight",
                                            "out.bias"));
  EXPECT_EQ(models::parameter_count(*model), 784 * 32 + 32 + 32 * 32 + 32 + 32 * 10 + 10);
}

TEST(ScriptedModel, FrozenParametersStayFrozen) {
  auto model = models::make_model(fixture("frozen_mlp.pt"), kGray28);
  for (const auto& p : model->named_parameters())
    EXPECT_EQ(p.value().requires_grad(), p.key().rfind("fc1.", 0) != 0) << p.key();
}

// A forward that passes the check on two images and fails on a training
// batch fails with one line that keeps the module's own message.
TEST(ScriptedModel, AnErrorInForwardIsOneLineWithTheModulesMessage) {
  auto model = models::make_model(fixture("fails_on_large_batches.pt"), kGray28);
  EXPECT_EQ(model->forward(torch::zeros({8, 1, 28, 28})).size(0), 8);
  try {
    (void)model->forward(torch::zeros({16, 1, 28, 28}));
    FAIL() << "no error";
  } catch (const packtrain::Error& e) {
    const std::string what = e.what();
    EXPECT_THAT(what, HasSubstr("fails_on_large_batches.pt: "));
    EXPECT_THAT(what, HasSubstr("this model takes at most 8 images at a time"));
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

// Two buffers saved as views of one storage (LibTorch's deepcopy would make
// them one): each copy keeps both, as the file has them.
TEST(ScriptedModel, BuffersSharingAStorageAreCopiedRight) {
  auto model = models::make_model(fixture("shared_storage.pt"), kGray28);
  std::map<std::string, at::Tensor> buffers;
  for (const auto& b : model->named_buffers()) buffers[b.key()] = b.value();
  ASSERT_EQ(buffers.size(), 2u);
  EXPECT_EQ(buffers["low"].sizes(), c10::IntArrayRef({10}));
  EXPECT_FALSE(torch::equal(buffers["low"], buffers["high"]));
  EXPECT_EQ(buffers["high"].sizes(), c10::IntArrayRef({10}));
  // The values the file holds, as LibTorch loads them.
  auto file = torch::jit::load(fixture("shared_storage.pt"));
  EXPECT_TRUE(torch::equal(buffers["low"], file.attr("low").toTensor()));
  EXPECT_TRUE(torch::equal(buffers["high"], file.attr("high").toTensor()));
}

TEST(ScriptedModel, DropoutInItsGraphIsSeen) {
  auto with = models::make_model(fixture("dropout_mlp.pt"), kGray28);
  auto without = models::make_model(fixture("tiny_mlp.pt"), kGray28);
  EXPECT_TRUE(dynamic_cast<models::ScriptedModel&>(*with).draws_random());
  EXPECT_FALSE(dynamic_cast<models::ScriptedModel&>(*without).draws_random());
}

TEST(ScriptedModel, FilesThatAreNotOneImageClassifierAreRefusedInOneLine) {
  packtrain::testing::TempDir dir;
  packtrain::testing::write_file(dir / "text.pt", "not a model\n");
  const auto cases = std::vector<std::pair<std::string, std::string>>{
      {fixture("state_dict.pt"), "is not a TorchScript module"},
      {(dir / "text.pt").string(), "is not a TorchScript module"},
      {fixture("wrong_width.pt"), "must return [N, 10] logits for N images of 1x28x28, but returned [2, 7]"},
      {fixture("tuple_out.pt"), "forward must return one tensor of logits, but its signature is"},
      {fixture("two_inputs.pt"), "forward must take one tensor of images, but its signature is"},
      {(dir / "missing.pt").string(), "not found"},
      {"resnet", "unknown model 'resnet' (known: mlp, lenet5"},
      {fixture("double_mlp.pt"), "parameter fc1.weight is Double; packtrain trains float32 weights"},
      {fixture("no_parameters.pt"), "has no parameter to train"},
      {(dir / "mlp.pt").string(), "would be named mlp in the results, as the zoo's mlp is"},
  };
  std::filesystem::copy_file(fixture("tiny_mlp.pt"), dir / "mlp.pt");
  for (const auto& [model, expected] : cases) {
    const auto message = refusal(model);
    EXPECT_THAT(message, HasSubstr(expected)) << model;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  const auto colour = refusal(fixture("tiny_mlp.pt"), {.channels = 3, .height = 32, .width = 32, .classes = 10});
  EXPECT_THAT(colour, HasSubstr("cannot take 3x32x32 images"));
  EXPECT_EQ(colour.find('\n'), std::string::npos) << colour;
}

}  // namespace
