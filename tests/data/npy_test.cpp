// NumPy arrays as a dataset: .npy folders and .npz archives, written here
// byte by byte (npy 1.0 headers) and with libzip.
#include "common/npy_files.hpp"
#include "common/test_util.hpp"
#include "expect_error.hpp"
#include "idx_files.hpp"

#include <packtrain/data/dataset.hpp>
#include <packtrain/data/readers.hpp>
#include <packtrain/scheduler/error.hpp>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zip.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace {

using packtrain::Error;
using packtrain::testing::TempDir;
namespace pt = packtrain::testing;
using pt::npy;
using pt::npy_dict;
using pt::npy_with_header;
using pt::raw;
namespace data = packtrain::data;

using packtrain::testing::expect_error;

// Each item's bytes reversed: little-endian data as a big-endian file holds it.
std::string byte_swapped(std::string bytes, std::size_t item) {
  for (std::size_t at = 0; at + item <= bytes.size(); at += item)
    std::reverse(bytes.begin() + static_cast<std::ptrdiff_t>(at), bytes.begin() + static_cast<std::ptrdiff_t>(at + item));
  return bytes;
}

// An .npz archive (what np.savez writes: one .npy member per array), stored or deflated.
void write_npz(const std::filesystem::path& path, const std::vector<std::pair<std::string, std::string>>& members,
               bool compressed) {
  int code = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
  ASSERT_NE(archive, nullptr) << "zip_open: " << code;
  for (const auto& [name, bytes] : members) {
    zip_source_t* source = zip_source_buffer(archive, bytes.data(), bytes.size(), 0);
    ASSERT_NE(source, nullptr);
    const zip_int64_t index = zip_file_add(archive, name.c_str(), source, ZIP_FL_OVERWRITE);
    ASSERT_GE(index, 0) << zip_strerror(archive);
    ASSERT_EQ(zip_set_file_compression(archive, static_cast<zip_uint64_t>(index),
                                       compressed ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0),
              0);
  }
  ASSERT_EQ(zip_close(archive), 0) << zip_strerror(archive);
}

// Random bytes and labels i mod classes.
std::vector<std::uint8_t> random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 random(seed);
  std::vector<std::uint8_t> bytes(n);
  for (auto& b : bytes) b = static_cast<std::uint8_t>(random() % 256);
  return bytes;
}

template <typename T>
std::vector<T> cyclic_labels(std::size_t n, int classes) {
  std::vector<T> labels(n);
  for (std::size_t i = 0; i < n; ++i) labels[i] = static_cast<T>(i % static_cast<std::size_t>(classes));
  return labels;
}

// Population mean and std of `values`, in double.
std::pair<double, double> mean_std(const std::vector<double>& values) {
  double sum = 0;
  for (const double v : values) sum += v;
  const double mean = sum / static_cast<double>(values.size());
  double squares = 0;
  for (const double v : values) squares += (v - mean) * (v - mean);
  return {mean, std::sqrt(squares / static_cast<double>(values.size()))};
}

// A small good dataset: uint8 N x H x W images with int64 labels, test part
// with int32 labels; the header of x_train padded past 127 bytes (a length
// whose low byte reads negative as a signed char).
struct Uint8Arrays {
  static constexpr std::int64_t kTrain = 30, kTest = 9, kH = 5, kW = 6;
  std::vector<std::uint8_t> x_train = random_bytes(kTrain * kH * kW, 1);
  std::vector<std::uint8_t> x_test = random_bytes(kTest * kH * kW, 2);
  std::vector<std::int64_t> y_train = cyclic_labels<std::int64_t>(kTrain, 3);
  std::vector<std::int32_t> y_test = cyclic_labels<std::int32_t>(kTest, 3);

  std::vector<std::pair<std::string, std::string>> files() const {
    return {{"x_train.npy", npy_with_header(npy_dict("|u1", {kTrain, kH, kW}), raw(x_train), 256)},
            {"y_train.npy", npy("<i8", {kTrain}, y_train)},
            {"x_test.npy", npy("|u1", {kTest, kH, kW}, x_test)},
            {"y_test.npy", npy("<i4", {kTest}, y_test)}};
  }
  void write_folder(const std::filesystem::path& dir) const {
    for (const auto& [name, bytes] : files()) pt::write_raw(dir / name, bytes);
  }
};

