// Data-parallel replicas: the same bits on 1, 2 and 3 replicas and with
// replicas joining and leaving mid-step; the micro-batches' summed gradient
// is the global batch's; a throwing replica fails its job; options.
#include <packtrain/data/loader.hpp>
#include <packtrain/dataparallel/data_parallel.hpp>
#include <packtrain/dataparallel/gang.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/job_runner.hpp>

#include "common/test_util.hpp"
#include "scheduler/runner_fixture.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

using namespace packtrain;
using namespace packtrain::dataparallel;
using namespace std::chrono_literals;
using packtrain::testing::kPatience;

namespace {

std::shared_ptr<const data::DatasetSplit> fashion() { return data::shared_dataset("fashion-mnist"); }

models::ModelOptions shape_of(const data::DatasetSplit& d, std::uint64_t seed, double width = 1.0) {
  return {.channels = d.channels, .height = d.height, .width = d.width, .classes = d.classes,
          .width_multiplier = width, .seed = seed};
}

// A few hundred training samples, validated on 300 test samples: seconds.
train::TrainData small_data(const data::DatasetSplit& d, std::int64_t train_samples) {
  auto t = train::TrainData::train_test(d);
  t.train_idx = t.train_idx.slice(0, 0, train_samples);
  t.val_idx = t.val_idx.slice(0, 0, 300);
  return t;
}

// 2 epochs of 5 steps of 4 micro-batches, the last step short (280 samples:
// a full micro-batch and a partial one).
DataParallelOptions small_options(const std::string& model) {
  return DataParallelOptions()
      .model(model)
      .train(train::TrainOptions().epochs(2).batch_size(64).lr(0.05).seed(11))
      .micro_batch(16);
}

struct TrainedRun {
  DataParallelResult result;
  std::shared_ptr<models::Model> model;
  std::set<int> replicas_seen;  // seats that computed micro-batches
};

// Trains with `replicas` replicas: the test's thread leads, replicas - 1
// threads help. In the first step every replica blocks in its first
// micro-batch until all of them have one, so each one really computes.
TrainedRun train_with(int replicas, DataParallelOptions options, double width = 1.0, std::int64_t samples = 280) {
  const auto data = fashion();
  auto trainer = std::make_shared<DataParallelTrainer>(shape_of(*data, 5, width), options.max_replicas(replicas));
  std::mutex mutex;
  std::condition_variable all_in;
  TrainedRun run;
  DataParallelCallbacks callbacks;
  callbacks.on_micro_batch = [&](std::int64_t step, int, int replica) {
    std::unique_lock lock(mutex);
    run.replicas_seen.insert(replica);
    if (step != 1) return;
    all_in.notify_all();
    if (!all_in.wait_for(lock, kPatience, [&] { return static_cast<int>(run.replicas_seen.size()) == replicas; }))
      ADD_FAILURE() << "not every replica got a micro-batch of the first step";
  };
  std::vector<std::unique_ptr<CoreLease>> leases;
  std::vector<std::thread> helpers;
  for (int h = 1; h < replicas; ++h) {
    leases.push_back(std::make_unique<CoreLease>(h));
    helpers.emplace_back([&trainer, &lease = *leases.back()] { trainer->help(lease); });
  }
  run.result = trainer->fit(small_data(*data, samples), callbacks);
  for (auto& l : leases) l->ask_to_return();
  for (auto& t : helpers) t.join();
  run.model = trainer->model();
  return run;
}

TrainedRun train_on(int replicas, const std::string& model, double width = 1.0, std::int64_t samples = 280) {
  return train_with(replicas, small_options(model), width, samples);
}

void expect_same_bits(const TrainedRun& a, const TrainedRun& b, const std::string& what) {
  ASSERT_EQ(a.result.train.status, JobStatus::done) << what;
  ASSERT_EQ(b.result.train.status, JobStatus::done) << what;
  const auto pa = a.model->named_parameters(), pb = b.model->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << what << ": parameter " << p.key();
  const auto ba = a.model->named_buffers(), bb = b.model->named_buffers();
  for (const auto& x : ba) EXPECT_TRUE(torch::equal(x.value(), bb[x.key()])) << what << ": buffer " << x.key();
  const auto& ha = a.result.train.history;
  const auto& hb = b.result.train.history;
  ASSERT_EQ(ha.size(), hb.size()) << what;
  for (std::size_t e = 0; e < ha.size(); ++e) {
    // Exact: the same bits, not nearly the same figures.
    EXPECT_EQ(ha[e].train_loss, hb[e].train_loss) << what << ", epoch " << e + 1;
    EXPECT_EQ(ha[e].val_loss, hb[e].val_loss) << what << ", epoch " << e + 1;
    EXPECT_EQ(ha[e].val_top1, hb[e].val_top1) << what << ", epoch " << e + 1;
    EXPECT_EQ(ha[e].val_top5, hb[e].val_top5) << what << ", epoch " << e + 1;
    EXPECT_EQ(ha[e].lr, hb[e].lr) << what << ", epoch " << e + 1;
  }
}

void expect_same_bits_on_1_2_3_replicas(const std::string& model, double width = 1.0, std::int64_t samples = 280) {
  const auto one = train_on(1, model, width, samples);
  EXPECT_EQ(one.result.train.steps, 2 * ((samples + 63) / 64));
  EXPECT_TRUE(std::isfinite(one.result.train.train_loss));
  // The evaluation spread over the replicas is train::evaluate's, bit for bit.
  const auto val = small_data(*fashion(), samples);
  const auto direct = train::evaluate(*one.model, val.val, val.val_idx);
  EXPECT_EQ(direct.loss, one.result.train.val.loss);
  EXPECT_EQ(direct.top1, one.result.train.val.top1);
  EXPECT_EQ(direct.top5, one.result.train.val.top5);
  for (int k = 2; k <= 3; ++k) {
    const auto many = train_on(k, model, width, samples);
    EXPECT_EQ(static_cast<int>(many.replicas_seen.size()), k);
    EXPECT_EQ(many.result.peak_replicas, k);
    expect_same_bits(one, many, model + " on " + std::to_string(k) + " replicas");
  }
  if (model == "mobilenetv2") {
    // The BatchNorm model's running statistics did move (and were compared above).
    const auto fresh = models::make_model(model, shape_of(*fashion(), 5, width));
    bool moved = false;
    for (const auto& b : one.model->named_buffers())
      if (b.value().is_floating_point() && !torch::equal(b.value(), fresh->named_buffers()[b.key()])) moved = true;
    EXPECT_TRUE(moved) << "the running statistics were never updated";
  }
}

// A gang of one: its exchanges copy this member's bytes (what MPI gives a
// world of one), so a run through the gang's buckets, hooks and headers can
// be held against the plain trainer's bits in one process.
class GangOfOne final : public Gang {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allgather(const void* mine, std::size_t bytes, void* all) override {
    std::memcpy(all, mine, bytes);
    ++exchanges;
  }
  std::atomic<int> exchanges{0};
};

}  // namespace

