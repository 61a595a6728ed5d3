// The lottery-ticket sweep as a library: the jobs, their order on the
// cores, the files between them, and that a retrain is exactly "the masked
// reset-epoch weights, trained on".
#include <packtrain/data/dataset.hpp>
#include <packtrain/dataparallel/data_parallel.hpp>
#include <packtrain/lth/lth.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/executor.hpp>
#include <packtrain/scheduler/journal.hpp>
#include <packtrain/scheduler/resources.hpp>
#include <packtrain/train/checkpoint.hpp>
#include <packtrain/train/trainer.hpp>

#include "common/test_util.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <optional>
#include <set>

using namespace packtrain;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kLimit = 1024;  // training samples per job
constexpr int kEpochs = 2;

std::shared_ptr<const data::DatasetSplit> fashion() { return data::shared_dataset("fashion-mnist"); }

// A sweep run on 2 cores with a journal; what the tests read afterwards.
struct Run {
  std::unique_ptr<packtrain::testing::TempDir> dir = std::make_unique<packtrain::testing::TempDir>();
  lth::LthResult result;
  std::vector<JobRecord> records;  // from the journal
  std::string dense_id;
};

Run run_sweep(lth::LthOptions options) {
  Run run;
  options.out_dir(run.dir->path().string()).limit(kLimit).print_every(0).trainer(train::TrainOptions().epochs(kEpochs));
  lth::LotteryTicketSweep sweep(fashion(), options);
  run.dense_id = sweep.dense_id();
  const auto node = detect_node_resources({.requested_cores = 2});
  Executor ex(node.cores);
  JobRunner runner(ex, node);
  auto journal = Journal::open(run.dir->path() / "journal.sqlite");
  run.result = sweep.run(runner, RunOptions{.journal = journal.get(), .base_seed = 1});
  run.records = journal->records();
  return run;
}

const Run& one_shot() {
  static const Run run = run_sweep(lth::LthOptions().reset_epochs({0, 1}).sparsities({0.5, 0.9}));
  return run;
}

std::shared_ptr<models::Model> load_mlp(const fs::path& checkpoint) {
  auto model = models::make_model("mlp", {.seed = 99});
  train::load_checkpoint(checkpoint, *model, nullptr);
  return model;
}

bool same_weights(torch::nn::Module& a, torch::nn::Module& b) {
  const auto pa = a.parameters(), pb = b.parameters();
  if (pa.size() != pb.size()) return false;
  for (std::size_t i = 0; i < pa.size(); ++i)
    if (!torch::equal(pa[i], pb[i])) return false;
  return true;
}

const JobRecord& dense_of(const Run& run) {
  for (const auto& r : run.records)
    if (r.id == run.dense_id) return r;
  throw std::runtime_error("no dense record");
}

std::vector<JobRecord> retrains_of(const Run& run) {
  std::vector<JobRecord> out;
  for (const auto& r : run.records)
    if (r.spec.value("kind", "") == "retrain") out.push_back(r);
  return out;
}

bool overlap(const JobRecord& a, const JobRecord& b) { return a.started_at < b.ended_at && b.started_at < a.ended_at; }

}  // namespace

TEST(LthSweep, PlansOneDenseJobAndOneRetrainPerSparsityAndResetEpochAllAfterIt) {
  lth::LotteryTicketSweep sweep(fashion(), lth::LthOptions().reset_epochs({0, 2}).sparsities({0.5, 0.8, 0.9}).out_dir("/nonexistent"));
  const auto jobs = sweep.jobs();
  ASSERT_EQ(jobs.size(), 7u);
  EXPECT_EQ(jobs[0].spec["kind"], "dense");
  EXPECT_EQ(jobs[0].id(), sweep.dense_id());
  std::set<std::string> ids;
  for (std::size_t i = 1; i < jobs.size(); ++i) {
    EXPECT_EQ(jobs[i].spec["kind"], "retrain");
    EXPECT_EQ(jobs[i].after, std::vector<std::string>{sweep.dense_id()});
    ids.insert(jobs[i].id());
  }
  EXPECT_EQ(ids.size(), 6u);
  EXPECT_EQ(jobs[4].spec["reset_epoch"], 2);
  EXPECT_EQ(jobs[5].spec["sparsity"], 0.8);
  // Reset at epoch 2 leaves 8 of 10 epochs to train: cheaper than reset at 0.
  EXPECT_LT(jobs[4].cost, jobs[1].cost);
  EXPECT_FALSE(fs::exists("/nonexistent"));  // planning writes nothing
}

