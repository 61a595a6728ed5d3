#include <packtrain/data/loader.hpp>
#include <packtrain/scheduler/error.hpp>

#include <gtest/gtest.h>
#include <sched.h>
#include <torch/torch.h>

#include <filesystem>
#include <set>
#include <thread>
#include <vector>

namespace {

namespace data = packtrain::data;
using data::BatchLoader;
using data::LoaderOptions;

// Image i is filled with the value i, its label is i mod 10: a batch tells which samples it holds.
data::Dataset numbered(std::int64_t n, std::int64_t c = 1, std::int64_t side = 4) {
  auto images = torch::arange(n, torch::kFloat32).view({n, 1, 1, 1}).expand({n, c, side, side}).contiguous();
  return data::Dataset{images, torch::arange(n, torch::kInt64).remainder(10)};
}

// The indices of every batch of one epoch, and their sizes.
std::vector<at::Tensor> epoch_batches(BatchLoader& loader, std::int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<at::Tensor> batches;
  while (auto batch = loader.next()) batches.push_back(batch->indices);
  return batches;
}

TEST(BatchLoader, EveryIndexExactlyOncePerEpochWithPartialLastBatch) {
  const auto part = numbered(100);
  const auto view = torch::arange(3, 100, 2, torch::kInt64);  // 49 samples
  for (const bool prefetch : {true, false}) {
    BatchLoader loader(part, view, LoaderOptions().batch_size(8).seed(5).prefetch(prefetch).prefetch_on_one_core(true));
    loader.start_epoch(0);
    EXPECT_EQ(loader.prefetching(), prefetch);
    EXPECT_EQ(loader.batches_per_epoch(), 7);
    for (std::int64_t epoch = 0; epoch < 3; ++epoch) {
      const auto batches = epoch_batches(loader, epoch);
      ASSERT_EQ(batches.size(), 7u);
      EXPECT_EQ(batches.back().size(0), 1);  // 49 = 6 x 8 + 1: the last partial batch is kept
      const auto all = std::get<0>(torch::cat(batches).sort());
      EXPECT_TRUE(all.equal(view)) << "epoch " << epoch << " prefetch " << prefetch;
    }
  }
}

TEST(BatchLoader, BatchesHoldTheImagesAndLabelsOfTheirIndices) {
  const auto part = numbered(50);
  BatchLoader loader(part, torch::arange(50, torch::kInt64), LoaderOptions().batch_size(16).seed(1));
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    EXPECT_TRUE(batch->images.select(1, 0).select(1, 2).select(1, 3).equal(batch->indices.to(torch::kFloat32)));
    EXPECT_TRUE(batch->labels.equal(batch->indices.remainder(10)));
  }
}

TEST(BatchLoader, OrderIsDrawnFromSeedAndEpochAlone) {
  const auto part = numbered(64);
  const auto view = torch::arange(64, torch::kInt64);
  BatchLoader a(part, view, LoaderOptions().batch_size(10).seed(9).prefetch(true).prefetch_on_one_core(true));
  BatchLoader b(part, view, LoaderOptions().batch_size(10).seed(9).prefetch(false));
  BatchLoader other_seed(part, view, LoaderOptions().batch_size(10).seed(10));
  // b visits the epochs in another order: epoch 2's batches do not depend on what came before.
  const auto b2 = torch::cat(epoch_batches(b, 2));
  const auto b0 = torch::cat(epoch_batches(b, 0));
  const auto a0 = torch::cat(epoch_batches(a, 0));
  const auto a1 = torch::cat(epoch_batches(a, 1));
  const auto a2 = torch::cat(epoch_batches(a, 2));
  EXPECT_TRUE(a0.equal(b0));
  EXPECT_TRUE(a2.equal(b2));
  EXPECT_FALSE(a0.equal(a1)) << "the order must be reshuffled every epoch";
  EXPECT_FALSE(a0.equal(torch::cat(epoch_batches(other_seed, 0))));
  EXPECT_FALSE(a0.equal(view)) << "shuffled";
}

TEST(BatchLoader, WithoutShuffleFollowsTheView) {
  const auto view = torch::tensor({7, 3, 5, 1}, torch::kInt64);
  BatchLoader loader(numbered(10), view, LoaderOptions().batch_size(3).shuffle(false));
  EXPECT_TRUE(torch::cat(epoch_batches(loader, 4)).equal(view));
}

TEST(BatchLoader, StartingAnEpochMidwayDropsTheRest) {
  const auto view = torch::arange(30, torch::kInt64);
  BatchLoader loader(numbered(30), view, LoaderOptions().batch_size(4).seed(2).prefetch_on_one_core(true));
  loader.start_epoch(0);
  ASSERT_TRUE(loader.next().has_value());  // one batch, while the next is being gathered
  const auto fresh = torch::cat(epoch_batches(loader, 1));
  BatchLoader again(numbered(30), view, LoaderOptions().batch_size(4).seed(2));
  EXPECT_TRUE(fresh.equal(torch::cat(epoch_batches(again, 1))));
}

