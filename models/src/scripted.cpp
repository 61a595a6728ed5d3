// TorchScript models: reading the file once, checking what its forward
// takes and returns, counting its FLOPs, and the wrapper that trains it.
#include <packtrain/models/scripted.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/job.hpp>

#include <ATen/record_function.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>

namespace packtrain::models {

// The module's tensors, registered by its own names on wrapper modules of
// the same tree: the wrapper's parameters() are the module's tensors.
namespace {

struct ScriptedPart : torch::nn::Module {};

// A tensor two submodules share (tied weights) is registered once, under
// its first name: the optimizer steps it once, as PyTorch's does.
void mirror(torch::nn::Module& into, const torch::jit::Module& from, std::set<const void*>& seen) {
  for (const auto& p : from.named_parameters(/*recurse=*/false))
    if (seen.insert(p.value.unsafeGetTensorImpl()).second) into.register_parameter(p.name, p.value, p.value.requires_grad());
  for (const auto& b : from.named_buffers(/*recurse=*/false))
    if (seen.insert(b.value.unsafeGetTensorImpl()).second) into.register_buffer(b.name, b.value);
  for (const auto& child : from.named_children()) {
    auto part = std::make_shared<ScriptedPart>();
    mirror(*part, child.value, seen);
    into.register_module(child.name, part);
  }
}

// The last line of a LibTorch error that says something: TorchScript's own
// errors start with "The following operation failed..." and a traceback.
std::string gist(const std::exception& e) {
  const auto* c10 = dynamic_cast<const c10::Error*>(&e);
  std::istringstream text(c10 ? c10->what_without_backtrace() : e.what());
  std::string line, last;
  while (std::getline(text, line)) {
    const auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos) continue;
    line = line.substr(start);
    if (line.rfind("Exception raised from", 0) == 0 || line.rfind("frame #", 0) == 0) break;
    last = line;
  }
  return last.empty() ? std::string("unknown error") : last;
}

std::string hex64(std::uint64_t v) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(v));
  return text;
}

// Forward FLOPs counted from the operators a forward pass calls: matrix
// products and convolutions (a multiply-add is 2), as the zoo counts them.
thread_local double counted_flops = 0;

double numel_of(c10::IntArrayRef sizes) {
  double n = 1;
  for (const auto s : sizes) n *= static_cast<double>(s);
  return n;
}

std::unique_ptr<at::ObserverContext> count_operator(const at::RecordFunction& fn) {
  const std::string name = fn.name();
  const auto in = fn.inputs();
  const auto sizes = [&](std::size_t i) -> std::vector<std::int64_t> {
    if (i >= in.size() || !in[i].isTensor()) return {};
    return in[i].toTensor().sizes().vec();
  };
  if (name == "aten::addmm" || name == "aten::mm") {
    const auto a = sizes(name == "aten::addmm" ? 1 : 0), b = sizes(name == "aten::addmm" ? 2 : 1);
    if (a.size() == 2 && b.size() == 2) counted_flops += 2.0 * static_cast<double>(a[0] * a[1]) * static_cast<double>(b[1]);
  } else if (name == "aten::bmm") {
    const auto a = sizes(0), b = sizes(1);
    if (a.size() == 3 && b.size() == 3) counted_flops += 2.0 * static_cast<double>(a[0] * a[1] * a[2]) * static_cast<double>(b[2]);
  } else if (name == "aten::convolution" && in.size() >= 9) {
    // (input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
    const auto x = sizes(0), w = sizes(1);
    if (x.size() < 3 || w.size() != x.size()) return nullptr;
    const auto stride = in[3].toIntVector(), padding = in[4].toIntVector(), dilation = in[5].toIntVector();
    const bool transposed = in[6].toBool();
    // Each output element of a convolution takes weight[1] x kernel multiply-adds.
    const double per_output = numel_of(c10::IntArrayRef(w).slice(1));
    if (transposed) {
      counted_flops += 2.0 * numel_of(x) * per_output;  // each input element spreads over the kernel
      return nullptr;
    }
    double outputs = static_cast<double>(x[0] * w[0]);
    for (std::size_t d = 2; d < x.size(); ++d) {
      const auto k = d - 2;
      const auto pick = [k](const std::vector<std::int64_t>& v) { return v.size() == 1 ? v[0] : v.at(k); };
      const auto out = (x[d] + 2 * pick(padding) - pick(dilation) * (w[d] - 1) - 1) / pick(stride) + 1;
      outputs *= static_cast<double>(std::max<std::int64_t>(out, 0));
    }
    counted_flops += 2.0 * outputs * per_output;
  }
  return nullptr;
}

