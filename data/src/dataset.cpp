#include "bytes.hpp"

#include <packtrain/data/dataset.hpp>
#include <packtrain/data/readers.hpp>
#include <packtrain/scheduler/error.hpp>

#include <torch/torch.h>

#include <array>
#include <cmath>
#include <future>
#include <map>
#include <mutex>
#include <vector>
#include <optional>

namespace packtrain::data {
namespace {

constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

bool has_file(const std::filesystem::path& folder, const std::string& name) {
  std::error_code ec;
  return std::filesystem::is_regular_file(folder / name, ec);
}

// Images as bytes where the format has them (normalize_bytes takes them).
DatasetSplit read_path(const std::filesystem::path& path, const std::string& name) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) {
    if (path.extension() == ".npz") return detail::read_npy_dataset_bytes(path, name);
    throw Error("dataset " + path.string() +
                " is a file but not an .npz archive: expected fashion-mnist, mnist-digits, an .npz file or a folder");
  }
  if (!std::filesystem::is_directory(path, ec))
    throw Error("dataset '" + path.string() +
                "' not found: expected fashion-mnist, mnist-digits, an .npz file or a folder of IDX, CIFAR-10 or .npy "
                "files");
  if (has_file(path, "x_train.npy") || has_file(path, "y_train.npy") || has_file(path, "x_test.npy") ||
      has_file(path, "y_test.npy"))
    return detail::read_npy_dataset_bytes(path, name);
  if (has_file(path, "train-images-idx3-ubyte") || has_file(path, "train-images-idx3-ubyte.gz"))
    return detail::read_idx_folder_bytes(path, name);
  if (has_file(path, "data_batch_1.bin") || has_file(path, "test_batch.bin"))
    return detail::read_cifar_folder_bytes(path, name);
  if (std::filesystem::is_directory(path / "cifar-10-batches-bin", ec))
    return detail::read_cifar_folder_bytes(path / "cifar-10-batches-bin", name);
  throw Error("dataset folder " + path.string() +
              " holds neither IDX files (train-images-idx3-ubyte[.gz], ...) nor CIFAR-10 batches "
              "(data_batch_1.bin, ...) nor NumPy arrays (x_train.npy, y_train.npy, ...)");
}

}  // namespace

Normalization normalize_with_train_statistics(Dataset& train, Dataset& test) {
  // Per channel, over samples and pixels, on views (no copy of the images);
  // LibTorch accumulates float reductions in double on the CPU.
  const auto channels = train.images.size(1);
  auto m = torch::empty({1, channels, 1, 1}, torch::kFloat32);
  auto s = torch::empty({1, channels, 1, 1}, torch::kFloat32);
  Normalization applied;
  for (std::int64_t c = 0; c < channels; ++c) {
    const auto [sd, mean] = torch::std_mean(train.images.select(1, c), /*unbiased=*/false);
    const float deviation = sd.item<float>();
    m.data_ptr<float>()[c] = mean.item<float>();
    s.data_ptr<float>()[c] = deviation > 0 ? deviation : 1.0f;  // a constant channel stays finite
    applied.mean.push_back(m.data_ptr<float>()[c]);
    applied.stddev.push_back(s.data_ptr<float>()[c]);
  }
  train.images.sub_(m).div_(s);
  test.images.sub_(m).div_(s);
  return applied;
}

