#pragma once
// Datasets read as bytes (IDX, CIFAR-10, uint8 NumPy arrays): images stay
// uint8 N x C x H x W until they are normalized, which then takes one pass
// (normalize_bytes) instead of five over float copies: the start-up of
// every command.

#include <packtrain/data/dataset.hpp>

#include <filesystem>
#include <string>

namespace packtrain::data::detail {

// read_idx_folder and read_cifar_folder with uint8 images.
DatasetSplit read_idx_folder_bytes(const std::filesystem::path& folder, const std::string& name);
DatasetSplit read_cifar_folder_bytes(const std::filesystem::path& folder, const std::string& name);
Dataset read_cifar_batch_bytes(const std::filesystem::path& path);
// read_npy_dataset with uint8 images where both parts' arrays are uint8
// (float32 otherwise).
DatasetSplit read_npy_dataset_bytes(const std::filesystem::path& path, const std::string& name);

// uint8 images as float in [0, 1]: float(x) / 255, as LibTorch divides.
at::Tensor unit_interval(const at::Tensor& bytes);

// normalize_with_train_statistics for uint8 images, with the same bits:
// float(x) / 255, then (x - mean) / std per channel with the training
// part's population statistics (computed exactly from a histogram of the
// bytes), looked up from a 256-entry table per channel. Both parts come
// back float; returns the mean and std applied.
Normalization normalize_bytes(Dataset& train, Dataset& test);

}  // namespace packtrain::data::detail