TEST(BatchLoader, AugmentationCropsAndFlipsDeterministically) {
  const std::int64_t n = 32;
  // Distinct pixel values, so a crop or flip shows in the data.
  auto images = torch::rand({n, 3, 32, 32}, at::make_generator<at::CPUGeneratorImpl>(4)) + 1.0;
  data::Dataset part{images, torch::zeros({n}, torch::kInt64)};
  const auto view = torch::arange(n, torch::kInt64);
  auto run = [&](std::uint64_t seed) {
    BatchLoader loader(part, view, LoaderOptions().batch_size(n).seed(seed).augment(true).shuffle(false));
    loader.start_epoch(0);
    return loader.next()->images;
  };
  const auto a = run(3);
  EXPECT_TRUE(a.equal(run(3)));
  EXPECT_FALSE(a.equal(run(4)));
  EXPECT_EQ(a.sizes(), images.sizes());
  int unchanged = 0, flipped_only = 0, shifted = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    if (a[i].equal(images[i])) ++unchanged;
    else if (a[i].equal(images[i].flip({2}))) ++flipped_only;
    else ++shifted;
    // Every output pixel is either padding (0) or one of the image's own pixels.
    const auto own = torch::cat({images[i].flatten(), images[i].flip({2}).flatten(), torch::zeros({1})});
    EXPECT_TRUE(torch::isin(a[i].flatten(), own).all().item<bool>());
  }
  EXPECT_EQ(unchanged + flipped_only + shifted, n);
  EXPECT_GT(shifted, n / 2);  // 80 of 81 crop offsets move the image
}

std::set<int> thread_ids() {
  std::set<int> ids;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) ids.insert(std::stoi(entry.path().filename()));
  return ids;
}

// Runs `body` in a thread pinned to one allowed CPU, as the executor pins a one-core job.
template <typename Body>
void on_one_cpu(Body&& body) {
  std::thread job([&] {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    ASSERT_EQ(sched_getaffinity(0, sizeof allowed, &allowed), 0);
    int cpu = CPU_SETSIZE - 1;
    while (!CPU_ISSET(cpu, &allowed)) --cpu;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
    body(one);
  });
  job.join();
}

// The threads that appeared since `before`, with their affinity masks.
std::vector<cpu_set_t> new_threads(const std::set<int>& before) {
  std::vector<cpu_set_t> masks;
  for (const int tid : thread_ids()) {
    if (before.count(tid)) continue;
    cpu_set_t mask;
    CPU_ZERO(&mask);
    if (sched_getaffinity(tid, sizeof mask, &mask) == 0) masks.push_back(mask);
  }
  return masks;
}

TEST(BatchLoader, PrefetchThreadInheritsTheJobThreadsAffinity) {
  on_one_cpu([](const cpu_set_t& one) {
    const auto before = thread_ids();
    BatchLoader loader(numbered(64), torch::arange(64, torch::kInt64),
                       LoaderOptions().batch_size(8).prefetch(true).prefetch_on_one_core(true));
    loader.start_epoch(0);
    ASSERT_TRUE(loader.next().has_value());
    EXPECT_TRUE(loader.prefetching());
    const auto helpers = new_threads(before);
    EXPECT_EQ(helpers.size(), 1u) << "prefetch runs on one helper thread";
    for (const auto& mask : helpers) EXPECT_TRUE(CPU_EQUAL(&mask, &one)) << "a helper may run outside the job's core";
  });
}

TEST(BatchLoader, OneCpuJobGathersInlineByDefault) {
  on_one_cpu([](const cpu_set_t&) {
    const auto before = thread_ids();
    BatchLoader loader(numbered(64), torch::arange(64, torch::kInt64), LoaderOptions().batch_size(8));
    loader.start_epoch(0);
    std::int64_t batches = 0;
    while (loader.next()) ++batches;
    EXPECT_EQ(batches, 8);
    EXPECT_FALSE(loader.prefetching());
    EXPECT_TRUE(new_threads(before).empty());
  });
}

TEST(BatchLoader, BadArgumentsAreErrors) {
  const auto part = numbered(10);
  EXPECT_THROW(BatchLoader(part, torch::arange(10, torch::kInt64), LoaderOptions().batch_size(0)), packtrain::Error);
  EXPECT_THROW(BatchLoader(part, torch::tensor({0, 10}, torch::kInt64)), packtrain::Error);
  EXPECT_THROW(BatchLoader(part, torch::empty({0}, torch::kInt64)), packtrain::Error);
  EXPECT_THROW(BatchLoader(part, torch::arange(10, torch::kInt64), LoaderOptions().augment(true)), packtrain::Error);
}

}  // namespace