// Gradient buckets of 1 KiB (lenet5 in dozens) summed and sent from
// autograd's hooks during the last micro-batch's backward: the plain
// trainer's bits on 1, 2 and 3 replicas, and with one replica every step's
// first bucket leaves before the compute ends.
TEST(DataParallel, AGangsBucketsAndOverlapChangeNoBit) {
  const auto plain = train_on(1, "lenet5");
  for (const bool overlap : {true, false})
    for (int k = 1; k <= 3; ++k) {
      const std::string what = std::string(overlap ? "overlap" : "no overlap") + ", " + std::to_string(k) + " replicas";
      auto gang = std::make_shared<GangOfOne>();
      std::vector<StepTiming> steps;
      auto options = small_options("lenet5").gang(gang).bucket_cap_mb(0.001).overlap(overlap);
      const auto data = fashion();
      auto trainer = std::make_shared<DataParallelTrainer>(shape_of(*data, 5), options.max_replicas(k));
      DataParallelCallbacks callbacks;
      callbacks.on_steps = [&](const std::vector<StepTiming>& t) { steps.insert(steps.end(), t.begin(), t.end()); };
      std::vector<std::unique_ptr<CoreLease>> leases;
      std::vector<std::thread> helpers;
      for (int h = 1; h < k; ++h) {
        leases.push_back(std::make_unique<CoreLease>(h));
        helpers.emplace_back([&trainer, &lease = *leases.back()] { trainer->help(lease); });
      }
      TrainedRun run;
      run.result = trainer->fit(small_data(*data, 280), callbacks);
      for (auto& l : leases) l->ask_to_return();
      for (auto& t : helpers) t.join();
      run.model = trainer->model();
      expect_same_bits(plain, run, what);
      ASSERT_EQ(steps.size(), 10u) << what;
      // 61,706 floats in buckets of at most 1 KiB and at least one parameter:
      // more exchanges than steps, evaluations, start and end (12 + 2).
      EXPECT_GT(gang->exchanges.load(), 10 * 3 + 4) << what;
      if (k == 1)
        for (const auto& t : steps) {
          if (overlap) {
            EXPECT_LT(t.sync_begin, t.compute_end) << what << ", step " << t.step;
          } else {
            EXPECT_GE(t.sync_begin, t.compute_end) << what << ", step " << t.step;
          }
        }
    }
}

