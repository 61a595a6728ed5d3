#include <packtrain/scheduler/error.hpp>
#include <packtrain/train/checkpoint.hpp>

#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>
#include <regex>
#include <string>
#include <vector>

namespace packtrain::train {

std::filesystem::path checkpoint_path(const std::filesystem::path& dir, int epoch) {
  char name[32];
  std::snprintf(name, sizeof name, "epoch-%04d.pt", epoch);
  return dir / name;
}

std::filesystem::path preempt_checkpoint_path(const std::filesystem::path& dir) { return dir / "preempted.pt"; }

void save_checkpoint(const std::filesystem::path& path, const torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, int epoch) {
  save_checkpoint(path, model, optimizer, CheckpointPosition{.epoch = epoch});
}

void save_checkpoint(const std::filesystem::path& path, const torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, const CheckpointPosition& at) {
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) throw Error("cannot create checkpoint folder " + path.parent_path().string() + ": " + ec.message());
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive;
  model.save(model_archive);
  archive.write("model", model_archive);
  if (optimizer != nullptr) {
    torch::serialize::OutputArchive optimizer_archive;
    optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
  }
  archive.write("epoch", torch::tensor(static_cast<std::int64_t>(at.epoch)));
  if (at.batch > 0) {
    // Mid-epoch: the loss sum keeps all its bits (float64).
    archive.write("batch", torch::tensor(at.batch));
    archive.write("loss_sum", torch::tensor(at.loss_sum, torch::kFloat64));
    archive.write("samples", torch::tensor(at.samples));
  }
  const auto tmp = path.string() + ".tmp" + std::to_string(getpid());
  try {
    archive.save_to(tmp);
  } catch (const c10::Error& e) {
    std::filesystem::remove(tmp, ec);
    throw Error("cannot write checkpoint " + path.string() + ": " + e.what_without_backtrace());
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw Error("cannot write checkpoint " + path.string() + ": " + ec.message());
  }
}

int load_checkpoint(const std::filesystem::path& path, torch::nn::Module& model, torch::optim::Optimizer* optimizer) {
  return load_checkpoint_position(path, model, optimizer).epoch;
}

CheckpointPosition load_checkpoint_position(const std::filesystem::path& path, torch::nn::Module& model,
                                            torch::optim::Optimizer* optimizer) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error("checkpoint " + path.string() + " not found");
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path.string());
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    // Module::load replaces each tensor wholesale (set_), so a layer of another
    // shape would load silently: compare the shapes.
    std::vector<std::vector<std::int64_t>> shapes;
    for (const auto& t : model.parameters()) shapes.push_back(t.sizes().vec());
    for (const auto& t : model.buffers()) shapes.push_back(t.sizes().vec());
    model.load(model_archive);
    std::size_t i = 0;
    for (const auto& list : {model.parameters(), model.buffers()})
      for (const auto& t : list)
        if (t.sizes().vec() != shapes[i++])
          throw Error("checkpoint " + path.string() + " holds tensors of other shapes than this model's");
    if (optimizer != nullptr) {
      torch::serialize::InputArchive optimizer_archive;
      if (!archive.try_read("optimizer", optimizer_archive))
        throw Error("checkpoint " + path.string() + " holds no optimizer state");
      optimizer->load(optimizer_archive);
    }
    // A fresh tensor for each read: read() into a defined tensor set_()s its
    // storage, keeping the old dtype.
    const auto read = [&archive](const char* key) {
      torch::Tensor value;
      archive.read(key, value);
      return value;
    };
    CheckpointPosition at;
    at.epoch = static_cast<int>(read("epoch").item<std::int64_t>());
    torch::Tensor batch;
    if (archive.try_read("batch", batch)) {
      at.batch = batch.item<std::int64_t>();
      at.loss_sum = read("loss_sum").item<double>();
      at.samples = read("samples").item<std::int64_t>();
    }
    return at;
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    what = what.substr(0, what.find('\n'));
    throw Error("checkpoint " + path.string() + " cannot be loaded into this model: " + what);
  }
}

std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return std::nullopt;
  static const std::regex kName(R"(epoch-(\d+)\.pt)");
  std::optional<std::filesystem::path> best;
  long best_epoch = -1;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::smatch match;
    const auto name = entry.path().filename().string();
    if (!std::regex_match(name, match, kName)) continue;
    const long epoch = std::stol(match[1].str());
    if (epoch > best_epoch) {
      best_epoch = epoch;
      best = entry.path();
    }
  }
  return best;
}

}  // namespace packtrain::train
