#include <packtrain/lth/mask.hpp>

#include <packtrain/models/scripted.hpp>
#include <packtrain/scheduler/error.hpp>

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <sstream>

namespace packtrain::lth {
namespace {

void check_matches(const Mask& mask, const std::vector<std::pair<std::string, at::Tensor>>& weights) {
  bool same = mask.names.size() == weights.size() && mask.keep.size() == weights.size();
  for (std::size_t i = 0; same && i < weights.size(); ++i)
    same = mask.names[i] == weights[i].first && mask.keep[i].sizes() == weights[i].second.sizes();
  if (!same) throw Error("the mask was made for another model (its layers or shapes differ)");
}

// Removes the `count` lowest `scores` (stable: lower index first among equals) from an all-ones flat mask.
at::Tensor keep_all_but_lowest(const at::Tensor& scores, std::int64_t count) {
  auto keep = torch::ones({scores.numel()}, torch::kFloat32);
  if (count <= 0) return keep;
  const auto order = std::get<1>(torch::sort(scores, /*stable=*/true, /*dim=*/0, /*descending=*/false));
  keep.index_fill_(0, order.slice(0, 0, count), 0.0);
  return keep;
}

// Magnitudes, with the weights a previous mask removed below every magnitude.
at::Tensor scores_of(const at::Tensor& weight, const at::Tensor* previous_keep) {
  auto s = weight.detach().abs().flatten().to(torch::kFloat64);
  if (previous_keep != nullptr) s.masked_fill_(previous_keep->flatten() == 0, -1.0);
  return s;
}

// Zeroes the removed entries of weight.grad() in place: a post hook of the
// node that accumulates the weight's gradient, so it runs right after
// backward() has added into .grad (one multiply, no allocation).
class MaskAccumulatedGradient : public torch::autograd::FunctionPostHook {
 public:
  MaskAccumulatedGradient(at::Tensor weight, at::Tensor keep) : weight_(std::move(weight)), keep_(std::move(keep)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    const auto& grad = weight_.grad();
    if (grad.defined()) grad.mul_(keep_);
    return outputs;
  }

 private:
  at::Tensor weight_, keep_;
};

}  // namespace

// Why two hooks: masking .grad after accumulation (the post hook) is the
// cheap way; masking the incoming gradient in a tensor hook costs a new
// tensor every step (measured in bench_lth: +10% of a step against +3.5%),
// and writing into that gradient in place could change another tensor's
// when autograd hands one tensor to two inputs. But the accumulating node is
// autograd's, not the weight's: loading a checkpoint into the model drops it
// and the next forward makes a new one. So a tensor hook, which autograd
// keeps with the weight, checks on every backward that the post hook is on
// the current node; when it is not, it moves it there and masks this one
// gradient itself (the engine has already decided which post hooks to run).
class GradientMask {
 public:
  GradientMask(at::Tensor weight, at::Tensor keep) : weight_(std::move(weight)), keep_(std::move(keep)) {
    tensor_hook_ = weight_.register_hook([this](const at::Tensor& grad) { return on_gradient(grad); });
  }
  ~GradientMask() {
    weight_.remove_hook(tensor_hook_);
    if (node_) node_->del_post_hook(post_hook_);
  }
  GradientMask(const GradientMask&) = delete;
  GradientMask& operator=(const GradientMask&) = delete;

 private:
  // An undefined result leaves the gradient as it is.
  at::Tensor on_gradient(const at::Tensor& grad) {
    auto node = torch::autograd::impl::try_get_grad_accumulator(weight_);
    if (node && node == node_) return {};
    if (node_) node_->del_post_hook(post_hook_);
    node_ = std::move(node);
    if (node_) post_hook_ = node_->add_post_hook(std::make_unique<MaskAccumulatedGradient>(weight_, keep_));
    return grad * keep_;
  }