namespace detail {

at::Tensor unit_interval(const at::Tensor& bytes) { return bytes.to(torch::kFloat32).div_(255.0); }

Normalization normalize_bytes(Dataset& train, Dataset& test) {
  const auto channels = train.images.size(1);
  PACKTRAIN_CHECK(train.images.scalar_type() == torch::kUInt8 && test.images.scalar_type() == torch::kUInt8 &&
                      train.images.dim() == 4 && test.images.dim() == 4 && test.images.size(1) == channels,
                  "normalize_bytes: uint8 N x C x H x W images in both parts");
  const auto train_bytes = train.images.contiguous();
  const auto test_bytes = test.images.contiguous();
  const std::int64_t plane = train_bytes.size(2) * train_bytes.size(3);

  // Per channel, how often each byte occurs in the training part.
  // Four counters per byte value, so that runs of one value (the zeros
  // around a digit) do not wait on the same counter.
  std::vector<std::array<std::int64_t, 4 * 256>> counts(static_cast<std::size_t>(channels));
  {
    const auto* p = train_bytes.data_ptr<std::uint8_t>();
    for (std::int64_t n = 0; n < train_bytes.size(0); ++n)
      for (std::int64_t c = 0; c < channels; ++c) {
        auto& h = counts[static_cast<std::size_t>(c)];
        std::int64_t i = 0;
        for (; i + 4 <= plane; i += 4, p += 4) {
          ++h[p[0]];
          ++h[256 + p[1]];
          ++h[512 + p[2]];
          ++h[768 + p[3]];
        }
        for (; i < plane; ++i) ++h[*p++];
      }
  }
  // The values the float path divides to (the same LibTorch kernel), then
  // per channel the population mean and std over them, exact to a double
  // (LibTorch's std_mean accumulates in double too), and the table of
  // (x - mean) / std, computed by the same kernels as the float path's.
  const auto unit = unit_interval(torch::arange(256, torch::kInt64).to(torch::kUInt8));
  const auto* u = unit.data_ptr<float>();
  auto tables = torch::empty({channels, 256}, torch::kFloat32);
  Normalization applied;
  for (std::int64_t c = 0; c < channels; ++c) {
    std::array<std::int64_t, 256> h{};
    for (int k = 0; k < 4 * 256; ++k) h[k % 256] += counts[static_cast<std::size_t>(c)][k];
    long double n = 0, sum = 0;
    for (int k = 0; k < 256; ++k) {
      n += static_cast<long double>(h[k]);
      sum += static_cast<long double>(h[k]) * u[k];
    }
    const long double mean = n > 0 ? sum / n : 0;
    long double squares = 0;
    for (int k = 0; k < 256; ++k) {
      const long double d = static_cast<long double>(u[k]) - mean;
      squares += static_cast<long double>(h[k]) * d * d;
    }
    const double variance = n > 0 ? static_cast<double>(squares / n) : 0.0;
    const float m = static_cast<float>(static_cast<double>(mean));
    const float deviation = static_cast<float>(std::sqrt(variance));
    const float s = deviation > 0 ? deviation : 1.0f;  // a constant channel stays finite
    applied.mean.push_back(m);
    applied.stddev.push_back(s);
    tables[c].copy_(unit.sub(torch::full({1}, m, torch::kFloat32)).div_(torch::full({1}, s, torch::kFloat32)));
  }

  // One pass per part: each byte becomes its channel's table entry.
  const auto* table = tables.data_ptr<float>();
  const auto expand = [&](const at::Tensor& bytes) {
    auto out = torch::empty(bytes.sizes(), torch::kFloat32);
    const auto* in = bytes.data_ptr<std::uint8_t>();
    auto* to = out.data_ptr<float>();
    const std::int64_t planes = bytes.size(0) * channels;
    at::parallel_for(0, planes, 64, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t q = begin; q < end; ++q) {
        const float* t = table + (q % channels) * 256;
        const std::uint8_t* from = in + q * plane;
        float* into = to + q * plane;
        for (std::int64_t i = 0; i < plane; ++i) into[i] = t[from[i]];
      }
    });
    return out;
  };
  train.images = expand(train_bytes);
  test.images = expand(test_bytes);
  return applied;
}

}  // namespace detail

DatasetSplit load_dataset(const std::string& spec) {
  DatasetSplit split;
  if (spec == "fashion-mnist") {
    if (!has_file(kFashionMnistDir, "train-images-idx3-ubyte.gz") && !has_file(kFashionMnistDir, "train-images-idx3-ubyte"))
      throw Error(std::string("fashion-mnist not found in ") + kFashionMnistDir +
                  ": install the Debian package dataset-fashion-mnist (scripts/setup.sh does)");
    split = detail::read_idx_folder_bytes(kFashionMnistDir, "fashion-mnist");
  } else if (spec == "mnist-digits") {
    split = read_mnist_digits(mnist_digits_folder());
  } else if (spec.empty()) {
    throw Error("empty dataset name: expected fashion-mnist, mnist-digits, an .npz file or a folder");
  } else {
    const std::filesystem::path path(spec);
    auto name = path.filename().string();
    if (name.empty()) name = path.parent_path().filename().string();  // "dir/" names "dir"
    std::error_code ec;
    if (path.extension() == ".npz" && std::filesystem::is_regular_file(path, ec)) name = path.stem().string();
    split = read_path(path, name);
  }
  if (split.train.size() == 0 || split.test.size() == 0) throw Error("dataset " + spec + " has an empty train or test part");
  if (split.train.images.scalar_type() == torch::kUInt8)
    split.normalization = detail::normalize_bytes(split.train, split.test);
  else
    split.normalization = normalize_with_train_statistics(split.train, split.test);
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
