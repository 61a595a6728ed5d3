// libFuzzer: NumPy arrays, as a user's --data may name them: each input is
// read as an .npy file and as an .npz archive. Every input must be read or
// refused with packtrain::Error naming it, never crash, leak, overflow the
// stack or allocate without bound.
#include "input_file.hpp"
#include "npy_format.hpp"

#include <packtrain/scheduler/error.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

namespace d = packtrain::data::detail;

// An accepted array: its shape times its item size is exactly the bytes
// after its header, and what the dataset reader asks of it holds.
void check_accepted(const d::NpyArray& array) {
  std::uint64_t n = array.item_size;
  for (const auto dim : array.shape) {
    if (dim <= 0) std::abort();
    n *= static_cast<std::uint64_t>(dim);
  }
  if (array.offset > array.bytes.size() || n != array.bytes.size() - array.offset) std::abort();
  try {
    const auto nchw = d::npy_image_shape(array);
    if (nchw.size() != 4 || nchw[0] * nchw[1] * nchw[2] * nchw[3] != array.count()) std::abort();
  } catch (const packtrain::Error&) {
  }
  try {
    const auto labels = d::npy_labels(array);
    if (static_cast<std::int64_t>(labels.size()) != array.count()) std::abort();
    for (const auto label : labels)
      if (label < 0) std::abort();
    const auto classes = d::npy_classes(array, labels);
    if (classes < d::kNpyMinClasses || classes > d::kNpyMaxClasses) std::abort();
    d::check_labels_below(array, labels, classes);
  } catch (const packtrain::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto npy_path = packtrain::fuzz::input_path("npy", ".npy");
  static const auto npz_path = packtrain::fuzz::input_path("npy", ".npz");
  packtrain::fuzz::write_input(npy_path, data, size);
  try {
    check_accepted(d::read_npy_file(npy_path));
  } catch (const packtrain::Error&) {
  }
  packtrain::fuzz::write_input(npz_path, data, size);
  try {
    for (const auto& array : d::read_npz_members(npz_path, {"x_train.npy", "y_train.npy"}))
      if (!array.where.empty()) check_accepted(array);
  } catch (const packtrain::Error&) {
  }
  return 0;
}
