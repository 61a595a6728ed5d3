// NumPy .npy and .npz as bytes (npy_format.hpp). No LibTorch here, so that
// the fuzz build (tests/fuzz) compiles it alone.
//
// xtensor's npy code (xt::detail::parse_header) splits the header's dict into
// dtype, order and shape; its loader is not used: it trusts the shape to size
// its buffer, does not notice a short read, needs the dtype at compile time
// and reads a header length past 127 with a sign error. Its parser, given
// hostile text, can also index an empty string or recurse once per digit in
// std::regex, so the header is checked first (checked_header) to the form it
// handles safely. libzip reads .npz archives.
#include "npy_format.hpp"

#include <packtrain/scheduler/error.hpp>

#include <xtensor/xnpy.hpp>
#include <zip.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace packtrain::data::detail {
namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) { throw Error(where + ": " + what); }

constexpr std::array<std::uint8_t, 6> kMagic{0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr std::size_t kMaxDigits = 20;  // a uint64 has at most 20 decimal digits

// `header`, once checked to be what xt::detail::parse_header handles without
// undefined behaviour: printable ASCII ending in a newline; without spaces, a
// dict in braces, each key followed by ':' at its first occurrence (the one
// xtensor splits at), the shape a parenthesized list of numbers; and no run
// of digits longer than a uint64's (std::regex recurses once per digit).
std::string checked_header(const std::string& where, const std::string& header) {
  const auto bad = [&](const std::string& why) {
    fail(where, "bad npy header (" + why + "): expected {'descr': ..., 'fortran_order': ..., 'shape': (...)}");
  };
  if (header.empty() || header.back() != '\n') bad("it does not end with a newline");
  std::string dict;
  std::size_t digits = 0;
  for (std::size_t i = 0; i + 1 < header.size(); ++i) {
    const char c = header[i];
    if (c < 0x20 || c > 0x7e) bad("not printable ASCII");
    digits = (c >= '0' && c <= '9') ? digits + 1 : 0;
    if (digits > kMaxDigits) bad("a number of more than 20 digits");
    if (c != ' ') dict.push_back(c);
  }
  if (dict.size() < 2 || dict.front() != '{' || dict.back() != '}') bad("not a dict");
  for (const std::string_view key : {"'descr'", "'fortran_order'", "'shape'"}) {
    const auto at = dict.find(key);
    if (at == std::string::npos) bad("no " + std::string(key));
    if (dict.compare(at + key.size(), 1, ":") != 0) bad(std::string(key) + " is not followed by ':'");
  }
  const auto shape = dict.find("'shape'") + 8;
  const auto close = dict.find(')', shape);
  if (dict.compare(shape, 1, "(") != 0 || close == std::string::npos ||
      dict.find_first_not_of("0123456789,", shape + 1) != close)
    bad("'shape' is not a tuple of numbers");
  return header;
}

}  // namespace

std::int64_t NpyArray::count() const {
  std::int64_t n = 1;
  for (const auto d : shape) n *= d;  // parse_npy checked the product against the file's size
  return n;
}

std::string NpyArray::dtype() const {
  const std::string bits = std::to_string(item_size * 8);
  switch (kind) {
    case 'f': return "float" + bits;
    case 'i': return "int" + bits;
    case 'u': return "uint" + bits;
    case 'c': return "complex" + bits;
    case 'b': return "bool";
    default: return descr;
  }
}

std::string NpyArray::shape_text() const {
  std::string text;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (d > 0) text += 'x';
    text += std::to_string(shape[d]);
  }
  return shape.empty() ? "() (a scalar)" : text;
}