TEST(LthSweep, RefusesBadOptionsBeforeWritingAnything) {
  const auto make = [](lth::LthOptions o) { lth::LotteryTicketSweep s(fashion(), o.out_dir("/tmp/never")); };
  const auto base = [] { return lth::LthOptions().trainer(train::TrainOptions().epochs(3)); };
  EXPECT_THROW(make(base().sparsities({0.0})), Error);
  EXPECT_THROW(make(base().sparsities({1.0})), Error);
  EXPECT_THROW(make(base().sparsities({0.5, -0.2})), Error);
  EXPECT_THROW(make(base().reset_epochs({3})), Error);
  EXPECT_THROW(make(base().reset_epochs({-1})), Error);
  EXPECT_THROW(make(base().reset_epochs({1, 1})), Error);
  EXPECT_THROW(make(base().rounds(-1)), Error);
  EXPECT_THROW(make(base().rounds(2).prune_rate(1.0)), Error);
  EXPECT_THROW(make(base().model("nosuchnet")), Error);
  EXPECT_THROW(make(base().tolerance(-0.1)), Error);
  EXPECT_THROW(make(base().cores_per_job(2).max_cores_per_job(1)), Error);
  EXPECT_THROW(make(base().cores_per_job(2).micro_batch(48)), Error);  // does not divide 64
  EXPECT_THROW(make(base().cores_per_job(2).micro_batch(0)), Error);
  EXPECT_THROW(lth::LotteryTicketSweep(fashion(), base()), Error);  // no run folder
  EXPECT_NO_THROW(make(base().reset_epochs({0, 2})));
  EXPECT_FALSE(fs::exists("/tmp/never"));
}

TEST(LthSweep, RetrainsWaitForTheDenseJobAndThenRunInParallel) {
  const auto& run = one_shot();
  ASSERT_EQ(run.result.run.done, 5) << run.result.run.jobs[0].message;
  const auto& dense = dense_of(run);
  const auto retrains = retrains_of(run);
  ASSERT_EQ(retrains.size(), 4u);
  int overlapping_pairs = 0;
  for (std::size_t i = 0; i < retrains.size(); ++i) {
    EXPECT_EQ(retrains[i].status, JobStatus::done);
    EXPECT_GE(retrains[i].started_at, dense.ended_at) << retrains[i].name;
    for (std::size_t j = i + 1; j < retrains.size(); ++j) overlapping_pairs += overlap(retrains[i], retrains[j]);
  }
  EXPECT_GE(overlapping_pairs, 1) << "on 2 cores two retrains run at the same time";
}

TEST(LthSweep, DenseJobListsItsCheckpointsRelativeToTheRunFolder) {
  const auto& run = one_shot();
  const auto& dense = dense_of(run);
  const auto files = dense.metrics.at("checkpoints").get<std::vector<std::string>>();
  const std::vector<std::string> expected = {"checkpoints/" + run.dense_id + "/epoch-0000.pt",
                                             "checkpoints/" + run.dense_id + "/epoch-0001.pt",
                                             "checkpoints/" + run.dense_id + "/epoch-0002.pt"};
  EXPECT_EQ(files, expected);
  for (const auto& f : files) EXPECT_TRUE(fs::is_regular_file(run.dir->path() / f)) << f;
  EXPECT_TRUE(dense.metrics.at("test_top1").is_number());
}

// What MPI carries to other ranks (JobOutcome::artifacts): every file a
// later job reads, each there; none of it in the metrics.
TEST(LthSweep, EveryJobRecordsTheFilesLaterJobsReadAsItsArtifacts) {
  const auto& run = one_shot();
  const auto& dense = dense_of(run);
  auto expected = dense.metrics.at("checkpoints").get<std::vector<std::string>>();
  expected.push_back("checkpoints/" + run.dense_id + "/result.json");
  EXPECT_EQ(dense.artifacts, expected);
  const auto retrains = retrains_of(run);
  ASSERT_FALSE(retrains.empty());
  for (const auto& r : retrains) {
    ASSERT_EQ(r.artifacts.size(), 4u) << r.name;
    EXPECT_EQ(r.artifacts[0], r.metrics.at("checkpoints")[0].get<std::string>()) << r.name;
    EXPECT_EQ(r.artifacts[1], r.metrics.at("mask").get<std::string>()) << r.name;
    EXPECT_EQ(r.artifacts[2], r.metrics.at("ticket").get<std::string>()) << r.name;
    EXPECT_EQ(fs::path(r.artifacts[3]).parent_path(), "tickets") << r.name;
  }
  for (const auto& r : run.records) {
    EXPECT_FALSE(r.metrics.contains("artifacts")) << r.name;
    for (const auto& f : r.artifacts) EXPECT_TRUE(fs::is_regular_file(run.dir->path() / f)) << r.name << ": " << f;
  }
}

