#include <packtrain/data/dataset.hpp>
#include <packtrain/data/readers.hpp>
#include <packtrain/scheduler/error.hpp>

#include <torch/torch.h>

#include <future>
#include <map>
#include <mutex>
#include <optional>

namespace packtrain::data {
namespace {

constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

bool has_file(const std::filesystem::path& folder, const std::string& name) {
  std::error_code ec;
  return std::filesystem::is_regular_file(folder / name, ec);
}

DatasetSplit read_folder(const std::filesystem::path& folder, const std::string& name) {
  std::error_code ec;
  if (!std::filesystem::is_directory(folder, ec))
    throw Error("dataset '" + folder.string() +
                "' not found: expected fashion-mnist, mnist-digits or a folder of IDX or CIFAR-10 files");
  if (has_file(folder, "train-images-idx3-ubyte") || has_file(folder, "train-images-idx3-ubyte.gz"))
    return read_idx_folder(folder, name);
  if (has_file(folder, "data_batch_1.bin") || has_file(folder, "test_batch.bin")) return read_cifar_folder(folder, name);
  if (std::filesystem::is_directory(folder / "cifar-10-batches-bin", ec))
    return read_cifar_folder(folder / "cifar-10-batches-bin", name);
  throw Error("dataset folder " + folder.string() +
              " holds neither IDX files (train-images-idx3-ubyte[.gz], ...) nor CIFAR-10 batches (data_batch_1.bin, ...)");
}

}  // namespace

void normalize_with_train_statistics(Dataset& train, Dataset& test) {
  // Per channel, over samples and pixels, on views (no copy of the images);
  // LibTorch accumulates float reductions in double on the CPU.
  const auto channels = train.images.size(1);
  auto m = torch::empty({1, channels, 1, 1}, torch::kFloat32);
  auto s = torch::empty({1, channels, 1, 1}, torch::kFloat32);
  for (std::int64_t c = 0; c < channels; ++c) {
    const auto [sd, mean] = torch::std_mean(train.images.select(1, c), /*unbiased=*/false);
    const float deviation = sd.item<float>();
    m.data_ptr<float>()[c] = mean.item<float>();
    s.data_ptr<float>()[c] = deviation > 0 ? deviation : 1.0f;  // a constant channel stays finite
  }
  train.images.sub_(m).div_(s);
  test.images.sub_(m).div_(s);
}

DatasetSplit load_dataset(const std::string& spec) {
  DatasetSplit split;
  if (spec == "fashion-mnist") {
    if (!has_file(kFashionMnistDir, "train-images-idx3-ubyte.gz") && !has_file(kFashionMnistDir, "train-images-idx3-ubyte"))
      throw Error(std::string("fashion-mnist not found in ") + kFashionMnistDir +
                  ": install the Debian package dataset-fashion-mnist (scripts/setup.sh does)");
    split = read_idx_folder(kFashionMnistDir, "fashion-mnist");
  } else if (spec == "mnist-digits") {
    split = read_mnist_digits(mnist_digits_folder());
  } else if (spec.empty()) {
    throw Error("empty dataset name: expected fashion-mnist, mnist-digits or a folder");
  } else {
    const std::filesystem::path folder(spec);
    auto name = folder.filename().string();
    if (name.empty()) name = folder.parent_path().filename().string();  // "dir/" names "dir"
    split = read_folder(folder, name);
  }
  if (split.train.size() == 0 || split.test.size() == 0) throw Error("dataset " + spec + " has an empty train or test part");
  normalize_with_train_statistics(split.train, split.test);
  return split;
}

std::shared_ptr<const DatasetSplit> shared_dataset(const std::string& spec) {
  using Loaded = std::shared_future<std::shared_ptr<const DatasetSplit>>;
  static std::mutex mutex;
  static std::map<std::string, Loaded> cache;  // guarded by mutex

  // One key per dataset: "data/./x" and "data/x" name the same folder.
  std::string key = spec;
  if (spec != "fashion-mnist" && spec != "mnist-digits") {
    std::error_code ec;
    auto canonical = std::filesystem::weakly_canonical(spec, ec);
    if (!ec) key = canonical.string();
  }

  std::optional<std::promise<std::shared_ptr<const DatasetSplit>>> promise;  // set: this caller loads
  Loaded loaded;
  {
    std::lock_guard lock(mutex);
    if (auto it = cache.find(key); it != cache.end()) {
      loaded = it->second;
    } else {
      promise.emplace();
      loaded = promise->get_future().share();
      cache.emplace(key, loaded);
    }
  }
  // Loading takes seconds: done outside the lock, so other datasets are not held up.
  if (promise) {
    try {
      promise->set_value(std::make_shared<const DatasetSplit>(load_dataset(spec)));
    } catch (...) {
      {
        std::lock_guard lock(mutex);
        cache.erase(key);  // the next call tries again
      }
      promise->set_exception(std::current_exception());
    }
  }
  return loaded.get();
}

at::Tensor all_indices(const Dataset& part) { return torch::arange(part.size(), torch::kInt64); }

}  // namespace packtrain::data
