// bench_dataparallel: what a job's second core is worth, per zoo model and
// global batch, measured side by side in one run (variants alternate within
// each round, so drift on a shared machine hits them alike; medians):
//
//   plain      train::Trainer on 1 core, 1 intra-op thread (today's one-core job)
//   1 rep      DataParallelTrainer, 1 replica (micro-batches of --micro-batch)
//   2 rep      DataParallelTrainer, 2 replicas pinned to cores 0 and 1
//   2 thr      train::Trainer with 2 intra-op threads (--parallelism threads)
//   2 jobs     two independent 1-replica trainers, one per core: the ceiling
//
// Samples/s of each, the ratios to `1 rep`, and the reduction share of the
// 2-replica step (replica-seconds reducing or waiting / all). Target on 2
// cores: 2 rep >= 1.8x 1 rep for lenet5 and mlp at batch 256. The table
// decides --parallelism's default per model (default_parallelism).
//
// Usage: bench_dataparallel [--models a,b] [--batches 64,256] [--rounds R] [--micro-batch M] [--seconds S]
//        (defaults: every zoo model, batches 64 and 256, 3 rounds, micro-batch 32, about S = 1 s of
//        one-core work per measurement, at least one step)
#include <packtrain/data/dataset.hpp>
#include <packtrain/dataparallel/data_parallel.hpp>
#include <packtrain/models/models.hpp>
#include <packtrain/scheduler/executor.hpp>
#include <packtrain/train/trainer.hpp>

#include <common/args.hpp>
#include <common/stats.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace packtrain;
using Clock = std::chrono::steady_clock;

using bench::median;
using bench::split_commas;

struct Setup {
  std::shared_ptr<const data::DatasetSplit> data;
  std::string model;
  std::int64_t batch = 64;
  std::int64_t micro = 32;
  std::int64_t samples = 0;
};

models::ModelOptions shape_of(const Setup& s) {
  const auto& d = *s.data;
  return {.channels = d.channels, .height = d.height, .width = d.width, .classes = d.classes, .seed = 3};
}

train::TrainData train_data(const Setup& s) {
  auto t = train::TrainData::train_test(*s.data);
  t.train_idx = t.train_idx.slice(0, 0, s.samples);
  t.val_idx = t.val_idx.slice(0, 0, 0);  // no validation: training throughput only
  return t;
}