TEST(NpyDataset, Uint8FolderIsNormalizedWithRecordedTrainStatistics) {
  TempDir dir;
  const Uint8Arrays arrays;
  arrays.write_folder(dir / "digits");
  const auto split = data::load_dataset((dir / "digits").string());
  EXPECT_EQ(split.name, "digits");
  EXPECT_EQ(split.classes, 3);
  EXPECT_EQ(split.channels, 1);
  EXPECT_EQ(split.height, Uint8Arrays::kH);
  EXPECT_EQ(split.width, Uint8Arrays::kW);
  EXPECT_EQ(split.train.images.sizes(), (std::vector<std::int64_t>{30, 1, 5, 6}));
  EXPECT_EQ(split.test.images.sizes(), (std::vector<std::int64_t>{9, 1, 5, 6}));
  EXPECT_TRUE(split.train.labels.equal(torch::tensor(arrays.y_train)));
  const std::vector<std::int64_t> y_test(arrays.y_test.begin(), arrays.y_test.end());
  EXPECT_TRUE(split.test.labels.equal(torch::tensor(y_test)));
  EXPECT_NEAR(split.train.images.mean().item<double>(), 0.0, 1e-5);
  EXPECT_NEAR(split.train.images.std(/*unbiased=*/false).item<double>(), 1.0, 1e-5);

  std::vector<double> pixels;
  for (const auto b : arrays.x_train) pixels.push_back(b / 255.0);
  const auto [mean, sd] = mean_std(pixels);
  ASSERT_EQ(split.normalization.mean.size(), 1u);
  ASSERT_EQ(split.normalization.stddev.size(), 1u);
  EXPECT_NEAR(split.normalization.mean[0], mean, 1e-6);
  EXPECT_NEAR(split.normalization.stddev[0], sd, 1e-6);
  // The test part through the same map: its pixel (8, 4, 5) from the file.
  const double byte = arrays.x_test[8 * 30 + 4 * 6 + 5];
  EXPECT_NEAR(split.test.images[8][0][4][5].item<double>(), (byte / 255.0 - mean) / sd, 1e-5);
}

TEST(NpyDataset, Float32ChannelsAreNormalizedPerChannelInTheirLayout) {
  TempDir dir;
  constexpr std::int64_t kN = 12, kC = 3, kH = 4, kW = 5;
  // Channel c holds values around 10c, so a mixed-up layout shows in the statistics.
  std::mt19937 random(3);
  std::uniform_real_distribution<float> noise(0.0f, 1.0f);
  std::vector<float> x(kN * kC * kH * kW);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 10.0f * static_cast<float>((i / (kH * kW)) % kC) + noise(random);
  std::vector<float> x_test(2 * kC * kH * kW, 0.5f);
  pt::write_raw(dir / "rgb/x_train.npy", npy("<f4", {kN, kC, kH, kW}, x));
  pt::write_raw(dir / "rgb/y_train.npy", npy("|u1", {kN}, cyclic_labels<std::uint8_t>(kN, 4)));
  pt::write_raw(dir / "rgb/x_test.npy", npy("<f4", {2, kC, kH, kW}, x_test));
  pt::write_raw(dir / "rgb/y_test.npy", npy("<u2", {2}, std::vector<std::uint16_t>{3, 0}));
  const auto split = data::load_dataset((dir / "rgb").string());
  EXPECT_EQ(split.classes, 4);
  EXPECT_EQ(split.channels, kC);
  EXPECT_EQ(split.train.images.sizes(), (std::vector<std::int64_t>{kN, kC, kH, kW}));
  EXPECT_TRUE(split.test.labels.equal(torch::tensor({3, 0}, torch::kInt64)));
  ASSERT_EQ(split.normalization.mean.size(), static_cast<std::size_t>(kC));
  for (std::int64_t c = 0; c < kC; ++c) {
    std::vector<double> values;
    for (std::int64_t n = 0; n < kN; ++n)
      for (std::int64_t p = 0; p < kH * kW; ++p) values.push_back(x[((n * kC + c) * kH * kW) + p]);
    const auto [mean, sd] = mean_std(values);
    EXPECT_NEAR(split.normalization.mean[c], mean, 1e-5) << c;
    EXPECT_NEAR(split.normalization.stddev[c], sd, 1e-5) << c;
    const auto channel = split.train.images.select(1, c);
    EXPECT_NEAR(channel.mean().item<double>(), 0.0, 1e-4) << c;
    EXPECT_NEAR(channel.std(false).item<double>(), 1.0, 1e-4) << c;
    EXPECT_NEAR(split.test.images[1][c][2][3].item<double>(), (0.5 - mean) / sd, 1e-4) << c;
  }
}