  at::Tensor weight_, keep_;
  unsigned tensor_hook_ = 0;
  std::shared_ptr<torch::autograd::Node> node_;  // where the post hook is
  std::uintptr_t post_hook_ = 0;
};

std::vector<std::pair<std::string, at::Tensor>> prunable_weights(torch::nn::Module& model) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  if (dynamic_cast<models::ScriptedModel*>(&model)) {
    // A TorchScript module's layers are not LibTorch's: its weights by name.
    for (const auto& p : model.named_parameters()) {
      const auto& name = p.key();
      const bool weight = name == "weight" || (name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0);
      if (weight && p.value().dim() >= 2 && p.value().requires_grad()) out.emplace_back(name, p.value());
    }
    return out;
  }
  for (const auto& item : model.named_modules("", /*include_self=*/true)) {
    auto& m = *item.value();
    at::Tensor w;
    if (auto* l = m.as<torch::nn::Linear>()) w = l->weight;
    else if (auto* c1 = m.as<torch::nn::Conv1d>()) w = c1->weight;
    else if (auto* c2 = m.as<torch::nn::Conv2d>()) w = c2->weight;
    else if (auto* c3 = m.as<torch::nn::Conv3d>()) w = c3->weight;
    if (!w.defined()) continue;
    out.emplace_back(item.key().empty() ? std::string("weight") : item.key() + ".weight", w);
  }
  return out;
}

std::int64_t Mask::total() const {
  std::int64_t n = 0;
  for (const auto& k : keep) n += k.numel();
  return n;
}

std::int64_t Mask::kept() const {
  std::int64_t n = 0;
  for (const auto& k : keep) n += static_cast<std::int64_t>(k.sum().item<double>());
  return n;
}

double Mask::sparsity() const {
  const auto n = total();
  return n > 0 ? static_cast<double>(n - kept()) / static_cast<double>(n) : 0.0;
}

void Mask::apply(torch::nn::Module& model) const {
  const auto weights = prunable_weights(model);
  check_matches(*this, weights);
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < weights.size(); ++i) weights[i].second.mul_(keep[i]);
}

void Mask::save(const std::filesystem::path& path) const {
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) throw Error("cannot create folder " + path.parent_path().string() + ": " + ec.message());
  torch::serialize::OutputArchive archive;
  std::string joined;
  for (std::size_t i = 0; i < names.size(); ++i) {
    joined += names[i] + "\n";
    archive.write("keep" + std::to_string(i), keep[i]);
  }
  archive.write("names", c10::IValue(joined));
  const auto tmp = path.string() + ".tmp" + std::to_string(getpid());
  try {
    archive.save_to(tmp);
  } catch (const c10::Error& e) {
    std::filesystem::remove(tmp, ec);
    throw Error("cannot write mask " + path.string() + ": " + e.what_without_backtrace());
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw Error("cannot write mask " + path.string() + ": " + ec.message());
}

Mask Mask::load(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error("mask " + path.string() + " not found");
  Mask mask;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path.string());
    c10::IValue names;
    archive.read("names", names);
    std::istringstream in(names.toStringRef());
    for (std::string line; std::getline(in, line);) {
      at::Tensor k;
      archive.read("keep" + std::to_string(mask.names.size()), k);
      mask.names.push_back(line);
      mask.keep.push_back(k.contiguous());
    }
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    throw Error("mask " + path.string() + " cannot be read: " + what.substr(0, what.find('\n')));
  }
  return mask;
}

