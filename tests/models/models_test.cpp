#include "../data/one_thread.hpp"

#include <packtrain/models/models.hpp>
#include <packtrain/models/zoo.hpp>
#include <packtrain/scheduler/error.hpp>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

namespace {

namespace models = packtrain::models;
using models::ModelOptions;

constexpr ModelOptions kGray28{.channels = 1, .height = 28, .width = 28, .classes = 10};
constexpr ModelOptions kColor32{.channels = 3, .height = 32, .width = 32, .classes = 10};

std::int64_t count(const std::string& name, const ModelOptions& o) {
  return models::parameter_count(*models::make_model(name, o));
}

// Known figures: LeNet-300-100's 266,610; the CIFAR ResNet-18's 11,173,962 and
// VGG-11-BN's 9,231,114 (kuangliu/pytorch-cifar); torchvision's MobileNetV2
// with 1000 classes, 3,504,872 (strides change no parameter).
TEST(ModelZoo, ParameterCountsMatchKnownFigures) {
  EXPECT_EQ(count("mlp", kGray28), 266'610);
  EXPECT_EQ(count("resnet18", kColor32), 11'173'962);
  EXPECT_EQ(count("vgg11", kColor32), 9'231'114);
  auto imagenet_head = kColor32;
  imagenet_head.classes = 1000;
  EXPECT_EQ(count("mobilenetv2", imagenet_head), 3'504'872);
}

// LeNet-5 by hand: conv1 6x(1x5x5)+6 = 156, conv2 16x(6x5x5)+16 = 2,416,
// fc1 400x120+120 = 48,120, fc2 120x84+84 = 10,164, fc3 84x10+10 = 850.
TEST(ModelZoo, LeNet5CountsByHand) {
  EXPECT_EQ(count("lenet5", kGray28), 156 + 2'416 + 48'120 + 10'164 + 850);
  // 3 input channels: conv1 has 6x(3x5x5)+6 = 456 weights; the 32x32 input
  // without padding gives the same 16x5x5 map as 28x28 with padding 2.
  EXPECT_EQ(count("lenet5", kColor32), 456 + 2'416 + 48'120 + 10'164 + 850);
}

TEST(ModelZoo, ClassCountSetsTheHead) {
  auto o = kGray28;
  o.classes = 3;
  EXPECT_EQ(count("mlp", o), 266'610 - 7 * 100 - 7);
}

TEST(ModelZoo, FlopsAreCountedAndGrowWithTheModel) {
  // mlp: 2 x (784x300 + 300x100 + 100x10) multiply-adds.
  EXPECT_DOUBLE_EQ(models::estimate_flops("mlp", kGray28), 2.0 * (784 * 300 + 300 * 100 + 100 * 10));
  // lenet5 on 28x28: conv1 6x28x28x25, conv2 16x10x10x150, fc 400x120 + 120x84 + 84x10.
  EXPECT_DOUBLE_EQ(models::estimate_flops("lenet5", kGray28),
                   2.0 * (6 * 28 * 28 * 25 + 16 * 10 * 10 * 150 + 400 * 120 + 120 * 84 + 84 * 10));
  EXPECT_LT(models::estimate_flops("mlp", kGray28), models::estimate_flops("lenet5", kGray28));
  const double lenet = models::estimate_flops("lenet5", kColor32);
  const double mobile = models::estimate_flops("mobilenetv2", kColor32);
  const double vgg = models::estimate_flops("vgg11", kColor32);
  const double resnet = models::estimate_flops("resnet18", kColor32);
  std::printf("forward FLOPs per 3x32x32 image: lenet5 %.3g, mobilenetv2 %.3g, vgg11 %.3g, resnet18 %.3g\n", lenet,
              mobile, vgg, resnet);
  EXPECT_LT(lenet, mobile);
  EXPECT_LT(mobile, vgg);
  EXPECT_LT(vgg, resnet);
  // The CIFAR ResNet-18 is about 0.56 G multiply-adds per image.
  EXPECT_NEAR(resnet / 2, 0.556e9, 0.02e9);
  auto narrow = kColor32;
  narrow.width_multiplier = 0.5;
  EXPECT_LT(models::estimate_flops("mobilenetv2", narrow), mobile);
  EXPECT_LT(models::estimate_flops("resnet18", kGray28), resnet);
}

TEST(ModelZoo, UnknownNameListsTheKnownOnes) {
  try {
    models::make_model("alexnet", kGray28);
    FAIL();
  } catch (const packtrain::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("alexnet"), std::string::npos);
    for (const auto& name : models::model_names()) EXPECT_NE(what.find(name), std::string::npos) << name;
  }
  EXPECT_THROW(models::estimate_flops("alexnet", kGray28), packtrain::Error);
}

TEST(ModelZoo, BadOptionsAreErrors) {
  EXPECT_THROW(models::make_model("lenet5", {.channels = 1, .height = 8, .width = 8, .classes = 10}), packtrain::Error);
  EXPECT_THROW(models::make_model("mlp", {.channels = 1, .height = 28, .width = 28, .classes = 1}), packtrain::Error);
  EXPECT_THROW(models::make_model("mobilenetv2", {.width_multiplier = 0}), packtrain::Error);
  EXPECT_THROW(models::make_model("mlp", {.channels = 0}), packtrain::Error);
}

TEST(ModelZoo, SameSeedSameWeightsWhateverTheGlobalGenerator) {
  for (const auto& name : models::model_names()) {
    auto o = kColor32;
    o.width_multiplier = 0.25;
    o.seed = 17;
    torch::manual_seed(5);
    const auto a = models::make_model(name, o);
    torch::manual_seed(6);  // jobs share the global generator: it must not matter
    (void)torch::rand({3});
    const auto b = models::make_model(name, o);
    o.seed = 18;
    const auto c = models::make_model(name, o);
    const auto pa = a->parameters(), pb = b->parameters(), pc = c->parameters();
    bool all_equal = true, any_differs = false;
    for (std::size_t i = 0; i < pa.size(); ++i) {
      all_equal &= pa[i].equal(pb[i]);
      any_differs |= !pa[i].equal(pc[i]);
    }
    EXPECT_TRUE(all_equal) << name;
    EXPECT_TRUE(any_differs) << name;
  }
}

// Every model, on both input shapes, takes a few SGD steps on a tiny batch:
// the logits have the right shape, the loss is finite and falls.
class EveryModel : public ::testing::TestWithParam<std::tuple<std::string, bool>> {};

TEST_P(EveryModel, TrainsAFewStepsOnATinyBatch) {
  const auto& [name, color] = GetParam();
  auto o = color ? kColor32 : kGray28;
  o.classes = 7;
  o.width_multiplier = 0.25;
  auto model = models::make_model(name, o);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(1);
  const auto images = torch::randn({4, o.channels, o.height, o.width}, generator);
  const auto labels = torch::tensor({0, 3, 6, 2}, torch::kInt64);
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.02).momentum(0.9));
  model->train();
  double first = 0, last = 0;
  constexpr int kSteps = 6;
  for (int step = 0; step < kSteps; ++step) {
    optimizer.zero_grad();
    const auto logits = model->forward(images);
    ASSERT_EQ(logits.sizes(), (std::vector<std::int64_t>{4, 7}));
    const auto loss = torch::nn::functional::cross_entropy(logits, labels);
    ASSERT_TRUE(std::isfinite(loss.item<double>()));
    loss.backward();
    optimizer.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  EXPECT_LT(last, first) << name << (color ? " 3x32x32" : " 1x28x28");
  // Eval mode with a batch of one works (batch norm uses its running statistics).
  model->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(model->forward(images.narrow(0, 0, 1)).size(1), 7);
}

INSTANTIATE_TEST_SUITE_P(Zoo, EveryModel,
                         ::testing::Combine(::testing::Values("mlp", "lenet5", "vgg11", "resnet18", "mobilenetv2"),
                                            ::testing::Bool()),
                         [](const auto& param_info) {
                           return std::get<0>(param_info.param) + (std::get<1>(param_info.param) ? "_3x32x32" : "_1x28x28");
                         });

TEST(ModelZoo, Vgg11TrainsOnABatchOfOneAt28) {
  // The last batch of an epoch can hold one sample: batch norm then needs
  // more than one value per channel, which the skipped small pools keep.
  auto model = models::make_model("vgg11", kGray28);
  model->train();
  EXPECT_NO_THROW(model->forward(torch::randn({1, 1, 28, 28})));
}

TEST(ModelZoo, HolderTypesWorkLikeTheFactory) {
  models::LeNet5 net(kGray28);
  EXPECT_EQ(models::parameter_count(*net), count("lenet5", kGray28));
  EXPECT_EQ(net->forward(torch::zeros({2, 1, 28, 28})).sizes(), (std::vector<std::int64_t>{2, 10}));
  EXPECT_EQ(net->options().classes, 10);
}

}  // namespace
