// make_model() and what goes with it: names, FLOP estimates, initialization.
#include <packtrain/models/models.hpp>
#include <packtrain/models/scripted.hpp>
#include <packtrain/models/zoo.hpp>
#include <packtrain/scheduler/error.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>

namespace packtrain::models {
namespace {

using Factory = std::function<std::shared_ptr<Model>(const ModelOptions&)>;

const std::vector<std::pair<std::string, Factory>>& factories() {
  static const std::vector<std::pair<std::string, Factory>> all = {
      {"mlp", [](const ModelOptions& o) { return Mlp(o).ptr(); }},
      {"lenet5", [](const ModelOptions& o) { return LeNet5(o).ptr(); }},
      {"vgg11", [](const ModelOptions& o) { return Vgg11(o).ptr(); }},
      {"resnet18", [](const ModelOptions& o) { return ResNet18(o).ptr(); }},
      {"mobilenetv2", [](const ModelOptions& o) { return MobileNetV2(o).ptr(); }},
  };
  return all;
}

// A zoo name's factory (other names are files: scripted.cpp says which are unknown).
const Factory& factory(const std::string& name) {
  for (const auto& [known, make] : factories())
    if (known == name) return make;
  PACKTRAIN_CHECK(false, "factory: '" + name + "' is not a zoo model");
}

void check_options(const ModelOptions& o) {
  if (o.channels < 1 || o.height < 1 || o.width < 1)
    throw Error("model input must have positive channels, height and width, not " + std::to_string(o.channels) + "x" +
                std::to_string(o.height) + "x" + std::to_string(o.width));
  if (o.classes < 2) throw Error("a classifier needs at least 2 classes, not " + std::to_string(o.classes));
  if (!(o.width_multiplier > 0) || !std::isfinite(o.width_multiplier))
    throw Error("width multiplier must be above 0, not " + std::to_string(o.width_multiplier));
}

}  // namespace

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& entry : factories()) out.push_back(entry.first);
    return out;
  }();
  return names;
}

std::shared_ptr<Model> make_model(const std::string& name, const ModelOptions& options) {
  if (is_model_file(name)) {
    check_options(options);
    return detail::make_scripted(name, options);  // the file's weights, not the seed's
  }
  const auto& make = factory(name);
  check_options(options);
  auto model = make(options);
  initialize_weights(*model, options.seed);
  return model;
}

double estimate_flops(const std::string& name, const ModelOptions& options) {
  if (is_model_file(name)) {
    check_options(options);
    return detail::scripted_flops(name, options);  // remembered per file and input
  }
  const auto& make = factory(name);
  check_options(options);
  using Key = std::tuple<std::string, std::int64_t, std::int64_t, std::int64_t, std::int64_t, double>;
  static std::mutex mutex;
  static std::map<Key, double> known;  // guarded by mutex
  const Key key{name, options.channels, options.height, options.width, options.classes, options.width_multiplier};
  {
    std::lock_guard lock(mutex);
    if (auto it = known.find(key); it != known.end()) return it->second;
  }
  // Counted while the layers are built; building without the weights' init is enough.
  const double flops = make(options)->flops();
  std::lock_guard lock(mutex);
  known.emplace(key, flops);
  return flops;
}

void initialize_weights(torch::nn::Module& model, std::uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  // named_modules() lists modules in registration order: the same draws every time.
  for (const auto& item : model.named_modules()) {
    auto& module = *item.value();
    if (auto* conv = module.as<torch::nn::Conv2d>()) {
      // Kaiming normal, fan out, for ReLU (as torchvision's ResNet, VGG and MobileNetV2).
      const auto& w = conv->weight;
      const double fan_out = static_cast<double>(w.size(0) * w.size(2) * w.size(3));
      w.normal_(0.0, std::sqrt(2.0 / fan_out), generator);
      if (conv->bias.defined()) conv->bias.zero_();
    } else if (auto* linear = module.as<torch::nn::Linear>()) {
      // LibTorch's default: uniform in +-1/sqrt(fan in), weight and bias.
      const double bound = 1.0 / std::sqrt(static_cast<double>(linear->weight.size(1)));
      linear->weight.uniform_(-bound, bound, generator);
      if (linear->bias.defined()) linear->bias.uniform_(-bound, bound, generator);
    } else if (auto* bn = module.as<torch::nn::BatchNorm2d>()) {
      bn->weight.fill_(1.0);
      bn->bias.zero_();
      bn->running_mean.zero_();
      bn->running_var.fill_(1.0);
      bn->num_batches_tracked.zero_();
    }
  }
}

std::int64_t parameter_count(const torch::nn::Module& model) {
  std::int64_t count = 0;
  for (const auto& p : model.parameters())
    if (p.requires_grad()) count += p.numel();
  return count;
}

}  // namespace packtrain::models
