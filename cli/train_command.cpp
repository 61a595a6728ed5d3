// packtrain train: one model trained on all the cores it is given.
//
// The run is one job on the scheduler, set up as every sweep is (RunSetup):
// journal and --resume, results.csv and results.json, trace.json and
// report.html, --serve, Ctrl-C handling. Everything the user can get wrong
// is checked before the output folder is touched.
#include "commands.hpp"
#include "common_options.hpp"
#include "run_setup.hpp"

#include <packtrain/data/dataset.hpp>
#include <packtrain/models/models.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/results.hpp>
#include <packtrain/train/checkpoint.hpp>
#include <packtrain/train/trainer.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>

namespace po = boost::program_options;

namespace packtrain::cli {
namespace {

constexpr double kBackwardFactor = 3.0;  // a training step costs about 3 forward passes

struct TrainCommandOptions {
  std::string model = "mlp";
  int epochs = 5;
  std::string schedule = "cosine";
  int checkpoint_every = 0;
  double width_multiplier = 1.0;
  bool augment = false;
  std::int64_t limit = 0;
};

std::string list_text(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

int train_command(int argc, char** argv) {
  CommonOptions common;
  TrainCommandOptions o;
  po::options_description desc("packtrain train: train one model on all the cores it is given");
  add_common_options(desc, common);
  desc.add_options()
    ("model", po::value(&o.model)->default_value(o.model), ("model: " + list_text(models::model_names())).c_str())
    ("epochs", po::value(&o.epochs)->default_value(o.epochs), "epochs to train (at least 1)")
    ("schedule", po::value(&o.schedule)->default_value(o.schedule),
     "learning-rate schedule over the whole run: none, step, cosine, warm (cosine with warm restarts)")
    ("checkpoint-every", po::value(&o.checkpoint_every)->default_value(o.checkpoint_every),
     "also save a checkpoint every N epochs (0: only the final one, always saved in OUT/checkpoints)")
    ("width-multiplier", po::value(&o.width_multiplier)->default_value(o.width_multiplier, number_text(o.width_multiplier)),
     "mobilenetv2 only: scales every layer's channels")
    ("augment", po::bool_switch(&o.augment), "random crop (4 pixels of padding) and horizontal flip; 3x32x32 data only")
    ("limit", po::value(&o.limit)->default_value(o.limit), "train on the first N training samples only (0: all)");
  if (!parse_options(argc, argv, desc, "packtrain train [options] --out DIR", common)) return 0;

  // --- everything that can be wrong, before anything is written ------------
  // RunSetup first: it takes over Ctrl-C before any thread exists, checks the
  // common options and --out, and finds the cores.
  RunSetup setup(common, "train", /*serial=*/false);
  if (o.epochs < 1) throw Error("--epochs must be at least 1, not " + std::to_string(o.epochs));
  if (o.checkpoint_every < 0) throw Error("--checkpoint-every must not be negative");
  if (o.limit < 0) throw Error("--limit must not be negative (got " + std::to_string(o.limit) + ")");
  if (common.given.count("width-multiplier") && o.model != "mobilenetv2")
    throw Error("--width-multiplier is for mobilenetv2; --model " + o.model + " has no width to scale");
  const auto& names = models::model_names();
  if (std::find(names.begin(), names.end(), o.model) == names.end())
    throw Error("unknown model '" + o.model + "' (known: " + list_text(names) + ")");
  const auto schedule = train::schedule_from_string(o.schedule);
  const int cores = setup.node().core_count();
  const auto checkpoints = setup.out() / "checkpoints";  // this rank's folder under MPI
  auto options = trainer_options(common)
                     .epochs(o.epochs)
                     .schedule(schedule)
                     .threads(cores)
                     .checkpoint_dir(checkpoints.string())
                     .checkpoint_every(o.checkpoint_every)
                     .checkpoint_epochs({o.epochs});
  options.validate();

  const auto data = setup.load_data();
  if (o.augment && (data->channels != 3 || data->height != 32 || data->width != 32))
    throw Error("--augment is for 3x32x32 images; " + data->name + " has " + std::to_string(data->channels) + "x" +
                std::to_string(data->height) + "x" + std::to_string(data->width));
  options.augment(o.augment);
  models::ModelOptions model_options{.channels = data->channels, .height = data->height, .width = data->width,
                                     .classes = data->classes, .width_multiplier = o.width_multiplier};
  const double flops = models::estimate_flops(o.model, model_options);  // Error: a model that cannot take these inputs


  // --- the run: one job on every core ----------------------------------------
  Job job;
  job.name = o.model + "/" + o.schedule;
  job.spec = {{"command", "train"}, {"model", o.model},         {"schedule", o.schedule},
              {"data", data->name}, {"epochs", o.epochs},       {"optimizer", common.optimizer},
              {"lr", options.effective_lr()}, {"batch_size", common.batch_size}};
  if (o.model == "mobilenetv2") job.spec["width_multiplier"] = o.width_multiplier;
  if (o.augment) job.spec["augment"] = true;
  job.cores = cores;
  const std::int64_t samples = o.limit > 0 ? std::min<std::int64_t>(o.limit, data->train.size()) : data->train.size();
  if (o.limit > 0) job.spec["limit"] = o.limit;
  job.cost = flops * kBackwardFactor * static_cast<double>(samples) * o.epochs;
  job.run = [&, options, model_options](JobContext& ctx) mutable {
    model_options.seed = ctx.seed();
    auto run_options = options;
    run_options.seed(ctx.seed()).threads(ctx.threads());
    if (common.resume) {
      if (auto last = train::latest_checkpoint(checkpoints)) run_options.resume_from(last->string());
    }
    train::Trainer trainer(models::make_model(o.model, model_options), run_options);
    if (!common.quiet)
      std::printf("packtrain train: %s on %s, %d epochs, %s schedule, %d core%s%s\n", o.model.c_str(), data->name.c_str(),
                  o.epochs, o.schedule.c_str(), ctx.threads(), ctx.threads() == 1 ? "" : "s",
                  run_options.resume_from().empty() ? "" : (", resuming from " + run_options.resume_from()).c_str());
    train::TrainCallbacks callbacks;
    callbacks.should_stop = [&ctx] { return ctx.stop_requested(); };
    callbacks.on_epoch = [&](const train::EpochMetrics& m) {
      ctx.report({{"epoch", m.epoch}, {"train_loss", m.train_loss}, {"val_top1", m.val_top1}, {"seconds", m.seconds}});
      if (common.quiet) return;
      std::printf("epoch %3d/%d  train loss %.4f  test loss %.4f  test top-1 %.4f  top-5 %.4f  lr %.5f  %.1fs\n",
                  m.epoch, o.epochs, m.train_loss, m.val_loss, m.val_top1, m.val_top5, m.lr, m.seconds);
      std::fflush(stdout);
    };
    auto train_data = train::TrainData::train_test(*data);
    train_data.train_idx = train_data.train_idx.slice(0, 0, samples);  // --limit
    const auto result = trainer.fit(train_data, callbacks);
    auto metrics = result.metrics();
    metrics["epochs"] = o.epochs;
    return JobOutcome{.status = result.status, .metrics = metrics, .message = result.message};
  };
  std::vector<Job> jobs;
  jobs.push_back(std::move(job));
  setup.open_run({{"metric", "val_top1"}, {"model", o.model}}, std::move(jobs), train::result_columns());
  const auto run = setup.run();

  auto summary = setup.summary_json(run);
  summary["model"] = o.model;
  summary["schedule"] = o.schedule;
  setup.finish(run, summary);
  if (setup.is_root()) {
    for (const auto& r : run.jobs) {
      if (r.status == JobStatus::done) {
        std::printf("packtrain train: done in %.1fs: test top-1 %s\n", r.seconds(), result_cell(r, "val_top1").c_str());
      } else {
        std::fprintf(stderr, "packtrain train: %s%s%s\n", std::string(to_string(r.status)).c_str(),
                     r.message.empty() ? "" : ": ", r.message.c_str());
      }
    }
  }
  setup.print_outputs();
  return run.exit_code();
}

}  // namespace packtrain::cli