TEST(DataParallel, MlpIsTheSameBitsOn1And2And3Replicas) { expect_same_bits_on_1_2_3_replicas("mlp"); }

TEST(DataParallel, Lenet5IsTheSameBitsOn1And2And3Replicas) { expect_same_bits_on_1_2_3_replicas("lenet5"); }

// BatchNorm: per-micro-batch statistics, running statistics averaged by the tree.
TEST(DataParallel, ABatchNormModelIsTheSameBitsOn1And2And3Replicas) {
  // 76 samples: a full step and one of a partial micro-batch (12 samples) an epoch.
  expect_same_bits_on_1_2_3_replicas("mobilenetv2", 0.25, 76);
}

// Replicas join and leave in the middle of steps, driven from the hooks:
// helper A joins during step 2 and takes micro-batches the leader was dealt;
// helper B joins during step 3, is dealt a share of step 4 and is asked back
// on its first micro-batch there, so the rest of its share is taken by the
// others; A is asked back during step 7. The bits are those of one replica.
TEST(DataParallel, ReplicasJoiningAndLeavingMidStepChangeNoBit) {
  const auto data = fashion();
  const auto one = train_on(1, "lenet5");
  auto trainer = std::make_shared<DataParallelTrainer>(shape_of(*data, 5), small_options("lenet5").max_replicas(3));
  CoreLease lease_a(1), lease_b(2);
  std::thread a, b;
  std::mutex mutex;
  std::condition_variable changed;
  std::map<std::pair<std::int64_t, int>, int> computed;  // (step, micro-batch) -> times
  std::map<std::int64_t, std::set<int>> replicas_of_step;
  int slot_a = -1, slot_b = -1;
  bool a_started = false, b_started = false;
  std::int64_t b_in_step4 = 0;
  const auto wait = [&](std::unique_lock<std::mutex>& lock, auto predicate, const char* what) {
    if (!changed.wait_for(lock, kPatience, predicate)) ADD_FAILURE() << "waited in vain for " << what;
  };
  DataParallelCallbacks callbacks;
  callbacks.on_micro_batch = [&](std::int64_t step, int index, int replica) {
    std::unique_lock lock(mutex);
    ++computed[{step, index}];
    replicas_of_step[step].insert(replica);
    if (step == 2 && replica != 0 && slot_a < 0) slot_a = replica;
    if (step == 3 && replica != 0 && replica != slot_a && slot_b < 0) slot_b = replica;
    const bool b_first_of_step4 = step == 4 && replica == slot_b && b_in_step4++ == 0;
    changed.notify_all();
    if (step == 2 && !a_started) {
      // The leader, on its first micro-batch of step 2: A joins and takes
      // one of the leader's while the leader holds this one.
      a_started = true;
      a = std::thread([&] { trainer->help(lease_a); });
      wait(lock, [&] { return slot_a >= 0; }, "A's first micro-batch");
    } else if (step == 3 && replica == slot_a && !b_started) {
      b_started = true;
      b = std::thread([&] { trainer->help(lease_b); });
    }
    if (step == 3 && slot_b < 0) wait(lock, [&] { return slot_b >= 0; }, "B's first micro-batch");
    // Step 4 is dealt to the three: the others hold one each until B has
    // one of its share; B is asked back on it and leaves the rest.
    if (b_first_of_step4) lease_b.ask_to_return();
    if (step == 4 && replica != slot_b) wait(lock, [&] { return b_in_step4 > 0; }, "B's micro-batch of step 4");
    if (step == 7 && replica == slot_a) lease_a.ask_to_return();
  };
  const auto result = trainer->fit(small_data(*data, 280), callbacks);
  lease_a.ask_to_return();
  lease_b.ask_to_return();
  if (a.joinable()) a.join();
  if (b.joinable()) b.join();

  TrainedRun many{result, trainer->model(), {}};
  expect_same_bits(one, many, "replicas coming and going");
  for (const auto& [key, times] : computed) EXPECT_EQ(times, 1) << "step " << key.first << " micro-batch " << key.second;
  EXPECT_EQ(computed.size(), 36u);  // per epoch, 4 steps of 4 micro-batches and one of 2
  EXPECT_GE(slot_a, 1);
  EXPECT_GE(slot_b, 1);
  EXPECT_EQ(b_in_step4, 1) << "B was asked back on its first micro-batch of step 4 and took no other";
  EXPECT_GE(replicas_of_step[4].size(), 2u) << "B's share of step 4 was taken by the others";
  EXPECT_EQ(result.peak_replicas, 3);
}