train::TrainOptions train_options(const Setup& s) {
  return train::TrainOptions().epochs(1).batch_size(s.batch).seed(3).prefetch(false);
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// train::Trainer on the calling thread with `threads` intra-op threads.
double plain(const Setup& s, int threads) {
  pin_current_thread(threads == 1 ? std::vector<int>{0} : std::vector<int>{0, 1});
  train::Trainer trainer(models::make_model(s.model, shape_of(s)), train_options(s).threads(threads));
  const auto start = Clock::now();
  trainer.fit(train_data(s));
  return static_cast<double>(s.samples) / seconds_since(start);
}

struct Replicated {
  double samples_per_s = 0;
  double sync_share = 0;
};

// `replicas` replicas: the calling thread on core 0, helpers on 1, 2, ...
Replicated replicated(const Setup& s, int replicas) {
  pin_current_thread({0});
  auto trainer = std::make_shared<dataparallel::DataParallelTrainer>(
      shape_of(s),
      dataparallel::DataParallelOptions().model(s.model).train(train_options(s)).micro_batch(s.micro).max_replicas(replicas));
  std::vector<std::unique_ptr<CoreLease>> leases;
  std::vector<std::thread> helpers;
  for (int h = 1; h < replicas; ++h) {
    leases.push_back(std::make_unique<CoreLease>(h));
    helpers.emplace_back([&trainer, h, &lease = *leases.back()] {
      pin_current_thread({h});
      trainer->help(lease);
    });
  }
  const auto result = trainer->fit(train_data(s));
  for (auto& l : leases) l->ask_to_return();
  for (auto& t : helpers) t.join();
  const auto& cost = result.costs.at(0);
  return {static_cast<double>(s.samples) / cost.seconds, cost.sync_share};
}

// Two independent one-replica trainers, one per core, each on all the samples.
double two_jobs(const Setup& s) {
  std::vector<std::thread> jobs;
  const auto start = Clock::now();
  for (int core = 0; core < 2; ++core)
    jobs.emplace_back([&s, core] {
      pin_current_thread({core});
      dataparallel::DataParallelTrainer trainer(
          shape_of(s), dataparallel::DataParallelOptions().model(s.model).train(train_options(s)).micro_batch(s.micro));
      trainer.fit(train_data(s));
    });
  for (auto& t : jobs) t.join();
  return 2.0 * static_cast<double>(s.samples) / seconds_since(start);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> model_list = models::model_names();
  std::vector<std::int64_t> batches = {64, 256};
  int rounds = 3;
  std::int64_t micro = dataparallel::kDefaultMicroBatch;
  double seconds = 1.0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_dataparallel: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--models") {
      model_list = split_commas(value());
    } else if (arg == "--batches") {
      batches.clear();
      for (const auto& b : split_commas(value())) batches.push_back(std::atoll(b.c_str()));
    } else if (arg == "--rounds") {
      rounds = std::max(1, std::atoi(value().c_str()));
    } else if (arg == "--micro-batch") {
      micro = std::atoll(value().c_str());
    } else if (arg == "--seconds") {
      seconds = std::atof(value().c_str());
    } else {
      std::fprintf(stderr, "usage: bench_dataparallel [--models a,b] [--batches 64,256] [--rounds R] [--micro-batch M] [--seconds S]\n");
      return 2;
    }
  }
  const unsigned cores = std::thread::hardware_concurrency();
  if (cores < 2) std::fprintf(stderr, "bench_dataparallel: %u core(s): the 2-core figures share one\n", cores);
  const auto data = data::shared_dataset("fashion-mnist");
  // Measured one-core speed of the MLP's step, for sizing the runs (FLOP/s).
  constexpr double kCoreFlops = 2.0e10;
  std::printf("bench_dataparallel: samples/s on cores 0 and 1, micro-batch %lld, %d round(s), medians\n",
              static_cast<long long>(micro), rounds);
  std::printf("%-12s %5s %7s | %9s %9s %9s %9s %9s | %6s %6s %6s %6s | %6s\n", "model", "batch", "samples", "plain",
              "1 rep", "2 rep", "2 thr", "2 jobs", "2rep/1", "2thr/1", "jobs/1", "1rep/pl", "sync");
  for (const auto& model : model_list) {
    for (const auto batch : batches) {
      Setup s{data, model, batch, std::min(micro, batch), 0};
      const double flops = 3.0 * models::estimate_flops(model, shape_of(s));
      const auto steps = std::max<std::int64_t>(2, static_cast<std::int64_t>(seconds * kCoreFlops / flops) / batch);
      s.samples = std::min<std::int64_t>(steps * batch, data->train.size());
      std::vector<double> p, one, two, thr, jobs, share;
      for (int r = 0; r < rounds; ++r) {
        p.push_back(plain(s, 1));
        one.push_back(replicated(s, 1).samples_per_s);
        const auto rep2 = replicated(s, 2);
        two.push_back(rep2.samples_per_s);
        share.push_back(rep2.sync_share);
        thr.push_back(plain(s, 2));
        jobs.push_back(two_jobs(s));
      }
      const double base = median(one);
      std::printf("%-12s %5lld %7lld | %9.0f %9.0f %9.0f %9.0f %9.0f | %5.2fx %5.2fx %5.2fx %5.2fx | %5.1f%%\n",
                  model.c_str(), static_cast<long long>(batch), static_cast<long long>(s.samples), median(p), base,
                  median(two), median(thr), median(jobs), median(two) / base, median(thr) / base, median(jobs) / base,
                  base / median(p), 100.0 * median(share));
      std::fflush(stdout);
    }
  }
  return 0;
}