NpyArray parse_npy(const std::string& where, std::vector<std::uint8_t> bytes) {
  const std::size_t size = bytes.size();
  if (size == 0) fail(where, "empty file, not an npy file");
  if (!std::equal(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(std::min(size, kMagic.size())),
                  kMagic.begin()))
    fail(where, "not an npy file (it does not start with \\x93NUMPY)");
  if (size < 10) fail(where, "truncated: " + std::to_string(size) + " bytes, an npy header needs at least 10");
  const int major = bytes[6];
  const int minor = bytes[7];
  std::size_t start = 10;
  std::size_t header_size = bytes[8] | (std::size_t{bytes[9]} << 8);
  if ((major == 2 || major == 3) && minor == 0) {
    if (size < 12) fail(where, "truncated: " + std::to_string(size) + " bytes, an npy 2.0 header needs at least 12");
    start = 12;
    header_size |= (std::size_t{bytes[10]} << 16) | (std::size_t{bytes[11]} << 24);
  } else if (major != 1 || minor != 0) {
    fail(where, "npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                    " is not supported (expected 1.0, 2.0 or 3.0)");
  }
  if (size - start < header_size)
    fail(where, "truncated: the npy header says " + std::to_string(header_size) + " bytes but " +
                    std::to_string(size - start) + " follow");
  const std::string header(reinterpret_cast<const char*>(bytes.data()) + start, header_size);

  const std::string checked = checked_header(where, header);
  NpyArray array;
  array.where = where;
  std::vector<std::size_t> shape;
  try {
    xt::detail::parse_header(checked, array.descr, &array.fortran_order, shape);
  } catch (const std::exception& e) {
    fail(where, std::string("bad npy header (") + e.what() + "): expected {'descr': '<f4' or another plain dtype, "
                "'fortran_order': False or True, 'shape': (...)}");
  }
  // xtensor matched descr against '([<>|])([ifucb])(\d+)'.
  const char order = array.descr[0];
  array.kind = array.descr[1];
  const std::string item_digits = array.descr.substr(2);
  if (item_digits.size() > 2 || std::stoul(item_digits) == 0 || std::stoul(item_digits) > 16)
    fail(where, "dtype '" + array.descr + "' has an item size NumPy does not write");
  array.item_size = std::stoul(item_digits);
  if (order == '|' && array.item_size > 1)
    fail(where, "dtype '" + array.descr + "' gives no byte order ('|') for a " + std::to_string(array.item_size) +
                    "-byte type");

  const std::uint64_t data = size - start - header_size;
  std::uint64_t expected = array.item_size;
  bool beyond_file = false;  // the product already exceeds the file: stop multiplying (no overflow)
  std::string shape_text = shape.empty() ? "()" : "";
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 0) fail(where, "dimension " + std::to_string(d) + " of its shape is 0 (an empty array)");
    if (d > 0) shape_text += 'x';
    shape_text += std::to_string(shape[d]);
    if (!beyond_file) {
      beyond_file = shape[d] > size / expected;  // expected * shape[d] > size, without overflow
      expected *= shape[d];
    }
  }
  if (beyond_file || data < expected)
    fail(where, "truncated: the header says " + array.dtype() + " " + shape_text + " but only " +
                    std::to_string(data) + " data bytes follow");
  if (data > expected)
    fail(where, "trailing bytes: the header says " + array.dtype() + " " + shape_text + " (" +
                    std::to_string(expected) + " bytes) but " + std::to_string(data) + " data bytes follow");
  for (const auto d : shape) array.shape.push_back(static_cast<std::int64_t>(d));  // each <= the file's size

  array.offset = start + header_size;
  array.bytes = std::move(bytes);
  // Multi-byte items into this machine's byte order (a complex number is two floats).
  const bool little = order == '<';
  if (order != '|' && little != (std::endian::native == std::endian::little)) {
    const std::size_t unit = array.kind == 'c' ? array.item_size / 2 : array.item_size;
    for (std::size_t at = array.offset; at < array.bytes.size(); at += unit)
      std::reverse(array.bytes.begin() + static_cast<std::ptrdiff_t>(at),
                   array.bytes.begin() + static_cast<std::ptrdiff_t>(at + unit));
  }
  return array;
}

NpyArray read_npy_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(path.string(), "not found");
  const auto size = std::filesystem::file_size(path, ec);
  std::ifstream in(path, std::ios::binary);
  if (ec || !in) fail(path.string(), "cannot be opened");
  std::vector<std::uint8_t> bytes(size);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  if (static_cast<std::uintmax_t>(in.gcount()) != size) fail(path.string(), "cannot be read");
  return parse_npy(path.string(), std::move(bytes));
}

