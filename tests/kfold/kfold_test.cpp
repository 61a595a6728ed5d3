#include "common/test_util.hpp"

#include <packtrain/data/dataset.hpp>
#include <packtrain/kfold/kfold.hpp>
#include <packtrain/scheduler/error.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <set>

using namespace packtrain;
using packtrain::train::Schedule;

namespace {

std::shared_ptr<const data::DatasetSplit> fashion() { return data::shared_dataset("fashion-mnist"); }

JobRecord done(const std::string& model, const std::string& schedule, int fold, double top1, double loss) {
  JobRecord r;
  r.spec = {{"model", model}, {"schedule", schedule}, {"fold", fold}};
  r.status = JobStatus::done;
  r.metrics = {{"val_top1", top1}, {"val_loss", loss}};
  return r;
}

}  // namespace

TEST(KFold, PlansOneJobPerModelScheduleAndFoldWithDistinctIds) {
  kfold::KFold sweep(fashion(), kfold::KFoldOptions().folds(3).limit(3000));
  sweep.add_model("mlp").add_model("lenet5").add_schedule(Schedule::cosine).add_schedule(Schedule::warm);
  const auto jobs = sweep.jobs();
  ASSERT_EQ(jobs.size(), 12u);
  std::set<std::string> ids, names;
  for (const auto& j : jobs) {
    ids.insert(j.id());
    names.insert(j.name);
    EXPECT_EQ(j.spec["sweep"], "kfold");
    EXPECT_EQ(j.spec["folds"], 3);
    EXPECT_EQ(j.cores, 1);
  }
  EXPECT_EQ(ids.size(), 12u);
  EXPECT_TRUE(names.count("lenet5/warm/fold2"));
  // lenet5 costs more than mlp, so its jobs start first.
  EXPECT_GT(jobs[6].cost, jobs[0].cost);
  // The same sweep planned again gives the same ids (resume relies on it).
  kfold::KFold again(fashion(), kfold::KFoldOptions().folds(3).limit(3000));
  again.add_model("mlp").add_model("lenet5").add_schedule(Schedule::cosine).add_schedule(Schedule::warm);
  EXPECT_EQ(again.jobs()[5].id(), jobs[5].id());
  // Another seed is another set of jobs.
  kfold::KFold other(fashion(), kfold::KFoldOptions().folds(3).limit(3000).seed(2));
  other.add_model("mlp").add_schedule(Schedule::cosine);
  EXPECT_NE(other.jobs()[0].id(), jobs[0].id());
}

TEST(KFold, RefusesBadSweeps) {
  EXPECT_THROW(kfold::KFold(fashion(), kfold::KFoldOptions().folds(1)), Error);
  EXPECT_THROW(kfold::KFold(fashion(), kfold::KFoldOptions().folds(11).limit(10)), Error);
  kfold::KFold sweep(fashion(), kfold::KFoldOptions().folds(2));
  EXPECT_THROW(sweep.add_model("resnet1000"), Error);
  EXPECT_THROW(sweep.jobs(), Error);  // no model
  sweep.add_model("mlp");
  EXPECT_THROW(sweep.jobs(), Error);  // no schedule
}

TEST(KFold, UserModelFactoriesAreUsed) {
  int built = 0;
  kfold::KFold sweep(fashion(), kfold::KFoldOptions().folds(2).limit(400).trainer(train::TrainOptions().epochs(1)));
  sweep.add_model("my-mlp", [&built](const models::ModelOptions& o) {
    ++built;
    return models::make_model("mlp", o);
  });
  sweep.add_schedule(Schedule::none);
  const auto node = detect_node_resources();
  Executor ex(node.cores);
  JobRunner runner(ex, node);
  const auto result = sweep.run(runner, RunOptions{});
  EXPECT_EQ(result.run.done, 2);
  EXPECT_EQ(built, 3);  // once to count FLOPs, once per job
  ASSERT_EQ(result.groups.size(), 1u);
  EXPECT_EQ(result.groups[0].model, "my-mlp");
  EXPECT_EQ(result.groups[0].folds_done, 2);
  EXPECT_GT(result.groups[0].mean_top1, 0.3);  // it learned something on 200 samples
}

TEST(KFold, TheSweepTrainsWithTheLossItIsGiven) {
  std::atomic<int> calls{0};
  auto trainer = train::TrainOptions().epochs(1).loss([&calls](const at::Tensor& logits, const at::Tensor& labels) {
    ++calls;
    // Cross-entropy with label smoothing 0.1, by hand.
    const auto logp = torch::log_softmax(logits, 1);
    const auto nll = -logp.gather(1, labels.unsqueeze(1)).squeeze(1);
    return (0.9 * nll - 0.1 * logp.mean(1)).mean();
  });
  kfold::KFold sweep(fashion(), kfold::KFoldOptions().folds(2).limit(640).trainer(trainer));
  sweep.add_model("mlp").add_schedule(Schedule::none);
  const auto node = detect_node_resources();
  Executor ex(node.cores);
  JobRunner runner(ex, node);
  const auto result = sweep.run(runner, RunOptions{});
  EXPECT_EQ(result.run.done, 2);
  EXPECT_EQ(calls.load(), 2 * 5);  // 320 training samples per fold, batches of 64
}