TEST(NpyDataset, FortranOrderFloat64AndBigEndianArraysReadAsTheirCOrderTwins) {
  TempDir dir;
  constexpr std::int64_t kN = 4, kC = 2, kH = 3, kW = 5;
  // value(n, c, h, w) = 1000n + 100c + 10h + w, exact in float32.
  const auto value = [](std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w) {
    return static_cast<double>(1000 * n + 100 * c + 10 * h + w);
  };
  std::vector<double> c_order, f_order;
  for (std::int64_t n = 0; n < kN; ++n)
    for (std::int64_t c = 0; c < kC; ++c)
      for (std::int64_t h = 0; h < kH; ++h)
        for (std::int64_t w = 0; w < kW; ++w) c_order.push_back(value(n, c, h, w));
  for (std::int64_t w = 0; w < kW; ++w)  // column-major: the first index varies fastest
    for (std::int64_t h = 0; h < kH; ++h)
      for (std::int64_t c = 0; c < kC; ++c)
        for (std::int64_t n = 0; n < kN; ++n) f_order.push_back(value(n, c, h, w));
  const std::vector<std::int16_t> labels{1, 0, 1, 0};
  const std::vector<std::int64_t> shape{kN, kC, kH, kW};
  pt::write_raw(dir / "c/x_train.npy", npy("<f8", shape, c_order));
  pt::write_raw(dir / "c/y_train.npy", npy("<i2", {kN}, labels));
  pt::write_raw(dir / "f/x_train.npy", npy_with_header(npy_dict("<f8", shape, /*fortran=*/true), raw(f_order)));
  pt::write_raw(dir / "f/y_train.npy", npy("<i2", {kN}, labels));
  pt::write_raw(dir / "be/x_train.npy", npy_with_header(npy_dict(">f8", shape), byte_swapped(raw(c_order), 8)));
  pt::write_raw(dir / "be/y_train.npy", npy_with_header(npy_dict(">i2", {kN}), byte_swapped(raw(labels), 2)));
  for (const char* name : {"c", "f", "be"}) {
    const auto split = data::read_npy_dataset(dir / name, name);
    const auto all = torch::cat({split.train.images, split.test.images});
    ASSERT_EQ(all.sizes(), (std::vector<std::int64_t>{kN, kC, kH, kW})) << name;
    ASSERT_EQ(all.scalar_type(), torch::kFloat32) << name;
    EXPECT_EQ(split.classes, 2) << name;
    // Whichever samples were held out: each image is value(n, ., ., .) for its n.
    for (std::int64_t i = 0; i < kN; ++i) {
      const auto n = static_cast<std::int64_t>(all[i][0][0][0].item<double>()) / 1000;
      EXPECT_EQ(all[i][1][2][4].item<double>(), value(n, 1, 2, 4)) << name;
      EXPECT_EQ(all[i][0][1][3].item<double>(), value(n, 0, 1, 3)) << name;
    }
    const auto all_labels = torch::cat({split.train.labels, split.test.labels});
    for (std::int64_t i = 0; i < kN; ++i)
      EXPECT_EQ(all_labels[i].item<std::int64_t>(), labels[all[i][0][0][0].item<std::int64_t>() / 1000]) << name;
  }
}

