#pragma once
// .npy files written byte by byte (format 1.0), as NumPy's np.save writes
// them: for tests that hand packtrain NumPy arrays, good and broken.
//
//   write_file(dir / "y_train.npy", npy("<i8", {3}, std::vector<std::int64_t>{0, 1, 2}));

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace packtrain::testing {

// An .npy file around the header dict `dict`: magic, version 1.0, the
// header's length (2 bytes, little-endian), the dict padded with spaces and
// a newline to a multiple of `align` bytes (NumPy: 64), then `data`.
inline std::string npy_with_header(std::string dict, const std::string& data, std::size_t align = 64) {
  const std::size_t total = 10 + dict.size() + 1;
  dict.append((align - total % align) % align, ' ');
  dict += '\n';
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes.push_back(static_cast<char>(dict.size() & 0xff));
  bytes.push_back(static_cast<char>(dict.size() >> 8));
  return bytes + dict + data;
}

// The dict NumPy writes: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
inline std::string npy_dict(const std::string& descr, const std::vector<std::int64_t>& shape, bool fortran = false) {
  std::string tuple = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) tuple += ", ";
    tuple += std::to_string(shape[i]);
  }
  tuple += shape.size() == 1 ? ",)" : ")";
  return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': " + tuple + ", }";
}

template <typename T>
std::string raw(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

template <typename T>
std::string npy(const std::string& descr, const std::vector<std::int64_t>& shape, const std::vector<T>& values) {
  return npy_with_header(npy_dict(descr, shape), raw(values));
}

}  // namespace packtrain::testing