// What a forward pass of a batch of two images shows: the output, and the
// FLOPs per image.
struct Probe {
  c10::IValue output;
  double flops = 0;
};

Probe probe(torch::jit::Module& module, const ModelOptions& o) {
  torch::NoGradGuard no_grad;
  const bool was_training = module.is_training();
  module.eval();
  counted_flops = 0;
  const auto handle = at::addThreadLocalCallback(at::RecordFunctionCallback(count_operator)
                                                     .needsInputs(true)
                                                     .scopes({at::RecordScope::FUNCTION}));
  Probe p;
  try {
    p.output = module.forward({torch::zeros({2, o.channels, o.height, o.width})});
  } catch (...) {
    at::removeCallback(handle);
    module.train(was_training);
    throw;
  }
  at::removeCallback(handle);
  module.train(was_training);
  p.flops = counted_flops / 2.0;
  return p;
}

bool has_random_operators(torch::jit::Module& module) {
  auto graph = module.get_method("forward").graph()->copy();
  torch::jit::Inline(*graph);
  bool found = false;
  std::function<void(torch::jit::Block*)> walk = [&](torch::jit::Block* block) {
    for (auto* node : block->nodes()) {
      const std::string kind = node->kind().toQualString();
      for (const char* random : {"dropout", "rand", "rrelu", "bernoulli", "normal", "uniform", "exponential",
                                 "poisson", "binomial", "multinomial", "geometric", "cauchy"})
        if (kind.rfind("aten::", 0) == 0 && kind.find(random) != std::string::npos) found = true;
      if (node->isNondeterministic()) found = true;
      for (auto* inner : node->blocks()) walk(inner);
    }
  };
  walk(graph->block());
  return found;
}

}  // namespace

struct ScriptedModel::Impl {
  std::string path;
  torch::jit::Module module;
  bool random = false;
};