TEST(LthSweep, MasksComeFromTheDenseFinalWeightsAtTheExactSparsity) {
  const auto& run = one_shot();
  const auto root = run.dir->path();
  auto final_weights = load_mlp(train::checkpoint_path(root / "checkpoints" / run.dense_id, kEpochs));
  for (const auto& r : retrains_of(run)) {
    const double s = r.spec.at("sparsity").get<double>();
    const auto saved = lth::Mask::load(root / r.metrics.at("mask").get<std::string>());
    const auto again = lth::magnitude_mask(*final_weights, s, lth::Scope::global);
    ASSERT_EQ(saved.keep.size(), again.keep.size());
    for (std::size_t i = 0; i < saved.keep.size(); ++i) EXPECT_TRUE(torch::equal(saved.keep[i], again.keep[i])) << r.name;
    EXPECT_EQ(saved.total() - saved.kept(), std::llround(s * static_cast<double>(saved.total())));
    EXPECT_EQ(r.metrics.at("weights_left").get<std::int64_t>(), saved.kept());
  }
}

TEST(LthSweep, ARetrainStartsFromExactlyTheMaskedResetEpochWeightsAndKeepsThemMasked) {
  const auto& run = one_shot();
  const auto root = run.dir->path();
  const auto data = fashion();
  for (const auto& r : retrains_of(run)) {
    const int e = r.spec.at("reset_epoch").get<int>();
    const auto mask = lth::Mask::load(root / r.metrics.at("mask").get<std::string>());
    // The ticket file is the dense epoch-e weights times the mask, exactly.
    auto expected = load_mlp(train::checkpoint_path(root / "checkpoints" / run.dense_id, e));
    mask.apply(*expected);
    auto ticket = load_mlp(root / r.metrics.at("ticket").get<std::string>());
    EXPECT_TRUE(same_weights(*expected, *ticket)) << r.name;

    // Training that ticket from epoch e with the mask reproduces the job's
    // final weights bit for bit: the job started from it and nothing else.
    const auto seed = derive_seed(r.id, 1);
    auto model = models::make_model("mlp", {.seed = 5});
    train::Trainer trainer(model, train::TrainOptions().epochs(kEpochs).seed(seed).threads(1).resume_from(
                                      (root / r.metrics.at("ticket").get<std::string>()).string()));
    const lth::MaskedTraining masked(mask, trainer.model(), &trainer.optimizer());
    const auto result = trainer.fit({data->train, torch::arange(kLimit, torch::kInt64), data->test,
                                     data::all_indices(data->test)});
    EXPECT_EQ(result.epochs_completed, kEpochs);
    EXPECT_EQ(result.history.size(), static_cast<std::size_t>(kEpochs - e)) << "trains from epoch e to the end";
    auto job_final = load_mlp(train::checkpoint_path(root / "checkpoints" / r.id, kEpochs));
    EXPECT_TRUE(same_weights(*model, *job_final)) << r.name;
    EXPECT_DOUBLE_EQ(result.val.top1, r.metrics.at("test_top1").get<double>());
    // And the removed weights of the trained ticket are exactly zero.
    const auto w = lth::prunable_weights(*job_final);
    for (std::size_t i = 0; i < w.size(); ++i) {
      const at::Tensor removed = w[i].second.masked_select(mask.keep[i] == 0);
      EXPECT_EQ(removed.count_nonzero().item().toLong(), 0) << r.name;
    }
  }
}