TEST(NpyDataset, NpzLoadsAsTheFolderDoesStoredOrCompressed) {
  TempDir dir;
  const Uint8Arrays arrays;
  arrays.write_folder(dir / "folder");
  write_npz(dir / "stored.npz", arrays.files(), /*compressed=*/false);
  write_npz(dir / "packed.npz", arrays.files(), /*compressed=*/true);
  const auto folder = data::load_dataset((dir / "folder").string());
  for (const char* name : {"stored", "packed"}) {
    const auto split = data::load_dataset((dir / (std::string(name) + ".npz")).string());
    EXPECT_EQ(split.name, name);
    EXPECT_EQ(split.classes, folder.classes);
    EXPECT_TRUE(torch::equal(split.train.images, folder.train.images)) << name;
    EXPECT_TRUE(torch::equal(split.test.images, folder.test.images)) << name;
    EXPECT_TRUE(torch::equal(split.train.labels, folder.train.labels)) << name;
    EXPECT_TRUE(torch::equal(split.test.labels, folder.test.labels)) << name;
    EXPECT_EQ(split.normalization.mean, folder.normalization.mean) << name;
    EXPECT_EQ(split.normalization.stddev, folder.normalization.stddev) << name;
  }
}

TEST(NpyDataset, WithoutTestArraysAFifthOfEachClassIsHeldOut) {
  TempDir dir;
  // Classes of 7, 3 and 12 samples; sample i's pixel 0 is i, so every sample can be found again.
  const std::vector<std::int64_t> sizes{7, 3, 12};
  std::vector<std::uint8_t> labels;
  for (std::size_t c = 0; c < sizes.size(); ++c) labels.insert(labels.end(), sizes[c], static_cast<std::uint8_t>(c));
  std::shuffle(labels.begin(), labels.end(), std::mt19937(5));
  const auto n = static_cast<std::int64_t>(labels.size());
  std::vector<std::uint8_t> pixels(n * 4, 200);
  for (std::int64_t i = 0; i < n; ++i) pixels[i * 4] = static_cast<std::uint8_t>(i);
  pt::write_raw(dir / "only-train/x_train.npy", npy("|u1", {n, 2, 2}, pixels));
  pt::write_raw(dir / "only-train/y_train.npy", npy("|u1", {n}, labels));

  const auto split = data::read_npy_dataset(dir / "only-train", "only-train");
  // Cumulative rounding over the classes in order: the test part is round(20%) of all.
  std::int64_t seen = 0, held = 0;
  std::vector<std::int64_t> per_class;
  for (const auto size : sizes) {
    seen += size;
    const auto target = std::llround(0.2 * static_cast<double>(seen));
    per_class.push_back(target - held);
    held = target;
  }
  EXPECT_EQ(split.test.size(), held);
  EXPECT_EQ(split.train.size(), n - held);
  EXPECT_EQ(split.classes, 3);
  const auto test_counts = torch::bincount(split.test.labels, {}, 3);
  for (std::size_t c = 0; c < sizes.size(); ++c)
    EXPECT_EQ(test_counts[static_cast<std::int64_t>(c)].item<std::int64_t>(), per_class[c]) << c;
  // Every sample exactly once, with its own label.
  std::vector<int> seen_samples(static_cast<std::size_t>(n), 0);
  for (const auto* part : {&split.train, &split.test})
    for (std::int64_t k = 0; k < part->size(); ++k) {
      const auto i = std::lround(part->images[k][0][0][0].item<double>() * 255.0);
      ASSERT_GE(i, 0);
      ASSERT_LT(i, n);
      ++seen_samples[static_cast<std::size_t>(i)];
      EXPECT_EQ(part->labels[k].item<std::int64_t>(), labels[static_cast<std::size_t>(i)]);
    }
  EXPECT_EQ(std::count(seen_samples.begin(), seen_samples.end(), 1), n);
  // Deterministic: the same split every time.
  const auto again = data::read_npy_dataset(dir / "only-train", "only-train");
  EXPECT_TRUE(torch::equal(again.test.images, split.test.images));
}