// The tree's sum of scaled micro-batch gradients is the gradient of the
// global batch's mean loss, computed at once by one model.
TEST(DataParallel, TheSummedGradientIsTheFullBatchGradient) {
  const auto data = fashion();
  for (const std::string model : {"mlp", "lenet5"}) {
    // One step: 64 samples in micro-batches of 16, no weight decay (SGD
    // would otherwise fold it into the gradient it reads).
    auto options = small_options(model).train(
        train::TrainOptions().epochs(1).batch_size(64).lr(0.05).weight_decay(0.0).schedule(train::Schedule::none).seed(11));
    DataParallelTrainer trainer(shape_of(*data, 5), options);
    std::vector<at::Tensor> summed;
    DataParallelCallbacks callbacks;
    callbacks.after_step = [&](torch::nn::Module& m) {
      for (auto& p : m.parameters()) summed.push_back(p.grad().clone());
    };
    trainer.fit(small_data(*data, 64), callbacks);
    ASSERT_FALSE(summed.empty());

    auto reference = models::make_model(model, shape_of(*data, 5));  // the same initial weights
    data::BatchLoader loader(data->train, data::all_indices(data->train).slice(0, 0, 64),
                             data::LoaderOptions().batch_size(64).seed(11).prefetch(false));
    loader.start_epoch(0);
    const auto batch = loader.batch(0);
    torch::nn::functional::cross_entropy(reference->forward(batch.images), batch.labels).backward();
    const auto params = reference->parameters();
    ASSERT_EQ(params.size(), summed.size());
    for (std::size_t i = 0; i < params.size(); ++i)
      EXPECT_TRUE(torch::allclose(summed[i], params[i].grad(), 1e-4, 1e-6))
          << model << " parameter " << i << ": max difference "
          << (summed[i] - params[i].grad()).abs().max().item<float>();
  }
}

// Through the real runner: the job grows onto the core the other job leaves,
// and its figures are those of the same job on one core.
TEST(DataParallel, AnElasticJobGrowsOntoAFreedCoreAndKeepsItsBits) {
  const auto data = fashion();
  const auto options = small_options("mlp").limit(1280).train(
      train::TrainOptions().epochs(2).batch_size(64).lr(0.05).seed(11));
  const auto run = [&](int max_cores, bool other) {
    packtrain::testing::VirtualRun r(2);
    auto job = make_data_parallel_job(data, options, 1, max_cores);
    job.cost = 1;
    r.runner->add(job);
    if (other) r.runner->add(packtrain::testing::sleeping_job("other", 20, 100));
    return r.runner->run(r.options);
  };
  const auto elastic = run(2, true);
  const auto single = run(1, false);
  ASSERT_EQ(elastic.done, 2) << elastic.jobs[0].message;
  ASSERT_EQ(single.done, 1) << single.jobs[0].message;
  const auto& record = elastic.jobs[0].name == "other" ? elastic.jobs[1] : elastic.jobs[0];
  const auto& m = record.metrics;
  const auto& s = single.jobs[0].metrics;
  EXPECT_EQ(m.at("peak_replicas").get<int>(), 2);
  EXPECT_EQ(s.at("peak_replicas").get<int>(), 1);
  for (const char* key : {"val_top1", "val_top5", "val_loss", "train_loss"})
    EXPECT_EQ(m.at(key).get<double>(), s.at(key).get<double>()) << key;
  EXPECT_EQ(m.at("epochs").get<int>(), 2);
  ASSERT_EQ(m.at("per_epoch").size(), 2u);
  EXPECT_TRUE(m.at("per_epoch")[0].contains("sync_share"));
}

