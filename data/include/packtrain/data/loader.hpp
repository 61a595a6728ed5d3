#pragma once
// Minibatches over an index view of a shared dataset part.
//
// Every epoch visits each index of the view exactly once, in an order drawn
// from (seed, epoch) alone, so an epoch's batches are the same whichever
// thread, core or run asks for them (a resumed job sees the batches the
// uninterrupted one saw). The last partial batch is kept.
//
// With prefetch on, one helper thread gathers batch k+1 while batch k trains.
// It is started by the first start_epoch(), so it inherits the affinity of
// the job's thread, runs with one intra-op thread, and sleeps on a condition
// variable whenever the next batch is ready. A job thread allowed a single
// CPU (packtrain's usual one-core job) gathers inline instead: there the
// helper could not overlap with training, only add two context switches a
// batch (bench/train_step measured +4% CPU time on the LeNet-300-100 step).
//
//   BatchLoader loader(data->train, fold.train_idx, LoaderOptions().batch_size(64).seed(seed));
//   for (int epoch = 0; epoch < epochs; ++epoch) {
//     loader.start_epoch(epoch);
//     while (auto batch = loader.next()) step(batch->images, batch->labels);
//   }

#include <packtrain/data/dataset.hpp>

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

namespace packtrain::data {

struct LoaderOptions {
  TORCH_ARG(std::int64_t, batch_size) = 64;
  TORCH_ARG(std::uint64_t, seed) = 0;
  // Off: every epoch in index-view order (evaluation).
  TORCH_ARG(bool, shuffle) = true;
  // For 3 x 32 x 32 images: random crop after 4 pixels of zero padding, and a
  // horizontal flip with probability 1/2; drawn from (seed, epoch, batch).
  TORCH_ARG(bool, augment) = false;
  TORCH_ARG(bool, prefetch) = true;
  // Use the helper thread even when the calling thread may run on one CPU only.
  TORCH_ARG(bool, prefetch_on_one_core) = false;
};

struct Batch {
  at::Tensor images;   // float32, B x C x H x W
  at::Tensor labels;   // int64, B
  at::Tensor indices;  // int64, B: the samples' numbers in the dataset part
};

class BatchLoader {
 public:
  // Throws packtrain::Error for a batch size below 1, indices outside the
  // part, or augmentation asked for images that are not 3 x 32 x 32.
  BatchLoader(Dataset part, at::Tensor indices, LoaderOptions options = {});
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Begins epoch `epoch` (any number, in any order): draws its order and
  // starts gathering its first batch. An unfinished epoch is dropped.
  // With `first_batch`, next() starts there (a run resumed mid-epoch): the
  // batches are those an epoch started at 0 gives from that one on. Throws
  // packtrain::Error for a first_batch outside [0, batches_per_epoch()].
  void start_epoch(std::int64_t epoch, std::int64_t first_batch = 0);

  // The epoch's next batch, or nothing after its last one.
  std::optional<Batch> next();

  // Batch `number` (0-based) of the epoch started last, gathered on the
  // calling thread: the same batch next() would give. Several threads may
  // call it at once (data-parallel replicas taking micro-batches), while no
  // start_epoch() runs. Throws packtrain::Error before start_epoch(), with
  // prefetch on, or for a number outside the epoch.
  Batch batch(std::int64_t number) const;

  std::int64_t size() const { return indices_.size(0); }
  std::int64_t batches_per_epoch() const;
  const LoaderOptions& options() const { return options_; }
  // Whether a helper thread gathers the batches (known after the first start_epoch()).
  bool prefetching() const { return prefetching_; }

 private:
  Batch gather(std::int64_t batch) const;
  void worker_loop();
  void wait_until_idle(std::unique_lock<std::mutex>& lock);

  Dataset part_;
  at::Tensor indices_;
  LoaderOptions options_;

  // The epoch being served, set by start_epoch() before any batch of it is asked for.
  std::int64_t epoch_ = -1;
  at::Tensor order_;          // this epoch's permutation of indices_
  std::int64_t next_batch_ = 0;  // the batch next() hands out next
  bool prefetching_ = false;     // decided by the first start_epoch()

  // Prefetch: the consumer posts a request for batch `requested_`; the worker
  // gathers it and leaves it in `ready_`. Guarded by mutex_.
  std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<std::int64_t> requested_;
  bool busy_ = false;
  std::optional<Batch> ready_;
  std::int64_t ready_number_ = -1;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace packtrain::data
