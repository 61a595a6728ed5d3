// packtrain kfold: K-fold cross-validation of models x schedules, every
// (model, schedule, fold) a job packed onto the cores.
#include "commands.hpp"
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

int kfold_command(int argc, char** argv) {
  CommonOptions common;
  JobCoreOptions cores;
  std::string models = "mlp,lenet5";
  std::string schedules = "cosine,warm";
  int folds = 5;
  int epochs = 2;
  std::int64_t limit = 0;
  int checkpoint_every = 0;
  bool serial = false;
  bool plain_folds = false;
  std::string fuse = "auto";

  po::options_description desc("packtrain kfold: K-fold cross-validation, every (model, schedule, fold) a job");
  add_common_options(desc, common);
  desc.add_options()
    ("models", po::value(&models)->default_value(models),
     "comma-separated models: mlp, lenet5, vgg11, resnet18, mobilenetv2, or paths of TorchScript files (net.pt)")
    ("schedules", po::value(&schedules)->default_value(schedules), "comma-separated LR schedules: none, step, cosine, warm")
    ("folds", po::value(&folds)->default_value(folds), "k, the number of folds")
    ("epochs", po::value(&epochs)->default_value(epochs), "epochs per job")
    ("serial", po::bool_switch(&serial), "run the same jobs one at a time on one core (the baseline)")
    ("limit", po::value(&limit)->default_value(limit), "use only the first N training samples (0: all)")
    ("plain-folds", po::bool_switch(&plain_folds), "plain k-fold splits instead of stratified ones")
    ("fuse", po::value(&fuse)->default_value(fuse),
     "auto: train the folds of a model and schedule as fused jobs of several folds each (stacked weights, one step "
     "for all; each fold keeps its own numbers and journal row) where bench_fused measured it faster (lenet5), with "
     "enough fused jobs for every core; off: one job per fold")
    ("checkpoint-every", po::value(&checkpoint_every)->default_value(checkpoint_every),
     "checkpoint each job every N epochs into OUT/checkpoints/JOB (0: never); --resume then goes on from a "
     "job's last checkpoint");
  add_job_core_options(desc, cores);
  add_gang_option(desc, common);
  if (!parse_options(argc, argv, desc, "packtrain kfold [options] --out DIR", common)) return 0;

  // Everything that can be wrong with the request is checked before anything
  // is written: options, models, data, cores, the output folder.
  if (fuse != "auto" && fuse != "off") throw Error("--fuse must be auto or off, not '" + fuse + "'");
  RunSetup setup(common, "kfold", serial);
  const auto how = check_job_core_options(common, cores, setup.node().core_count(), setup.node().memory_mb);
  if (common.ranks_per_job > 1 && checkpoint_every > 0)
    throw Error("--checkpoint-every is not for gang jobs (--ranks-per-job) yet: each rank of a gang would go on from a "
                "checkpoint of its own");
  auto data = setup.load_data();
  auto trainer = trainer_options(common).epochs(epochs).checkpoint_every(checkpoint_every);
  // The cores the fused folds are grouped for: a new run's (every shard's,
  // every rank's), none where jobs checkpoint, have memory budgets or run
  // one at a time; a resumed run's own, whatever this one's flags, so its
  // job list stays the same (0: no fusing).
  int fuse_cores = 0;
  if (fuse == "auto" && !RunSetup::simulating()) {  // simulate models each fold as a job of its own
    if (const auto recorded = setup.resumed_meta("fuse_cores")) {
      if (!recorded->empty()) {
        std::size_t used = 0;
        try {
          fuse_cores = std::stoi(*recorded, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used != recorded->size() || fuse_cores < 1)
          throw Error("--out " + setup.out().string() + ": its journal records fuse_cores '" + *recorded +
                      "', not a core count: the journal is damaged");
      }
    } else if (!serial && checkpoint_every == 0 && cores.memory_mb == 0) {
      fuse_cores = setup.cores_in_all() * setup.shards();
    }
  }
  kfold::KFold sweep(data, kfold::KFoldOptions()
                               .folds(folds)
                               .stratified(!plain_folds)
                               .seed(common.seed)
                               .limit(limit)
                               .cores_per_job(cores.cores_per_job)
                               .max_cores_per_job(serial ? 0 : cores.max_cores_per_job)
                               .memory_mb_per_job(cores.memory_mb)
                               .micro_batch(cores.micro_batch)
                               .parallelism(how)
                               .trainer(trainer)
                               .checkpoint_root((setup.out() / "checkpoints").string())  // this rank's folder
                               .fuse(fuse_cores > 0)
                               .fuse_cores(fuse_cores)
                               .gangs(setup.gangs()));
  for (const auto& m : split_list(models, "--models")) sweep.add_model(m);
  for (const auto& s : split_list(schedules, "--schedules")) sweep.add_schedule(train::schedule_from_string(s));

  auto jobs = sweep.jobs();
  nlohmann::json meta = {{"group_by", nlohmann::json::array({"model", "schedule"})}, {"metric", "val_top1"}};
  // Recorded where it fused something (a run without it resumes unfused, as it ran).
  if (std::any_of(jobs.begin(), jobs.end(), [](const Job& j) { return j.spec.contains("fused"); }))
    meta["fuse_cores"] = fuse_cores;
  setup.open_run(meta, std::move(jobs), train::result_columns());
  const auto result = kfold::result_of(setup.run());

  nlohmann::json summary = setup.summary_json(result.run);
  summary["speedup"] = result.speedup;
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : result.groups)
    groups.push_back({{"model", g.model}, {"schedule", g.schedule}, {"folds_done", g.folds_done},
                      {"folds_total", g.folds_total}, {"mean_top1", g.mean_top1}, {"std_top1", g.std_top1},
                      {"mean_loss", std::isnan(g.mean_loss) ? nlohmann::json(nullptr) : nlohmann::json(g.mean_loss)},
                      {"best", g.best}});
  summary["groups"] = groups;
  setup.finish(result.run, summary);
  if (setup.is_root()) std::printf("%s", kfold::format_summary(result, setup.total_cores(), setup.ranks()).c_str());
  setup.print_outputs();
  return result.run.exit_code();
}

}  // namespace packtrain::cli