// A replica whose micro-batches throw (autograd off on its thread only, so
// backward() fails) fails its job with its message within a second; its
// cores come back and the other jobs finish.
TEST(DataParallel, AReplicaThatThrowsFailsItsJobAndReleasesItsCores) {
  const auto data = fashion();
  const auto r = packtrain::testing::run_beside_two_others(
      "dataparallel-with-a-throwing-replica",
      [data](JobContext& ctx) {
        // 50 epochs: were the failure not seen, the job would run for minutes.
        auto options = small_options("mlp").max_replicas(ctx.max_cores());
        options.train().epochs(50);
        auto trainer = std::make_shared<DataParallelTrainer>(shape_of(*data, 5), options);
        ctx.lend_cores_to([trainer](const CoreLease& lease) {
          torch::NoGradGuard no_grad;
          trainer->help(lease);
        });
        const auto result = trainer->fit(small_data(*data, 2048));
        return JobOutcome{.status = result.train.status, .metrics = result.metrics()};
      },
      "the throwing replica hung its job");
  ASSERT_EQ(r.jobs, 3u);
  EXPECT_EQ(r.job.status, JobStatus::failed);
  EXPECT_NE(r.job.message.find("does not require grad"), std::string::npos) << r.job.message;
  EXPECT_LT(r.job.seconds(), 2.0) << "the job took " << r.job.seconds() << " s to fail";
  EXPECT_EQ(r.others_done, 2);
}

// With several replicas the optimizer step runs in shares, one per replica;
// the per-parameter state (Adam's moments and step counts) still reaches
// the checkpoints whole: a run resumed from a 2-replica run's epoch-1
// checkpoint, on 3 replicas or on 1, ends with the bits of one replica's
// uninterrupted run.
TEST(DataParallel, AnAdamRunInSharesCheckpointsItsWholeStateAndResumesOnAnyReplicas) {
  packtrain::testing::TempDir dir;
  const auto adam = [&](const std::string& folder) {
    auto o = small_options("lenet5");
    o.train().optimizer(train::OptimizerKind::adam).lr(0.001).checkpoint_every(1).checkpoint_dir((dir / folder).string());
    return o;
  };
  const auto one = train_with(1, adam("one"));
  const auto two = train_with(2, adam("two"));
  expect_same_bits(one, two, "adam on 2 replicas");
  const auto halfway = (dir / "two" / "epoch-0001.pt").string();
  for (const int k : {3, 1}) {
    auto resumed_options = adam("resumed" + std::to_string(k));
    resumed_options.train().resume_from(halfway);
    const auto resumed = train_with(k, resumed_options);
    ASSERT_EQ(resumed.result.train.status, JobStatus::done);
    EXPECT_EQ(resumed.result.train.history.size(), 1u) << "the second epoch only";
    for (const auto& p : one.model->named_parameters())
      EXPECT_TRUE(torch::equal(p.value(), resumed.model->named_parameters()[p.key()]))
          << "resumed on " << k << " replicas: parameter " << p.key();
  }
}

