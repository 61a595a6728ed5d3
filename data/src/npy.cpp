// NumPy arrays as a dataset (the bytes and their checks: npy_format.cpp).
#include "bytes.hpp"
#include "holdout.hpp"
#include "npy_format.hpp"

#include <packtrain/data/readers.hpp>
#include <packtrain/scheduler/error.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace packtrain::data {
namespace {

using detail::NpyArray;

// The arrays of a dataset, from a folder or an .npz archive; a missing one
// has an empty `where`.
struct NpyArrays {
  NpyArray x_train, y_train, x_test, y_test;
};

NpyArrays read_arrays(const std::filesystem::path& path) {
  const std::vector<std::string> names{"x_train.npy", "y_train.npy", "x_test.npy", "y_test.npy"};
  std::vector<NpyArray> arrays;
  std::string place;  // the folder or archive, in messages about a missing array
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) {
    arrays = detail::read_npz_members(path, names);
    place = ".npz archive " + path.string() + ": ";
  } else {
    for (const auto& name : names)
      arrays.push_back(std::filesystem::exists(path / name, ec) ? detail::read_npy_file(path / name) : NpyArray{});
    place = "dataset folder " + path.string() + ": ";
  }
  for (std::size_t i = 0; i < 2; ++i)
    if (arrays[i].where.empty())
      throw Error(place + "no " + names[i] + " (NumPy arrays need x_train.npy and y_train.npy)");
  if (arrays[2].where.empty() != arrays[3].where.empty()) {
    const bool has_x = !arrays[2].where.empty();
    throw Error(place + (has_x ? "x_test.npy without y_test.npy" : "y_test.npy without x_test.npy") +
                ": give both or neither (without them, 20% of the training arrays are held out for testing)");
  }
  return NpyArrays{std::move(arrays[0]), std::move(arrays[1]), std::move(arrays[2]), std::move(arrays[3])};
}

// Images as a C-order N x C x H x W tensor: uint8 (kept as bytes, viewing
// the file's buffer when it is in C order) or float32 (float64 narrowed).
at::Tensor to_images(NpyArray& array, const std::vector<std::int64_t>& nchw) {
  const bool bytes = array.kind == 'u';
  // Column-major data is the row-major array of the reversed shape, transposed.
  std::vector<std::int64_t> shape = array.shape;
  if (array.fortran_order) std::reverse(shape.begin(), shape.end());
  at::Tensor images;
  if (bytes) {
    auto buffer = std::make_shared<std::vector<std::uint8_t>>(std::move(array.bytes));
    images = torch::from_blob(
        buffer->data() + array.offset, shape, [buffer](void*) mutable { buffer.reset(); }, torch::kUInt8);
  } else {
    // Copied, not viewed: the data's offset in the file need not be aligned for floats.
    images = torch::empty(shape, array.item_size == 4 ? torch::kFloat32 : torch::kFloat64);
    std::memcpy(images.data_ptr(), array.bytes.data() + array.offset, array.bytes.size() - array.offset);
    array.bytes = {};
  }
  if (array.fortran_order) {
    std::vector<std::int64_t> reversed(shape.size());
    for (std::size_t d = 0; d < shape.size(); ++d) reversed[d] = static_cast<std::int64_t>(shape.size() - 1 - d);
    images = images.permute(reversed).contiguous();
  }
  images = images.reshape(nchw);
  return images.scalar_type() == torch::kFloat64 ? images.to(torch::kFloat32) : images;
}

at::Tensor int64_tensor(std::vector<std::int64_t>& values) {
  return torch::from_blob(values.data(), {static_cast<std::int64_t>(values.size())}, torch::kInt64).clone();
}

std::string dims_text(const std::vector<std::int64_t>& nchw) {
  return std::to_string(nchw[1]) + "x" + std::to_string(nchw[2]) + "x" + std::to_string(nchw[3]);
}

// Checks one part's images and labels agree in count; returns the labels.
std::vector<std::int64_t> checked_labels(const NpyArray& images, const std::vector<std::int64_t>& nchw,
                                         const NpyArray& labels_array) {
  auto labels = detail::npy_labels(labels_array);
  if (nchw[0] != static_cast<std::int64_t>(labels.size()))
    throw Error(images.where + " holds " + std::to_string(nchw[0]) + " images but " + labels_array.where + " holds " +
                std::to_string(labels.size()) + " labels");
  return labels;
}

}  // namespace

namespace detail {

DatasetSplit read_npy_dataset_bytes(const std::filesystem::path& path, const std::string& name) {
  auto arrays = read_arrays(path);
  const auto train_shape = npy_image_shape(arrays.x_train);
  auto train_labels = checked_labels(arrays.x_train, train_shape, arrays.y_train);
  const std::int64_t classes = npy_classes(arrays.y_train, train_labels);
  const bool has_test = !arrays.x_test.where.empty();
  std::vector<std::int64_t> test_labels;
  std::vector<std::int64_t> test_shape;
  if (has_test) {
    test_shape = npy_image_shape(arrays.x_test);
    test_labels = checked_labels(arrays.x_test, test_shape, arrays.y_test);
    check_labels_below(arrays.y_test, test_labels, classes);
    if (!std::equal(train_shape.begin() + 1, train_shape.end(), test_shape.begin() + 1))
      throw Error(arrays.x_test.where + ": images are " + dims_text(test_shape) + " (C x H x W) but " +
                  arrays.x_train.where + " holds " + dims_text(train_shape));
  }

  DatasetSplit split;
  split.name = name;
  split.classes = classes;
  split.channels = train_shape[1];
  split.height = train_shape[2];
  split.width = train_shape[3];
  const bool both_bytes = arrays.x_train.kind == 'u' && (!has_test || arrays.x_test.kind == 'u');
  const auto images = [&](NpyArray& array, const std::vector<std::int64_t>& nchw) {
    auto t = to_images(array, nchw);
    return t.scalar_type() == torch::kUInt8 && !both_bytes ? unit_interval(t) : t;
  };
  if (has_test) {
    split.train = Dataset{images(arrays.x_train, train_shape), int64_tensor(train_labels)};
    split.test = Dataset{images(arrays.x_test, test_shape), int64_tensor(test_labels)};
    return split;
  }
  // No test arrays: hold out 20% of the training arrays, per class.
  const auto all_images = images(arrays.x_train, train_shape);
  const auto all_labels = int64_tensor(train_labels);
  const auto is_test = holdout_mask(train_labels, classes);
  std::vector<std::int64_t> train_rows, test_rows;
  for (std::size_t i = 0; i < is_test.size(); ++i)
    (is_test[i] ? test_rows : train_rows).push_back(static_cast<std::int64_t>(i));
  const auto take = [&](std::vector<std::int64_t>& rows) {
    const auto index = int64_tensor(rows);
    return Dataset{all_images.index_select(0, index), all_labels.index_select(0, index)};
  };
  split.train = take(train_rows);
  split.test = take(test_rows);
  return split;
}

}  // namespace detail

DatasetSplit read_npy_dataset(const std::filesystem::path& path, const std::string& name) {
  auto split = detail::read_npy_dataset_bytes(path, name);
  if (split.train.images.scalar_type() == torch::kUInt8) {
    split.train.images = detail::unit_interval(split.train.images);
    split.test.images = detail::unit_interval(split.test.images);
  }
  return split;
}

}  // namespace packtrain::data
