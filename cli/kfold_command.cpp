// packtrain kfold: K-fold cross-validation of models x schedules, every
// (model, schedule, fold) a job packed onto the cores.
#include "commands.hpp"
#include "command_entry.hpp"
#include "common_options.hpp"
#include "run_setup.hpp"

#include <packtrain/data/dataset.hpp>
#include <packtrain/dataparallel/data_parallel.hpp>
#include <packtrain/kfold/kfold.hpp>
#include <packtrain/models/models.hpp>
#include <packtrain/scheduler/error.hpp>

#include <algorithm>
#include <cstdio>
#include <optional>

namespace po = boost::program_options;

namespace packtrain::cli {

namespace {

class KFoldEntry final : public CommandEntry {
 public:
  KFoldEntry() : CommandEntry("kfold") { columns = train::result_columns(); }
  bool serial() const override { return serial_; }

  void check_options() override {
    if (fuse_ != "auto" && fuse_ != "off") throw Error("--fuse must be auto or off, not '" + fuse_ + "'");
  }

  std::vector<Job> plan(RunSetup& setup) override {
    // Everything that can be wrong with the request is checked before anything
    // is written: options, models, data, cores, the output folder.
    const auto how = check_job_core_options(common, cores_, setup.node().core_count(), setup.node().memory_mb);
    if (common.ranks_per_job > 1 && checkpoint_every_ > 0)
      throw Error("--checkpoint-every is not for gang jobs (--ranks-per-job) yet: each rank of a gang would go on from "
                  "a checkpoint of its own");
    auto data = setup.load_data();
    auto trainer = trainer_options(common).epochs(epochs_).checkpoint_every(checkpoint_every_);
    // The cores the fused folds are grouped for: a new run's (every shard's,
    // every rank's), none where jobs checkpoint, have memory budgets or run
    // one at a time; a resumed run's own, whatever this one's flags, so its
    // job list stays the same (0: no fusing).
    int fuse_cores = 0;
    const auto fuse_key = meta_prefix + "fuse_cores";
    if (fuse_ == "auto" && !RunSetup::simulating()) {  // simulate models each fold as a job of its own
      const auto recorded = setup.resumed_meta(fuse_key);
      if (recorded && (!recorded->empty() || !planned_late)) {
        if (!recorded->empty()) {
          std::size_t used = 0;
          try {
            fuse_cores = std::stoi(*recorded, &used);
          } catch (const std::exception&) {
            used = 0;
          }
          if (used != recorded->size() || fuse_cores < 1)
            throw Error("--out " + setup.out().string() + ": its journal records " + fuse_key + " '" + *recorded +
                        "', not a core count: the journal is damaged");
        }
      } else if (!serial_ && checkpoint_every_ == 0 && cores_.memory_mb == 0) {
        fuse_cores = setup.cores_in_all() * setup.shards();
      }
    }
    kfold::KFold sweep(data, kfold::KFoldOptions()
                                 .folds(folds_)
                                 .stratified(!plain_folds_)
                                 .seed(common.seed)
                                 .limit(limit_)
                                 .cores_per_job(cores_.cores_per_job)
                                 .max_cores_per_job(serial_ ? 0 : cores_.max_cores_per_job)
                                 .memory_mb_per_job(static_cast<std::uint64_t>(cores_.memory_mb))
                                 .micro_batch(cores_.micro_batch)
                                 .parallelism(how)
                                 .trainer(trainer)
                                 .checkpoint_root((setup.out() / "checkpoints").string())  // this rank's folder
                                 .fuse(fuse_cores > 0)
                                 .fuse_cores(fuse_cores)
                                 .gangs(setup.gangs()));
    for (const auto& m : split_list(models_, "--models")) sweep.add_model(m);
    for (const auto& s : split_list(schedules_, "--schedules")) sweep.add_schedule(train::schedule_from_string(s));

    auto jobs = sweep.jobs();
    meta = {{"group_by", nlohmann::json::array({"model", "schedule"})}, {"metric", "val_top1"}};
    // Recorded where it fused something (a run without it resumes unfused, as it ran).
    if (std::any_of(jobs.begin(), jobs.end(), [](const Job& j) { return j.spec.contains("fused"); }))
      meta["fuse_cores"] = fuse_cores;
    return jobs;
  }

  bool picks_best() const override { return true; }