// Fused folds: lenet5's folds of a schedule become fused jobs, as many as
// the cores need, each fold a follower keeping its id; mlp's stay alone.
// A follower whose fused job's file is gone trains alone.
TEST(KFold, FusedFoldsArePlannedForTheCoresAndAFoldWithoutItsFileTrainsAlone) {
  packtrain::testing::TempDir dir;
  const auto options = [&](int cores) {
    return kfold::KFoldOptions()
        .folds(4)
        .limit(800)
        .trainer(train::TrainOptions().epochs(1).batch_size(32))
        .checkpoint_root((dir / "checkpoints").string())
        .fuse(true)
        .fuse_cores(cores);
  };
  const auto plan = [&](int cores) {
    kfold::KFold sweep(fashion(), options(cores));
    sweep.add_model("mlp").add_model("lenet5").add_schedule(Schedule::cosine);
    return sweep.jobs();
  };
  kfold::KFold plain_sweep(fashion(), options(0).fuse(false));
  plain_sweep.add_model("mlp").add_model("lenet5").add_schedule(Schedule::cosine);
  const auto plain = plain_sweep.jobs();
  for (const auto& [cores, fused_jobs] : std::vector<std::pair<int, std::size_t>>{{1, 1}, {2, 1}, {4, 2}, {8, 0}}) {
    const auto jobs = plan(cores);
    SCOPED_TRACE("cores " + std::to_string(cores));
    ASSERT_EQ(jobs.size(), 8 + fused_jobs);
    for (std::size_t j = 0; j < 8; ++j) EXPECT_EQ(jobs[j].id(), plain[j].id()) << "a fold keeps its id";
    for (std::size_t j = 8; j < jobs.size(); ++j) EXPECT_EQ(jobs[j].name.rfind("lenet5/cosine/fused", 0), 0u);
    for (std::size_t j = 0; j < 4; ++j) EXPECT_TRUE(jobs[j].after.empty()) << "mlp's folds train alone";
    for (std::size_t j = 4; j < 8; ++j) EXPECT_EQ(jobs[j].after.size(), fused_jobs > 0 ? 1u : 0u);
  }
  // 4 cores, 8 jobs: 2 fused jobs of 2 folds each.
  const auto jobs = plan(4);
  EXPECT_EQ(jobs[8].name, "lenet5/cosine/fused0-1");
  EXPECT_EQ(jobs[9].name, "lenet5/cosine/fused2-3");
  EXPECT_EQ(jobs[4].after, std::vector<std::string>{jobs[8].id()});

  // The follower of fold 0 without its file trains the fold alone: its plain job's numbers.
  const auto run_alone = [](const Job& job) {
    JobContext ctx(job.id(), derive_seed(job.id(), 1), 1, {0}, 0, {}, {});
    return job.run(ctx);
  };
  const auto alone = run_alone(jobs[4]);
  const auto own = run_alone(plain[4]);
  ASSERT_EQ(alone.status, JobStatus::done) << alone.message;
  EXPECT_EQ(alone.metrics["val_top1"], own.metrics["val_top1"]);
  EXPECT_FALSE(alone.metrics.contains("fused_job"));
  // With its fused job's file, it returns that.
  JobContext fused_ctx(jobs[8].id(), 0, 1, {0}, 0, {}, {});
  const auto fused = jobs[8].run(fused_ctx);
  ASSERT_EQ(fused.status, JobStatus::done) << fused.message;
  EXPECT_EQ(fused.artifacts.size(), 2u);
  const auto from_file = run_alone(jobs[4]);
  EXPECT_EQ(from_file.metrics["fused_job"], jobs[8].id());
  EXPECT_NEAR(from_file.metrics["val_top1"].get<double>(), own.metrics["val_top1"].get<double>(), 0.011);
}

TEST(KFold, FusedFoldsRefuseARunnerSeedingJobsOtherwise) {
  packtrain::testing::TempDir dir;
  kfold::KFold sweep(fashion(), kfold::KFoldOptions().folds(2).limit(200).seed(5).fuse(true).fuse_cores(1).checkpoint_root(
                                    (dir / "c").string()));
  sweep.add_model("lenet5").add_schedule(Schedule::none);
  const auto node = detect_node_resources();
  Executor ex(node.cores);
  JobRunner runner(ex, node);
  EXPECT_THROW(sweep.run(runner, RunOptions{.base_seed = 6}), Error);
}

TEST(KFold, SummaryHasMeanAndSampleStdPerGroupAndMarksTheBest) {
  std::vector<JobRecord> records = {done("mlp", "cosine", 0, 0.80, 0.5), done("mlp", "cosine", 1, 0.90, 0.7),
                                    done("mlp", "warm", 0, 0.86, 0.4), done("mlp", "warm", 1, 0.86, 0.6)};
  auto failed = done("mlp", "warm", 2, 0.0, 0.0);
  failed.status = JobStatus::failed;
  records.push_back(failed);
  const auto groups = kfold::summarize(records);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].schedule, "cosine");
  EXPECT_NEAR(groups[0].mean_top1, 0.85, 1e-12);
  EXPECT_NEAR(groups[0].std_top1, std::sqrt(0.005), 1e-12);
  EXPECT_NEAR(groups[0].mean_loss, 0.6, 1e-12);
  EXPECT_TRUE(groups[1].best);
  EXPECT_FALSE(groups[0].best);
  EXPECT_EQ(groups[1].folds_done, 2);
  EXPECT_EQ(groups[1].folds_total, 3);
  EXPECT_NEAR(groups[1].std_top1, 0.0, 1e-12);
}