namespace {

// The one place libzip's errors become packtrain::Error: `error` (an
// archive's or a file's), or else the error `code` zip_open or zip_fclose gave.
[[noreturn]] void fail_zip(const std::string& where, const std::string& context, zip_error_t* error,
                           int code = ZIP_ER_OK) {
  zip_error_t own;
  if (error == nullptr) {
    zip_error_init_with_code(&own, code);
    error = &own;
  }
  const std::string what = context + zip_error_strerror(error);
  if (error == &own) zip_error_fini(&own);
  fail(where, what);
}

// Deflate expands at most 1032 times (a run of one byte); a member claiming
// more is lying, and its claim must not size a buffer.
constexpr std::uint64_t kDeflateMaxRatio = 1032;

std::vector<std::uint8_t> read_member(zip_t* archive, zip_int64_t index, const std::string& where,
                                      std::uintmax_t archive_size) {
  zip_stat_t stat;
  zip_stat_init(&stat);
  if (zip_stat_index(archive, static_cast<zip_uint64_t>(index), 0, &stat) != 0)
    fail_zip(where, "", zip_get_error(archive));
  constexpr auto kNeeded = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
  if ((stat.valid & kNeeded) != kNeeded) fail(where, "its size or compression is not recorded");
  if ((stat.valid & ZIP_STAT_ENCRYPTION_METHOD) != 0 && stat.encryption_method != ZIP_EM_NONE)
    fail(where, "encrypted (np.savez does not encrypt)");
  if (stat.comp_method != ZIP_CM_STORE && stat.comp_method != ZIP_CM_DEFLATE)
    fail(where, "compression method " + std::to_string(stat.comp_method) +
                    " (np.savez writes members stored or deflated)");
  if (stat.comp_size > archive_size)
    fail(where, "truncated: " + std::to_string(stat.comp_size) + " compressed bytes in an archive of " +
                    std::to_string(archive_size));
  const std::uint64_t most = stat.comp_method == ZIP_CM_STORE ? stat.comp_size : stat.comp_size * kDeflateMaxRatio + 64;
  if (stat.size > most)
    fail(where, "corrupt: " + std::to_string(stat.size) + " bytes claimed from " + std::to_string(stat.comp_size) +
                    " compressed");
  std::unique_ptr<zip_file_t, decltype(&zip_fclose)> file(zip_fopen_index(archive, static_cast<zip_uint64_t>(index), 0),
                                                          &zip_fclose);
  if (!file) fail_zip(where, "", zip_get_error(archive));
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(stat.size));
  std::size_t have = 0;
  while (have < bytes.size()) {
    const zip_int64_t got = zip_fread(file.get(), bytes.data() + have, bytes.size() - have);
    if (got < 0) fail_zip(where, "", zip_file_get_error(file.get()));
    if (got == 0) break;
    have += static_cast<std::size_t>(got);
  }
  if (have < bytes.size())
    fail(where, "truncated: " + std::to_string(have) + " of " + std::to_string(bytes.size()) + " bytes");
  std::uint8_t more = 0;
  const zip_int64_t extra = zip_fread(file.get(), &more, 1);  // also lets libzip check the CRC at the end
  if (extra < 0) fail_zip(where, "", zip_file_get_error(file.get()));
  if (extra > 0) fail(where, "corrupt: more data than the " + std::to_string(bytes.size()) + " bytes recorded");
  if (const int code = zip_fclose(file.release()); code != 0) fail_zip(where, "", nullptr, code);
  return bytes;
}

}  // namespace

std::vector<NpyArray> read_npz_members(const std::filesystem::path& path, const std::vector<std::string>& names) {
  const std::string where = path.string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(where, "not found");
  const auto archive_size = std::filesystem::file_size(path, ec);
  if (ec) fail(where, "cannot be opened");
  int code = 0;
  std::unique_ptr<zip_t, decltype(&zip_discard)> archive(zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code),
                                                         &zip_discard);
  if (!archive) fail_zip(where, "not a valid .npz (zip) archive: ", nullptr, code);
  std::vector<NpyArray> arrays(names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    const zip_int64_t index = zip_name_locate(archive.get(), names[i].c_str(), 0);
    if (index < 0) {
      if (zip_error_code_zip(zip_get_error(archive.get())) == ZIP_ER_NOENT) continue;
      fail_zip(where, "", zip_get_error(archive.get()));
    }
    const std::string member = where + ", member " + names[i];
    arrays[i] = parse_npy(member, read_member(archive.get(), index, member, archive_size));
  }
  return arrays;
}