namespace detail {

// A TorchScript file read once per process: its content's hash, the module
// as loaded (copied, never trained), and whether forward draws random numbers.
struct ScriptFile {
  std::string path;
  std::string hash;
  torch::jit::Module module;
  bool random = false;
  std::mutex mutex;                                                         // guards checked
  std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t>, double> checked;  // shape -> FLOPs
};

namespace {

std::shared_ptr<ScriptFile> read_script_file(const std::string& path) {
  const auto stem = std::filesystem::path(path).stem().string();
  const auto& zoo = model_names();
  if (std::find(zoo.begin(), zoo.end(), stem) != zoo.end())
    throw Error("model file " + path + " would be named " + stem + " in the results, as the zoo's " + stem +
                " is: rename the file");
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (path.find_first_of("./") == std::string::npos) {
      std::string list;
      for (const auto& known : model_names()) list += (list.empty() ? "" : ", ") + known;
      throw Error("unknown model '" + path + "' (known: " + list + "; or the path of a TorchScript file, e.g. net.pt)");
    }
    throw Error("model file " + path + " not found");
  }
  if (std::filesystem::is_directory(path, ec)) throw Error("model file " + path + " is a folder, not a TorchScript file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("model file " + path + " cannot be opened");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  auto file = std::make_shared<ScriptFile>();
  file->path = path;
  const std::string content = bytes.str();
  file->hash = hex64(stable_hash(content));
  try {
    std::istringstream stream(content);
    file->module = torch::jit::load(stream);
  } catch (const std::exception& e) {
    throw Error("model file " + path +
                " is not a TorchScript module (save one with torch.jit.script(model).save(path)): " + gist(e));
  }
  const auto forward = file->module.find_method("forward");
  if (!forward) throw Error("model file " + path + " has no forward method");
  const auto& schema = forward->function().getSchema();
  std::size_t needed = 0;
  for (std::size_t i = 1; i < schema.arguments().size(); ++i)
    if (!schema.arguments()[i].default_value()) ++needed;
  if (schema.arguments().size() < 2 || needed > 1 ||
      !schema.arguments()[1].type()->isSubtypeOf(*c10::TensorType::get()))
    throw Error("model file " + path + ": forward must take one tensor of images, but its signature is " +
                c10::toString(schema));
  if (schema.returns().size() != 1 || !schema.returns()[0].type()->isSubtypeOf(*c10::TensorType::get()))
    throw Error("model file " + path + ": forward must return one tensor of logits, but its signature is " +
                c10::toString(schema));
  const auto float32 = [&](const char* what, const std::string& name, const at::Tensor& t) {
    if (t.is_floating_point() && t.scalar_type() != torch::kFloat32)
      throw Error("model file " + path + ": " + what + " " + name + " is " + std::string(c10::toString(t.scalar_type())) +
                  "; packtrain trains float32 weights (net.float() before saving)");
  };
  std::int64_t trained = 0;
  for (const auto& t : file->module.named_parameters()) {
    float32("parameter", t.name, t.value);
    if (t.value.requires_grad()) trained += t.value.numel();
  }
  for (const auto& t : file->module.named_buffers()) float32("buffer", t.name, t.value);
  if (trained == 0) throw Error("model file " + path + " has no parameter to train");
  file->random = has_random_operators(file->module);
  return file;
}

}  // namespace

std::shared_ptr<ScriptFile> script_file(const std::string& path) {
  using Loaded = std::shared_future<std::shared_ptr<ScriptFile>>;
  static std::mutex mutex;
  static std::map<std::string, Loaded> files;  // guarded by mutex
  std::error_code ec;
  auto key = std::filesystem::weakly_canonical(path, ec).string();
  if (ec) key = path;
  std::optional<std::promise<std::shared_ptr<ScriptFile>>> promise;  // set: this caller reads it
  Loaded loaded;
  {
    std::lock_guard lock(mutex);
    if (auto it = files.find(key); it != files.end()) {
      loaded = it->second;
    } else {
      loaded = promise.emplace().get_future().share();
      files.emplace(key, loaded);
    }
  }
  if (promise) {
    try {
      promise->set_value(read_script_file(path));
    } catch (...) {
      {
        std::lock_guard lock(mutex);
        files.erase(key);  // the next call reads it again
      }
      promise->set_exception(std::current_exception());
    }
  }
  return loaded.get();
}

double file_flops(ScriptFile& file, const ModelOptions& o) {
  const auto key = std::make_tuple(o.channels, o.height, o.width, o.classes);
  std::lock_guard lock(file.mutex);  // one probe per shape; the module is not shared with any job
  if (auto it = file.checked.find(key); it != file.checked.end()) return it->second;
  const auto shape = std::to_string(o.channels) + "x" + std::to_string(o.height) + "x" + std::to_string(o.width);
  Probe p;
  try {
    // On a copy: a forward that changes the module's state would change every later job's start.
    auto copy = file.module.deepcopy();
    p = probe(copy, o);
  } catch (const std::exception& e) {
    throw Error("model file " + file.path + " cannot take " + shape + " images: " + gist(e));
  }
  if (!p.output.isTensor())
    throw Error("model file " + file.path + ": forward returned " + p.output.tagKind() + ", not a tensor of logits");
  const auto out = p.output.toTensor();
  if (out.dim() != 2 || out.size(0) != 2 || out.size(1) != o.classes)
    throw Error("model file " + file.path + ": forward must return [N, " + std::to_string(o.classes) +
                "] logits for N images of " + shape + ", but returned " + c10::str(out.sizes()) + " for N = 2");
  if (!out.is_floating_point())
    throw Error("model file " + file.path + ": forward returned " + std::string(c10::toString(out.scalar_type())) +
                " logits, not floating point");
  // A model of neither products nor convolutions: 2 FLOPs a parameter.
  double flops = p.flops;
  if (flops <= 0)
    for (const auto& param : file.module.parameters()) flops += 2.0 * static_cast<double>(param.numel());
  file.checked.emplace(key, flops);
  return flops;
}

// After deepcopy (under NoGradGuard): each parameter trains (or not) as the
// file's does. And LibTorch's deepcopy copies tensors that share a storage
// as one tensor: two views of one storage (as Python may save them) come
// back as one. Each tensor of the copy that differs from the file's becomes
// a copy of the file's own (views of one storage then no longer share it).
bool same_tensor(const at::Tensor& a, const at::Tensor& b) {
  return a.sizes().equals(b.sizes()) && a.strides().equals(b.strides()) && torch::equal(a, b);
}

void repair_copy(torch::jit::Module& copy, const torch::jit::Module& file) {
  torch::NoGradGuard no_grad;
  const auto mine_p = copy.named_parameters(/*recurse=*/false), theirs_p = file.named_parameters(/*recurse=*/false);
  auto tp = theirs_p.begin();
  for (const auto& p : mine_p) {
    const auto theirs = (*tp++).value;
    if (same_tensor(p.value, theirs)) {
      p.value.set_requires_grad(theirs.requires_grad());
      continue;
    }
    auto fresh = theirs.clone();
    fresh.set_requires_grad(theirs.requires_grad());
    copy.setattr(p.name, fresh);
  }
  const auto mine_b = copy.named_buffers(/*recurse=*/false), theirs_b = file.named_buffers(/*recurse=*/false);
  auto tb = theirs_b.begin();
  for (const auto& b : mine_b) {
    const auto theirs = (*tb++).value;
    if (!same_tensor(b.value, theirs)) copy.setattr(b.name, theirs.clone());
  }
  const auto mine_c = copy.named_children(), theirs_c = file.named_children();
  auto tc = theirs_c.begin();
  for (const auto& c : mine_c) {
    auto child = c.value;  // a handle of the copy's submodule
    repair_copy(child, (*tc++).value);
  }
}

double scripted_flops(const std::string& path, const ModelOptions& o) { return file_flops(*script_file(path), o); }

std::shared_ptr<Model> make_scripted(const std::string& path, const ModelOptions& o) {
  auto file = script_file(path);
  const double flops = file_flops(*file, o);
  auto impl = std::make_unique<ScriptedModel::Impl>();
  impl->path = path;
  {
    // Copied without autograd, or each copy would be a non-leaf clone of the
    // file's tensor; then each parameter trains (or not) as it did in Python.
    std::lock_guard lock(file->mutex);
    torch::NoGradGuard no_grad;
    impl->module = file->module.deepcopy();
    repair_copy(impl->module, file->module);
  }
  impl->random = file->random;
  return std::shared_ptr<Model>(new ScriptedModel(std::move(impl), o, flops));
}

}  // namespace detail