// Jobs of two cores train replicas (dataparallel/): the mask is kept after
// every step, a retrain is still exactly its ticket trained on (the same bits
// as one replica of the same micro-batches), and the winning ticket's
// transfer trains its mask too.
TEST(LthSweep, ReplicaJobsKeepTheirMaskAndGiveTheBitsOfOneReplica) {
  const auto run = run_sweep(lth::LthOptions()
                                 .reset_epochs({1})
                                 .sparsities({0.8})
                                 .tolerance(0.99)  // some ticket wins: the transfer has one to train
                                 .cores_per_job(2)
                                 .parallelism(dataparallel::Parallelism::replicas)
                                 .transfer("mnist-digits"));
  const auto root = run.dir->path();
  const auto data = fashion();
  ASSERT_EQ(run.records.size(), 4u);  // dense, one retrain, the two transfer jobs
  for (const auto& r : run.records) {
    EXPECT_EQ(r.status, JobStatus::done) << r.name << ": " << r.message;
    EXPECT_EQ(r.spec.value("parallelism", ""), "replicas") << r.name;
    EXPECT_EQ(r.metrics.value("peak_replicas", 0), 2) << r.name;
    EXPECT_TRUE(r.metrics.contains("sync_share")) << r.name;
  }
  const auto retrains = retrains_of(run);
  ASSERT_EQ(retrains.size(), 1u);
  const auto& r = retrains[0];
  const auto mask = lth::Mask::load(root / r.metrics.at("mask").get<std::string>());
  const auto ticket = root / r.metrics.at("ticket").get<std::string>();
  dataparallel::DataParallelTrainer one(
      {.seed = 5}, dataparallel::DataParallelOptions().model("mlp").max_replicas(1).train(
                       train::TrainOptions().epochs(kEpochs).seed(derive_seed(r.id, 1)).resume_from(ticket.string())));
  std::optional<lth::MaskedTraining> masked;
  dataparallel::DataParallelCallbacks callbacks;
  callbacks.before_fit = [&](models::Model& m, torch::optim::Optimizer& o) { masked.emplace(mask, m, &o); };
  callbacks.after_step = [&](torch::nn::Module&) { masked->reset(); };
  const auto result = one.fit({data->train, torch::arange(kLimit, torch::kInt64), data->test, data::all_indices(data->test)},
                              callbacks);
  EXPECT_EQ(result.train.history.size(), static_cast<std::size_t>(kEpochs - 1)) << "trains from epoch 1 to the end";
  auto job_final = load_mlp(train::checkpoint_path(root / "checkpoints" / r.id, kEpochs));
  EXPECT_TRUE(same_weights(*one.model(), *job_final));
  EXPECT_DOUBLE_EQ(result.train.val.top1, r.metrics.at("test_top1").get<double>());
  const auto w = lth::prunable_weights(*job_final);
  std::int64_t removed_nonzero = 0, kept_nonzero = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    removed_nonzero += w[i].second.masked_select(mask.keep[i] == 0).count_nonzero().item().toLong();
    kept_nonzero += w[i].second.masked_select(mask.keep[i] == 1).count_nonzero().item().toLong();
  }
  EXPECT_EQ(removed_nonzero, 0);
  EXPECT_GT(kept_nonzero, 0);
  ASSERT_TRUE(run.result.report.transfer_ticket_top1);
  EXPECT_GT(*run.result.report.transfer_ticket_top1, 0.5) << "the ticket learned MNIST digits";
}

TEST(LthSweep, IterativeChainsRunRoundAfterRoundAndPruneWhatIsLeft) {
  const auto run = run_sweep(lth::LthOptions().reset_epochs({0, 1}).rounds(3).prune_rate(0.5));
  ASSERT_EQ(run.result.run.done, 7);
  const auto root = run.dir->path();
  const auto& dense = dense_of(run);
  std::map<int, std::vector<JobRecord>> chains;
  for (const auto& r : retrains_of(run)) chains[r.spec.at("reset_epoch").get<int>()].push_back(r);
  ASSERT_EQ(chains.size(), 2u);
  int chain_overlaps = 0;
  for (const auto& a : chains[0])
    for (const auto& b : chains[1]) chain_overlaps += overlap(a, b);
  EXPECT_GE(chain_overlaps, 1) << "the two chains run side by side";
  for (const auto& [e, chain] : chains) {
    ASSERT_EQ(chain.size(), 3u);
    std::optional<lth::Mask> previous;
    std::int64_t removed = 0;
    for (std::size_t k = 0; k < chain.size(); ++k) {
      const auto& r = chain[k];
      EXPECT_EQ(r.spec.at("round").get<int>(), static_cast<int>(k) + 1);
      EXPECT_GE(r.started_at, k == 0 ? dense.ended_at : chain[k - 1].ended_at) << r.name;
      const auto mask = lth::Mask::load(root / r.metrics.at("mask").get<std::string>());
      removed += std::llround(0.5 * static_cast<double>(mask.total() - removed));
      EXPECT_EQ(mask.total() - mask.kept(), removed) << r.name;
      EXPECT_DOUBLE_EQ(r.metrics.at("sparsity").get<double>(), mask.sparsity());
      // Round k's mask: round k-1's trained weights, pruned by half of what round k-1 kept.
      const auto source = k == 0 ? train::checkpoint_path(root / "checkpoints" / run.dense_id, kEpochs)
                                 : train::checkpoint_path(root / "checkpoints" / chain[k - 1].id, kEpochs);
      auto weights = load_mlp(source);
      const auto again = lth::magnitude_mask(*weights, 0.5, lth::Scope::global, previous ? &*previous : nullptr);
      for (std::size_t i = 0; i < mask.keep.size(); ++i) {
        EXPECT_TRUE(torch::equal(mask.keep[i], again.keep[i])) << r.name;
        if (previous) {
          EXPECT_EQ(((previous->keep[i] == 0) & (mask.keep[i] == 1)).sum().item<std::int64_t>(), 0);
        }
      }
      previous = mask;
    }
  }
}