// What after_step does to the whole optimizer's state in place (here: the
// first parameter's momentum zeroed after every step, as lth's masks zero
// removed weights' momentum) reaches the shares that step on several
// replicas: the same bits as one replica, and not those of a run without it.
TEST(DataParallel, AfterStepChangesToTheOptimizerStateReachEveryShare) {
  const auto run = [](int replicas, bool zero_momentum) {
    const auto data = fashion();
    auto trainer = std::make_shared<DataParallelTrainer>(shape_of(*data, 5),
                                                        small_options("lenet5").max_replicas(replicas));
    torch::optim::Optimizer* optimizer = nullptr;
    DataParallelCallbacks callbacks;
    callbacks.before_fit = [&](models::Model&, torch::optim::Optimizer& o) { optimizer = &o; };
    if (zero_momentum)
      callbacks.after_step = [&](torch::nn::Module& m) {
        const auto key = c10::guts::to_string(m.parameters()[0].unsafeGetTensorImpl());
        auto& state = static_cast<torch::optim::SGDParamState&>(*optimizer->state().at(key));
        state.momentum_buffer().zero_();
      };
    std::vector<std::unique_ptr<CoreLease>> leases;
    std::vector<std::thread> helpers;
    for (int h = 1; h < replicas; ++h) {
      leases.push_back(std::make_unique<CoreLease>(h));
      helpers.emplace_back([&trainer, &lease = *leases.back()] { trainer->help(lease); });
    }
    const auto result = trainer->fit(small_data(*data, 280), callbacks);
    for (auto& l : leases) l->ask_to_return();
    for (auto& t : helpers) t.join();
    EXPECT_EQ(result.train.status, JobStatus::done);
    return trainer->model()->parameters()[0].clone();
  };
  const auto one = run(1, true);
  EXPECT_TRUE(torch::equal(one, run(2, true))) << "the zeroed momentum did not reach a share";
  EXPECT_FALSE(torch::equal(one, run(2, false))) << "zeroing the momentum changed nothing: the test tests nothing";
}

TEST(DataParallel, LinearScalingAndWarmUpFollowGoyalEtAl) {
  auto o = DataParallelOptions()
               .train(train::TrainOptions().epochs(4).batch_size(256).lr(0.05).schedule(train::Schedule::none))
               .lr_scaling(LrScaling::linear)
               .warmup_epochs(1);
  // k = 256 / 64 = 4: from 0.05 (lr / k of the scaled 0.2) up to 0.2 over the first epoch's 10 steps.
  EXPECT_DOUBLE_EQ(o.lr_at(0, 10, 40), 0.05);
  EXPECT_DOUBLE_EQ(o.lr_at(5, 10, 40), 0.05 + 0.15 * 0.5);
  EXPECT_DOUBLE_EQ(o.lr_at(10, 10, 40), 0.2);
  EXPECT_DOUBLE_EQ(o.lr_at(39, 10, 40), 0.2);
  EXPECT_DOUBLE_EQ(DataParallelOptions(o).lr_scaling(LrScaling::none).warmup_epochs(0).lr_at(0, 10, 40), 0.05);
  // Nothing to warm up for a batch no larger than the reference.
  auto small = DataParallelOptions(o);
  small.train().batch_size(64);
  EXPECT_DOUBLE_EQ(small.lr_at(0, 10, 40), 0.05);
  EXPECT_EQ(o.spec().at("lr_scaling"), "linear");
  EXPECT_EQ(o.spec().at("warmup_epochs"), 1);
  EXPECT_EQ(o.spec().at("reference_batch"), 64);
  EXPECT_FALSE(o.spec().contains("cores"));
}

TEST(DataParallel, RefusesBadOptions) {
  const auto data = fashion();
  const auto shape = shape_of(*data, 1);
  const auto with_batch = [](std::int64_t batch, std::int64_t micro) {
    return DataParallelOptions().train(train::TrainOptions().batch_size(batch)).micro_batch(micro);
  };
  EXPECT_THROW(DataParallelTrainer(shape, with_batch(64, 0)), Error);
  EXPECT_THROW(DataParallelTrainer(shape, with_batch(64, 128)), Error);
  EXPECT_THROW(DataParallelTrainer(shape, with_batch(64, 24)), Error);
  EXPECT_NO_THROW(DataParallelTrainer(shape, with_batch(64, 64)));
  EXPECT_THROW(DataParallelTrainer(shape, DataParallelOptions().model("nope")), Error);
  EXPECT_THROW(DataParallelTrainer(shape, DataParallelOptions().warmup_epochs(-1)), Error);
  EXPECT_THROW(DataParallelTrainer(shape, DataParallelOptions().max_replicas(0)), Error);
  EXPECT_THROW(make_data_parallel_job(data, DataParallelOptions(), 2, 1), Error);
  EXPECT_THROW(make_data_parallel_job(data, DataParallelOptions(), 0, 1), Error);
  EXPECT_THROW(lr_scaling_from_string("sqrt"), Error);
  EXPECT_THROW(parallelism_from_string("processes"), Error);
  EXPECT_EQ(lr_scaling_from_string("linear"), LrScaling::linear);
  EXPECT_EQ(parallelism_from_string("threads"), Parallelism::threads);
}