TEST(NpyDataset, NormalizationIsRecordedForIdxAndCifarToo) {
  TempDir dir;
  pt::write_idx_folder(dir / "idx", 20, 5, 4, 4, 3);
  const auto idx = data::load_dataset((dir / "idx").string());
  std::vector<double> pixels;
  for (const auto b : pt::pattern_pixels(20, 4, 4)) pixels.push_back(b / 255.0);
  const auto [mean, sd] = mean_std(pixels);
  ASSERT_EQ(idx.normalization.mean.size(), 1u);
  EXPECT_NEAR(idx.normalization.mean[0], mean, 1e-6);
  EXPECT_NEAR(idx.normalization.stddev[0], sd, 1e-6);

  pt::write_raw(dir / "cifar/data_batch_1.bin", pt::cifar_bytes(6));
  pt::write_raw(dir / "cifar/test_batch.bin", pt::cifar_bytes(2));
  const auto cifar = data::load_dataset((dir / "cifar").string());
  ASSERT_EQ(cifar.normalization.mean.size(), 3u);
  ASSERT_EQ(cifar.normalization.stddev.size(), 3u);
  const auto raw_cifar = data::read_cifar_batch(dir / "cifar/data_batch_1.bin").images;
  for (std::int64_t c = 0; c < 3; ++c) {
    const auto channel = raw_cifar.select(1, c).to(torch::kFloat64);
    EXPECT_NEAR(cifar.normalization.mean[c], channel.mean().item<double>(), 1e-6) << c;
    EXPECT_NEAR(cifar.normalization.stddev[c], channel.std(false).item<double>(), 1e-6) << c;
  }
}

// --- bad input: one Error, one line, naming the file and the problem -----------

// A good folder of x_train/y_train (10 float32 images of 3 x 3, labels 0..2)
// in which the test replaces one file.
void write_small(const std::filesystem::path& dir) {
  pt::write_raw(dir / "x_train.npy", npy("<f4", {10, 3, 3}, std::vector<float>(90, 0.25f)));
  pt::write_raw(dir / "y_train.npy", npy("<i8", {10}, cyclic_labels<std::int64_t>(10, 3)));
}

TEST(NpyDataset, ImagesOfAnIntegerTypeAreRefused) {
  TempDir dir;
  write_small(dir.path());
  pt::write_raw(dir / "x_train.npy", npy("<i8", {10, 3, 3}, std::vector<std::int64_t>(90, 1)));
  expect_error([&] { data::load_dataset(dir.path().string()); },
               {"x_train.npy: dtype int64 ('<i8') is not an image type", "float32, float64 or uint8"});
}

TEST(NpyDataset, FloatLabelsAreRefused) {
  TempDir dir;
  write_small(dir.path());
  pt::write_raw(dir / "y_train.npy", npy("<f4", {10}, std::vector<float>(10, 1.0f)));
  expect_error([&] { data::load_dataset(dir.path().string()); },
               {"y_train.npy: dtype float32 ('<f4') is not a label type", "integer"});
}

TEST(NpyDataset, ImageAndLabelCountsMustAgree) {
  TempDir dir;
  write_small(dir.path());
  pt::write_raw(dir / "y_train.npy", npy("<i8", {9}, cyclic_labels<std::int64_t>(9, 3)));
  expect_error([&] { data::load_dataset(dir.path().string()); },
               {"x_train.npy holds 10 images but", "y_train.npy holds 9 labels"});
}

TEST(NpyDataset, NegativeLabelIsRefusedWithItsIndex) {
  TempDir dir;
  write_small(dir.path());
  auto labels = cyclic_labels<std::int8_t>(10, 3);
  labels[4] = -1;
  pt::write_raw(dir / "y_train.npy", npy("|i1", {10}, labels));
  expect_error([&] { data::load_dataset(dir.path().string()); }, {"y_train.npy: label -1 at index 4 is negative"});
}