  std::optional<nlohmann::json> best(const std::vector<JobRecord>& records) const override {
    RunSummary run;
    run.jobs = records;
    for (const auto& g : kfold::result_of(run).groups) {
      if (!g.best) continue;
      // The model as a flag takes it: a TorchScript file's path, not its label.
      for (const auto& r : records)
        if (r.status == JobStatus::done && r.spec.value("model", "") == g.model &&
            r.spec.value("schedule", "") == g.schedule)
          return nlohmann::json{{"model", models::model_of_spec(r.spec)}, {"schedule", g.schedule},
                                {"val_top1", g.mean_top1}, {"folds", g.folds_done}};
    }
    return std::nullopt;
  }

  std::vector<nlohmann::json> candidates() const override {
    std::vector<nlohmann::json> out;
    for (const auto& m : split_list(models_, "--models"))
      for (const auto& s : split_list(schedules_, "--schedules")) out.push_back({{"model", m}, {"schedule", s}});
    return out;
  }

  std::string summarize(RunSetup& setup, const RunSummary& run, nlohmann::json& summary) override {
    const auto result = kfold::result_of(run);
    summary["speedup"] = result.speedup;
    nlohmann::json groups = nlohmann::json::array();
    for (const auto& g : result.groups)
      groups.push_back({{"model", g.model}, {"schedule", g.schedule}, {"folds_done", g.folds_done},
                        {"folds_total", g.folds_total}, {"mean_top1", g.mean_top1}, {"std_top1", g.std_top1},
                        {"mean_loss", std::isnan(g.mean_loss) ? nlohmann::json(nullptr) : nlohmann::json(g.mean_loss)},
                        {"best", g.best}});
    summary["groups"] = groups;
    auto text = kfold::format_summary(result, setup.total_cores(), setup.ranks());
    // In a batch the run's one speed line says it for every entry.
    if (!meta_prefix.empty()) text.resize(text.rfind('\n', text.size() - 2) + 1);
    return text;
  }

 protected:
  std::string description() const override {
    return "packtrain kfold: K-fold cross-validation, every (model, schedule, fold) a job";
  }

  void add_options(po::options_description& desc) override {
    desc.add_options()
      ("models", po::value(&models_)->default_value(models_),
       "comma-separated models: mlp, lenet5, vgg11, resnet18, mobilenetv2, or paths of TorchScript files (net.pt)")
      ("schedules", po::value(&schedules_)->default_value(schedules_), "comma-separated LR schedules: none, step, cosine, warm")
      ("folds", po::value(&folds_)->default_value(folds_), "k, the number of folds")
      ("epochs", po::value(&epochs_)->default_value(epochs_), "epochs per job")
      ("serial", po::bool_switch(&serial_), "run the same jobs one at a time on one core (the baseline)")
      ("limit", po::value(&limit_)->default_value(limit_), "use only the first N training samples (0: all)")
      ("plain-folds", po::bool_switch(&plain_folds_), "plain k-fold splits instead of stratified ones")
      ("fuse", po::value(&fuse_)->default_value(fuse_),
       "auto: train the folds of a model and schedule as fused jobs of several folds each (stacked weights, one step "
       "for all; each fold keeps its own numbers and journal row) where bench_fused measured it faster (lenet5), with "
       "enough fused jobs for every core; off: one job per fold")
      ("checkpoint-every", po::value(&checkpoint_every_)->default_value(checkpoint_every_),
       "checkpoint each job every N epochs into OUT/checkpoints/JOB (0: never); --resume then goes on from a "
       "job's last checkpoint");
    add_job_core_options(desc, cores_);
    add_gang_option(desc, common);
  }

 private:
  JobCoreOptions cores_;
  std::string models_ = "mlp,lenet5";
  std::string schedules_ = "cosine,warm";
  int folds_ = 5;
  int epochs_ = 2;
  std::int64_t limit_ = 0;
  int checkpoint_every_ = 0;
  bool serial_ = false;
  bool plain_folds_ = false;
  std::string fuse_ = "auto";
};

}  // namespace

std::unique_ptr<CommandEntry> make_kfold_entry() { return std::make_unique<KFoldEntry>(); }

int kfold_command(int argc, char** argv) {
  KFoldEntry entry;
  return run_command(entry, argc, argv);
}

}  // namespace packtrain::cli