std::vector<std::int64_t> npy_image_shape(const NpyArray& images) {
  const bool bytes = images.kind == 'u' && images.item_size == 1;
  const bool floats = images.kind == 'f' && (images.item_size == 4 || images.item_size == 8);
  if (!bytes && !floats)
    fail(images.where, "dtype " + images.dtype() + " ('" + images.descr +
                           "') is not an image type: expected float32, float64 or uint8");
  const auto& s = images.shape;
  if (s.size() == 3) return {s[0], 1, s[1], s[2]};
  if (s.size() == 4) return s;
  fail(images.where, "shape " + images.shape_text() + " is not images: expected N x H x W or N x C x H x W");
}

std::vector<std::int64_t> npy_labels(const NpyArray& labels) {
  const std::size_t n = labels.item_size;
  if ((labels.kind != 'i' && labels.kind != 'u') || (n != 1 && n != 2 && n != 4 && n != 8))
    fail(labels.where, "dtype " + labels.dtype() + " ('" + labels.descr +
                           "') is not a label type: expected an integer type (int8 .. int64, uint8 .. uint64)");
  if (labels.shape.size() != 1)
    fail(labels.where, "shape " + labels.shape_text() + " is not labels: expected one dimension (N)");
  const bool is_signed = labels.kind == 'i';
  std::vector<std::int64_t> values(static_cast<std::size_t>(labels.shape[0]));
  const std::uint8_t* p = labels.bytes.data() + labels.offset;
  for (std::size_t i = 0; i < values.size(); ++i, p += n) {
    std::int64_t value = 0;
    switch (n) {
      case 1: {
        std::uint8_t v;
        std::memcpy(&v, p, 1);
        value = is_signed ? std::int64_t{static_cast<std::int8_t>(v)} : std::int64_t{v};
        break;
      }
      case 2: {
        std::uint16_t v;
        std::memcpy(&v, p, 2);
        value = is_signed ? std::int64_t{static_cast<std::int16_t>(v)} : std::int64_t{v};
        break;
      }
      case 4: {
        std::uint32_t v;
        std::memcpy(&v, p, 4);
        value = is_signed ? std::int64_t{static_cast<std::int32_t>(v)} : std::int64_t{v};
        break;
      }
      default: {
        std::uint64_t v;
        std::memcpy(&v, p, 8);
        if (!is_signed && v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
          fail(labels.where, "label " + std::to_string(v) + " at index " + std::to_string(i) + " is out of range");
        value = static_cast<std::int64_t>(v);
      }
    }
    if (value < 0)
      fail(labels.where, "label " + std::to_string(value) + " at index " + std::to_string(i) + " is negative");
    values[i] = value;
  }
  return values;
}

std::int64_t npy_classes(const NpyArray& train_labels, const std::vector<std::int64_t>& labels) {
  if (labels.empty()) fail(train_labels.where, "no labels");
  const auto largest = std::max_element(labels.begin(), labels.end());
  if (*largest >= kNpyMaxClasses)
    fail(train_labels.where, "label " + std::to_string(*largest) + " at index " +
                                 std::to_string(largest - labels.begin()) + " is out of range: at most " +
                                 std::to_string(kNpyMaxClasses) + " classes (labels 0 .. " +
                                 std::to_string(kNpyMaxClasses - 1) + ")");
  const std::int64_t classes = *largest + 1;
  if (classes < kNpyMinClasses)
    fail(train_labels.where, "every label is " + std::to_string(*largest) + ": a classifier needs at least " +
                                 std::to_string(kNpyMinClasses) + " classes");
  return classes;
}

void check_labels_below(const NpyArray& labels_array, const std::vector<std::int64_t>& labels, std::int64_t classes) {
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] >= classes)
      fail(labels_array.where, "label " + std::to_string(labels[i]) + " at index " + std::to_string(i) +
                                   " is out of range: the training labels give " + std::to_string(classes) +
                                   " classes (0 .. " + std::to_string(classes - 1) + ")");
}

}  // namespace packtrain::data::detail