TEST(LthReport, TheWinnerIsTheSparsestTicketWithinTheTolerance) {
  const auto rec = [](const std::string& kind, double sparsity, int reset, double top1) {
    JobRecord r;
    r.id = kind + std::to_string(sparsity) + std::to_string(reset);
    r.status = JobStatus::done;
    r.spec = {{"sweep", "lth"}, {"kind", kind}, {"sparsity", sparsity}};
    if (kind == "retrain") r.spec["reset_epoch"] = reset;
    r.metrics = {{"test_top1", top1}, {"sparsity", sparsity}, {"mask", "masks/x.pt"}, {"ticket", "tickets/x.pt"}};
    return r;
  };
  std::vector<JobRecord> records = {rec("dense", 0, 0, 0.880),       rec("retrain", 0.5, 0, 0.884),
                                    rec("retrain", 0.9, 0, 0.8751),  rec("retrain", 0.95, 0, 0.8749),
                                    rec("retrain", 0.5, 1, 0.883),   rec("retrain", 0.9, 1, 0.879),
                                    rec("retrain", 0.95, 1, 0.860)};
  auto failed = rec("retrain", 0.98, 1, 0.99);
  failed.status = JobStatus::failed;
  records.push_back(failed);
  const auto report = lth::summarize(records, 0.005);
  ASSERT_TRUE(report.dense_top1);
  EXPECT_DOUBLE_EQ(*report.dense_top1, 0.880);
  ASSERT_EQ(report.points.size(), 6u);
  ASSERT_TRUE(report.winner);
  EXPECT_DOUBLE_EQ(report.winner->sparsity, 0.9);
  EXPECT_EQ(report.winner->reset_epoch, 1);  // 0.879 beats 0.8751 at the same sparsity
  const auto text = lth::format_report(report);
  EXPECT_NE(text.find("dense model: 88.00%"), std::string::npos) << text;
  EXPECT_NE(text.find("winning ticket: 90.00% removed (10.00% of weights left), reset epoch 1"), std::string::npos) << text;
  EXPECT_NE(text.find("          0 |"), std::string::npos) << text;  // one line per reset epoch
  EXPECT_NE(text.find("          1 |"), std::string::npos) << text;
  EXPECT_NE(text.find("87.51+"), std::string::npos) << text;
  EXPECT_NE(text.find("87.49 "), std::string::npos) << text;
  // A stricter tolerance leaves only the 50% tickets.
  EXPECT_DOUBLE_EQ(lth::summarize(records, 0.0).winner->sparsity, 0.5);
  EXPECT_FALSE(lth::choose_winner(0.95, lth::summarize(records, 0.0).points, 0.0));
  // No ticket within the tolerance is not the same as no retrain finished (Ctrl-C after the dense run).
  auto strict = lth::summarize(records, 0.0);
  strict.dense_top1 = 0.95;
  strict.winner.reset();
  EXPECT_NE(lth::format_report(strict).find("winning ticket: none within the tolerance"), std::string::npos);
  const auto dense_only = lth::summarize({records.front(), failed}, 0.005);
  ASSERT_TRUE(dense_only.dense_top1);
  EXPECT_NE(lth::format_report(dense_only).find("winning ticket: none yet: no retrain finished"), std::string::npos)
      << lth::format_report(dense_only);
}
