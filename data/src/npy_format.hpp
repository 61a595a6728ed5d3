#pragma once
// NumPy .npy arrays and .npz archives as bytes and numbers, without LibTorch:
// npy.cpp makes tensors of what these return, and tests/fuzz feeds them
// hostile files. Each throws packtrain::Error with one line naming the file
// (an .npz member as "ARCHIVE, member NAME") and the problem.
//
// An .npy file: the magic "\x93NUMPY", a version byte pair (1.0: a 2-byte
// header length; 2.0 and 3.0: 4 bytes; little-endian), a Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (N, H, W), } padded with
// spaces and ended by '\n', then the array's bytes. An .npz file is a zip
// archive of .npy members (np.savez: stored, np.savez_compressed: deflate).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace packtrain::data::detail {

// One array, its header checked against its bytes: shape x item size is
// exactly what follows the header. Multi-byte items are in this machine's
// byte order once read (big-endian files are swapped in place).
struct NpyArray {
  std::string where;                 // names it in messages: a path, or "ARCHIVE, member NAME"
  std::string descr;                 // the header's dtype as written, e.g. "<f4"
  char kind = 0;                     // 'f' float, 'i' signed, 'u' unsigned integer, 'b' bool, 'c' complex
  std::size_t item_size = 0;         // bytes per element
  bool fortran_order = false;        // column-major data
  std::vector<std::int64_t> shape;   // each dimension >= 1
  std::vector<std::uint8_t> bytes;   // the whole file or member
  std::size_t offset = 0;            // where the data starts in `bytes`

  std::int64_t count() const;        // elements: the product of `shape`
  std::string dtype() const;         // NumPy's name of the type: "float32", "uint8", "int64", ...
  std::string shape_text() const;    // "60000x28x28"
};

// Checks `bytes` as an .npy file and returns it parsed. Throws
// packtrain::Error "WHERE: PROBLEM": not an npy file (bad magic), an
// unsupported version, a header that is truncated or not the dict above, an
// unknown dtype, a dimension of 0, data shorter than the shape (truncated)
// or longer (trailing bytes).
NpyArray parse_npy(const std::string& where, std::vector<std::uint8_t> bytes);

// parse_npy of the file at `path` ("not found" when it is not there).
NpyArray read_npy_file(const std::filesystem::path& path);

// The members of the .npz archive at `path` that are among `names`, parsed
// with parse_npy, in the order of `names`; an absent one comes back with an
// empty `where`. Throws packtrain::Error naming the archive: not a zip file,
// a corrupt or inconsistent one, a member compressed otherwise than stored or
// deflate (what np.savez writes), or whose data fails its CRC.
std::vector<NpyArray> read_npz_members(const std::filesystem::path& path, const std::vector<std::string>& names);

// Images: uint8, float32 or float64, shape N x H x W or N x C x H x W.
// Returns {N, C, H, W} (C = 1 for three dimensions).
std::vector<std::int64_t> npy_image_shape(const NpyArray& images);

// Labels: a 1-D array of any integer type, as int64. A negative label, or
// an unsigned one past int64, is refused naming its index and value.
std::vector<std::int64_t> npy_labels(const NpyArray& labels);

// The most classes a dataset may have, and the fewest.
inline constexpr std::int64_t kNpyMaxClasses = 65536;
inline constexpr std::int64_t kNpyMinClasses = 2;

// The number of classes the training labels give: largest label + 1, which
// must be in [kNpyMinClasses, kNpyMaxClasses].
std::int64_t npy_classes(const NpyArray& train_labels, const std::vector<std::int64_t>& labels);

// Refuses the first label >= classes, naming its index and value.
void check_labels_below(const NpyArray& labels_array, const std::vector<std::int64_t>& labels, std::int64_t classes);

}  // namespace packtrain::data::detail
