#include <packtrain/data/loader.hpp>
#include <packtrain/data/seed.hpp>
#include <packtrain/scheduler/error.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <omp.h>
#include <sched.h>
#include <torch/torch.h>

#include <string>

namespace packtrain::data {
namespace {

constexpr std::int64_t kCropPadding = 4;
// Salts keep the shuffle and the augmentation streams of an epoch apart.
constexpr std::uint64_t kShuffleStream = 0x5348554646ULL;
constexpr std::uint64_t kAugmentStream = 0x4155474dULL;

// Random crop after zero padding, and a horizontal flip, per sample.
at::Tensor augment(const at::Tensor& images, at::Generator& generator) {
  const auto n = images.size(0);
  const auto h = images.size(2);
  const auto w = images.size(3);
  const auto padded = torch::constant_pad_nd(images, {kCropPadding, kCropPadding, kCropPadding, kCropPadding}, 0.0);
  const auto offsets = torch::randint(0, 2 * kCropPadding + 1, {n, 2}, generator, torch::kInt64);
  const auto flips = torch::randint(0, 2, {n}, generator, torch::kInt64);
  const auto* offset = offsets.data_ptr<std::int64_t>();
  const auto* flip = flips.data_ptr<std::int64_t>();
  auto out = torch::empty_like(images);
  for (std::int64_t i = 0; i < n; ++i) {
    auto crop = padded[i].narrow(1, offset[2 * i], h).narrow(2, offset[2 * i + 1], w);
    out[i].copy_(flip[i] ? crop.flip({2}) : crop);
  }
  return out;
}

// Whether the calling thread may run on more than one CPU.
bool may_use_several_cpus() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (sched_getaffinity(0, sizeof cpus, &cpus) != 0) return true;
  return CPU_COUNT(&cpus) > 1;
}

}  // namespace

BatchLoader::BatchLoader(Dataset part, at::Tensor indices, LoaderOptions options)
    : part_(std::move(part)), indices_(std::move(indices)), options_(options) {
  if (options_.batch_size() < 1) throw Error("batch size must be at least 1, not " + std::to_string(options_.batch_size()));
  if (!indices_.defined() || indices_.dim() != 1 || indices_.scalar_type() != torch::kInt64)
    throw Error("an index view must be a 1-D int64 tensor");
  if (indices_.numel() == 0) throw Error("the index view is empty: nothing to load");
  const auto lowest = indices_.min().item<std::int64_t>();
  const auto highest = indices_.max().item<std::int64_t>();
  if (lowest < 0 || highest >= part_.size())
    throw Error("index view reaches sample " + std::to_string(lowest < 0 ? lowest : highest) + " of a dataset part of " +
                std::to_string(part_.size()));
  if (options_.augment() && (part_.images.size(1) != 3 || part_.images.size(2) != 32 || part_.images.size(3) != 32))
    throw Error("augmentation (random crop and flip) is for 3x32x32 images, not " +
                std::to_string(part_.images.size(1)) + "x" + std::to_string(part_.images.size(2)) + "x" +
                std::to_string(part_.images.size(3)));
  indices_ = indices_.contiguous();
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

std::int64_t BatchLoader::batches_per_epoch() const {
  return (size() + options_.batch_size() - 1) / options_.batch_size();
}

void BatchLoader::start_epoch(std::int64_t epoch, std::int64_t first_batch) {
  if (first_batch < 0 || first_batch > batches_per_epoch())
    throw Error("batch " + std::to_string(first_batch) + " is outside an epoch of " +
                std::to_string(batches_per_epoch()) + " batches");
  at::Tensor order = indices_;
  if (options_.shuffle()) {
    auto generator = at::make_generator<at::CPUGeneratorImpl>(mix_seed(options_.seed(), mix_seed(epoch, kShuffleStream)));
    order = indices_.index_select(0, torch::randperm(size(), generator, torch::kInt64));
  }
  if (epoch_ < 0) {
    prefetching_ = options_.prefetch() && (options_.prefetch_on_one_core() || may_use_several_cpus());
    // Started here, in the job's thread, so it inherits that thread's affinity.
    if (prefetching_) worker_ = std::thread(&BatchLoader::worker_loop, this);
  }
  std::unique_lock lock(mutex_);
  wait_until_idle(lock);
  epoch_ = epoch;
  order_ = order;
  next_batch_ = first_batch;
  if (prefetching_ && first_batch < batches_per_epoch()) {
    requested_ = first_batch;
    cv_.notify_all();
  }
}

std::optional<Batch> BatchLoader::next() {
  if (epoch_ < 0) throw Error("BatchLoader::next() before start_epoch()");
  if (next_batch_ >= batches_per_epoch()) return std::nullopt;
  const std::int64_t number = next_batch_++;
  if (!prefetching_) return gather(number);

  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return ready_number_ == number; });
  const auto error = std::exchange(error_, nullptr);
  auto batch = std::exchange(ready_, std::nullopt);
  ready_number_ = -1;
  if (number + 1 < batches_per_epoch()) {
    requested_ = number + 1;
    cv_.notify_all();
  }
  lock.unlock();
  if (error) std::rethrow_exception(error);
  return batch;
}

Batch BatchLoader::batch(std::int64_t number) const {
  if (epoch_ < 0) throw Error("BatchLoader::batch() before start_epoch()");
  if (options_.prefetch()) throw Error("BatchLoader::batch() needs prefetch off");
  if (number < 0 || number >= batches_per_epoch())
    throw Error("batch " + std::to_string(number) + " of an epoch of " + std::to_string(batches_per_epoch()));
  return gather(number);
}

Batch BatchLoader::gather(std::int64_t batch) const {
  // Reads epoch_ and order_: the worker only runs while they stay put
  // (start_epoch waits for it to be idle before changing them).
  const auto start = batch * options_.batch_size();
  const auto count = std::min(options_.batch_size(), size() - start);
  const auto idx = order_.narrow(0, start, count);
  auto images = part_.images.index_select(0, idx);
  if (options_.augment()) {
    auto generator = at::make_generator<at::CPUGeneratorImpl>(
        mix_seed(options_.seed(), mix_seed(mix_seed(epoch_, kAugmentStream), static_cast<std::uint64_t>(batch))));
    images = augment(images, generator);
  }
  return Batch{images, part_.labels.index_select(0, idx), idx};
}

void BatchLoader::wait_until_idle(std::unique_lock<std::mutex>& lock) {
  requested_.reset();  // a request not yet taken up is simply dropped
  cv_.wait(lock, [&] { return !busy_; });
  ready_.reset();
  ready_number_ = -1;
  error_ = nullptr;
}

void BatchLoader::worker_loop() {
  // One intra-op thread: the job's thread has the cores' budget. Initialize
  // LibTorch's per-thread count first, or its lazy init would override ours.
  (void)at::get_num_threads();
  omp_set_num_threads(1);
  std::unique_lock lock(mutex_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || requested_.has_value(); });
    if (stop_) return;
    const std::int64_t number = *std::exchange(requested_, std::nullopt);
    busy_ = true;
    lock.unlock();
    std::optional<Batch> batch;
    std::exception_ptr error;
    try {
      batch = gather(number);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    busy_ = false;
    ready_ = std::move(batch);
    ready_number_ = number;
    error_ = error;
    cv_.notify_all();
  }
}

}  // namespace packtrain::data