Mask magnitude_mask(torch::nn::Module& model, double fraction, Scope scope, const Mask* previous) {
  if (!(fraction >= 0.0 && fraction <= 1.0))
    throw Error("a pruning fraction must be in [0, 1] (got " + std::to_string(fraction) + ")");
  const auto weights = prunable_weights(model);
  if (weights.empty()) throw Error("the model has no convolution or linear weights to prune");
  if (previous != nullptr) check_matches(*previous, weights);
  torch::NoGradGuard no_grad;
  Mask mask;
  std::vector<at::Tensor> scores;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    mask.names.push_back(weights[i].first);
    scores.push_back(scores_of(weights[i].second, previous ? &previous->keep[i] : nullptr));
  }
  const auto removed_before = [&](std::size_t i) -> std::int64_t {
    return previous ? previous->keep[i].numel() - static_cast<std::int64_t>(previous->keep[i].sum().item<double>()) : 0;
  };
  const auto to_remove = [fraction](std::int64_t removed, std::int64_t count) {
    return removed + static_cast<std::int64_t>(std::llround(fraction * static_cast<double>(count - removed)));
  };
  if (scope == Scope::per_layer) {
    for (std::size_t i = 0; i < weights.size(); ++i) {
      const auto& w = weights[i].second;
      mask.keep.push_back(keep_all_but_lowest(scores[i], to_remove(removed_before(i), w.numel())).view(w.sizes()).contiguous());
    }
  } else {
    std::int64_t removed = 0;
    for (std::size_t i = 0; i < weights.size(); ++i) removed += removed_before(i);
    const auto all = torch::cat(scores);
    const auto keep = keep_all_but_lowest(all, to_remove(removed, all.numel()));
    std::int64_t at = 0;
    for (const auto& [name, w] : weights) {
      mask.keep.push_back(keep.slice(0, at, at + w.numel()).view(w.sizes()).contiguous().clone());
      at += w.numel();
    }
  }
  return mask;
}

MaskedTraining::MaskedTraining(Mask mask, torch::nn::Module& model, torch::optim::Optimizer* optimizer)
    : optimizer_(optimizer) {
  const auto weights = prunable_weights(model);
  check_matches(mask, weights);
  // The zeros stay zeros only because these optimizers update elementwise (see the header).
  if (optimizer_ != nullptr && dynamic_cast<torch::optim::SGD*>(optimizer_) == nullptr &&
      dynamic_cast<torch::optim::Adam*>(optimizer_) == nullptr && dynamic_cast<torch::optim::AdamW*>(optimizer_) == nullptr)
    throw Error("masked training supports the SGD, Adam and AdamW optimizers only");
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const auto& [name, w] = weights[i];
    auto keep = mask.keep[i].to(w.device(), w.scalar_type()).contiguous();
    if (!(keep == 0).any().item<bool>()) continue;  // kept whole: nothing to mask
    if (!w.requires_grad()) throw Error("masked training needs weights that require gradients (" + name + ")");
    weights_.push_back(w);
    keep_.push_back(std::move(keep));
  }
  reset();
  for (std::size_t i = 0; i < weights_.size(); ++i) hooks_.push_back(std::make_unique<GradientMask>(weights_[i], keep_[i]));
}

MaskedTraining::~MaskedTraining() = default;

void MaskedTraining::reset() {
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < weights_.size(); ++i) weights_[i].mul_(keep_[i]);
  if (optimizer_ == nullptr) return;
  // The optimizer keys its per-parameter state by the parameter's TensorImpl, as torch::optim does.
  auto& state = optimizer_->state();
  for (std::size_t i = 0; i < weights_.size(); ++i) {
    const auto it = state.find(c10::guts::to_string(weights_[i].unsafeGetTensorImpl()));
    if (it == state.end()) continue;
    std::vector<at::Tensor> moments;
    if (auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(it->second.get()))
      moments = {sgd->momentum_buffer()};
    else if (auto* adam = dynamic_cast<torch::optim::AdamParamState*>(it->second.get()))
      moments = {adam->exp_avg(), adam->exp_avg_sq(), adam->max_exp_avg_sq()};
    else if (auto* adamw = dynamic_cast<torch::optim::AdamWParamState*>(it->second.get()))
      moments = {adamw->exp_avg(), adamw->exp_avg_sq(), adamw->max_exp_avg_sq()};
    for (auto& t : moments)
      if (t.defined() && t.sizes() == weights_[i].sizes()) t.mul_(keep_[i]);
  }
}

}  // namespace packtrain::lth