ScriptedModel::ScriptedModel(std::unique_ptr<Impl> impl, const ModelOptions& options, double flops)
    : Model(options), impl_(std::move(impl)) {
  flops_ = flops;
  std::set<const void*> seen;
  mirror(*this, impl_->module, seen);
  train(true);
}

ScriptedModel::~ScriptedModel() = default;

torch::Tensor ScriptedModel::forward(torch::Tensor images) {
  try {
    return impl_->module.forward({std::move(images)}).toTensor();
  } catch (const std::exception& e) {
    // TorchScript's own first line says only that an operation failed.
    throw Error("model file " + impl_->path + ": " + gist(e));
  }
}

void ScriptedModel::train(bool on) {
  Model::train(on);
  impl_->module.train(on);
}

bool ScriptedModel::draws_random() const { return impl_->random; }

const std::string& ScriptedModel::path() const { return impl_->path; }

bool is_model_file(const std::string& model) {
  const auto& names = model_names();
  return std::find(names.begin(), names.end(), model) == names.end();
}

std::string model_label(const std::string& model) {
  if (!is_model_file(model)) return model;
  return std::filesystem::path(model).stem().string();
}

std::string model_hash(const std::string& model) {
  if (!is_model_file(model)) return "";
  return detail::script_file(model)->hash;
}

namespace {
std::mutex files_mutex;
std::map<std::string, std::string> file_of_hash;  // guarded by files_mutex
}  // namespace

nlohmann::json model_spec(const std::string& model) {
  nlohmann::json spec = {{"model", model_label(model)}};
  if (!is_model_file(model)) return spec;
  const auto hash = model_hash(model);
  spec["model_hash"] = hash;
  std::lock_guard lock(files_mutex);
  file_of_hash.emplace(hash, model);
  return spec;
}

std::string model_of_spec(const nlohmann::json& spec) {
  const std::string label = spec.value("model", std::string());
  if (!spec.contains("model_hash")) return label;
  const std::string hash = spec.value("model_hash", std::string());
  std::lock_guard lock(files_mutex);
  if (auto it = file_of_hash.find(hash); it != file_of_hash.end()) return it->second;
  throw Error("model " + label + " is a TorchScript file (hash " + hash + ") that this run has not read");
}

}  // namespace packtrain::models