TEST(NpyDataset, TestLabelBeyondTheTrainingClassesIsRefused) {
  TempDir dir;
  write_small(dir.path());
  pt::write_raw(dir / "x_test.npy", npy("<f4", {4, 3, 3}, std::vector<float>(36, 0.5f)));
  pt::write_raw(dir / "y_test.npy", npy("<u8", {4}, std::vector<std::uint64_t>{0, 2, 3, 1}));
  expect_error([&] { data::load_dataset(dir.path().string()); },
               {"y_test.npy: label 3 at index 2 is out of range", "3 classes"});
}

TEST(NpyDataset, ClassesMustBeFromTwoTo65536) {
  TempDir dir;
  write_small(dir.path());
  pt::write_raw(dir / "y_train.npy", npy("<i8", {10}, std::vector<std::int64_t>(10, 0)));
  expect_error([&] { data::load_dataset(dir.path().string()); }, {"y_train.npy", "at least 2 classes"});
  auto labels = cyclic_labels<std::int32_t>(10, 3);
  labels[7] = 65536;
  pt::write_raw(dir / "y_train.npy", npy("<i4", {10}, labels));
  expect_error([&] { data::load_dataset(dir.path().string()); },
               {"y_train.npy: label 65536 at index 7 is out of range", "at most 65536 classes"});
}

TEST(NpyDataset, TruncatedFileIsRefused) {
  TempDir dir;
  write_small(dir.path());
  auto bytes = npy("<f4", {10, 3, 3}, std::vector<float>(90, 0.25f));
  pt::write_raw(dir / "x_train.npy", bytes.substr(0, bytes.size() - 5));
  expect_error([&] { data::load_dataset(dir.path().string()); },
               {"x_train.npy: truncated", "float32 10x3x3", "355 data bytes"});
  pt::write_raw(dir / "x_train.npy", bytes.substr(0, 40));  // inside the header
  expect_error([&] { data::load_dataset(dir.path().string()); }, {"x_train.npy: truncated", "header"});
}

TEST(NpyDataset, TrailingBytesAreRefused) {
  TempDir dir;
  write_small(dir.path());
  pt::write_raw(dir / "y_train.npy", npy("<i8", {10}, cyclic_labels<std::int64_t>(10, 3)) + "xyz");
  expect_error([&] { data::load_dataset(dir.path().string()); },
               {"y_train.npy: trailing bytes", "int64 10 (80 bytes) but 83 data bytes follow"});
}

TEST(NpyDataset, FileWithoutTheNpyMagicIsRefused) {
  TempDir dir;
  write_small(dir.path());
  pt::write_raw(dir / "x_train.npy", "PK\x03\x04 this is something else");
  expect_error([&] { data::load_dataset(dir.path().string()); }, {"x_train.npy: not an npy file"});
}

TEST(NpyDataset, MalformedHeadersAreRefused) {
  TempDir dir;
  write_small(dir.path());
  const auto data = raw(std::vector<float>(90, 0.25f));
  const auto load = [&] { data::load_dataset(dir.path().string()); };
  auto v4 = npy("<f4", {10, 3, 3}, std::vector<float>(90, 0.25f));
  v4[6] = 4;
  pt::write_raw(dir / "x_train.npy", v4);
  expect_error(load, {"x_train.npy", "version 4.0"});
  pt::write_raw(dir / "x_train.npy", npy_with_header("{'descr': '<f4', 'shape': (10, 3, 3), }", data));
  expect_error(load, {"x_train.npy: bad npy header", "no 'fortran_order'"});
  pt::write_raw(dir / "x_train.npy", npy_with_header(npy_dict("|O", {10, 3, 3}), data));
  expect_error(load, {"x_train.npy: bad npy header"});
  pt::write_raw(dir / "x_train.npy", npy_with_header(npy_dict("<f4", {10, 3, 3}), data).replace(40, 1, "\t"));
  expect_error(load, {"x_train.npy: bad npy header", "not printable ASCII"});
  // A dtype whose item size runs to 100,000 digits: std::regex (inside xtensor) would overflow the stack.
  pt::write_raw(dir / "x_train.npy", npy_with_header(npy_dict("<f" + std::string(100000, '4'), {10, 3, 3}), data));
  auto huge = pt::read_bytes(dir / "x_train.npy");
  huge[6] = 2;  // a header this long needs version 2.0's 4-byte length
  const std::size_t length = huge.size() - data.size() - 10;
  huge.insert(10, std::string(2, '\0'));
  for (int b = 0; b < 4; ++b) huge[8 + b] = static_cast<char>((length >> (8 * b)) & 0xff);
  pt::write_raw(dir / "x_train.npy", huge);
  expect_error(load, {"x_train.npy: bad npy header", "more than 20 digits"});
  pt::write_raw(dir / "x_train.npy", npy_with_header(npy_dict("<f4", {10, 0, 3}), ""));
  expect_error(load, {"x_train.npy: dimension 1 of its shape is 0"});
  pt::write_raw(dir / "x_train.npy", npy_with_header(npy_dict("<f4", {3, 3}), raw(std::vector<float>(9))));
  expect_error(load, {"x_train.npy: shape 3x3 is not images"});
}

TEST(NpyDataset, CorruptNpzIsRefused) {
  TempDir dir;
  pt::write_raw(dir / "junk.npz", "this is not a zip archive at all");
  expect_error([&] { data::load_dataset((dir / "junk.npz").string()); },
               {"junk.npz", "not a valid .npz (zip) archive"});

  // A stored member with one data byte changed fails its CRC.
  const Uint8Arrays arrays;
  write_npz(dir / "good.npz", arrays.files(), /*compressed=*/false);
  auto bytes = pt::read_bytes(dir / "good.npz");
  const auto at = bytes.find("\x93NUMPY");  // x_train.npy, the first member
  ASSERT_NE(at, std::string::npos);
  bytes[at + 300] = static_cast<char>(bytes[at + 300] ^ 0x5a);
  pt::write_raw(dir / "flipped.npz", bytes);
  expect_error([&] { data::load_dataset((dir / "flipped.npz").string()); },
               {"flipped.npz, member x_train.npy", "CRC"});

  // Cut short: no central directory.
  pt::write_raw(dir / "cut.npz", bytes.substr(0, bytes.size() / 2));
  expect_error([&] { data::load_dataset((dir / "cut.npz").string()); }, {"cut.npz", "not a valid .npz (zip) archive"});
}

TEST(NpyDataset, NpzWithoutYTrainIsRefused) {
  TempDir dir;
  auto files = Uint8Arrays().files();
  files.erase(files.begin() + 1);  // y_train.npy
  write_npz(dir / "partial.npz", files, /*compressed=*/true);
  expect_error([&] { data::load_dataset((dir / "partial.npz").string()); }, {"partial.npz", "no y_train.npy"});
}

TEST(NpyDataset, XTestWithoutYTestIsRefused) {
  TempDir dir;
  write_small(dir.path());
  pt::write_raw(dir / "x_test.npy", npy("<f4", {4, 3, 3}, std::vector<float>(36, 0.5f)));
  expect_error([&] { data::load_dataset(dir.path().string()); },
               {dir.path().string(), "x_test.npy without y_test.npy", "both or neither"});
}

TEST(NpyDataset, TrainAndTestImagesMustHaveOneShape) {
  TempDir dir;
  write_small(dir.path());
  pt::write_raw(dir / "x_test.npy", npy("<f4", {2, 1, 4, 4}, std::vector<float>(32, 0.5f)));
  pt::write_raw(dir / "y_test.npy", npy("<i8", {2}, std::vector<std::int64_t>{0, 1}));
  expect_error([&] { data::load_dataset(dir.path().string()); },
               {"x_test.npy: images are 1x4x4", "x_train.npy holds 1x3x3"});
}

TEST(NpyDataset, AFileOtherThanNpzIsNotADataset) {
  TempDir dir;
  pt::write_file(dir / "arrays.txt", "x");
  expect_error([&] { data::load_dataset((dir / "arrays.txt").string()); }, {"arrays.txt", "not an .npz archive"});
}

}  // namespace
