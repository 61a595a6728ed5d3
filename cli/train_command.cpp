// packtrain train: one model trained on all the cores it is given.
//
// Its cores run synchronous replicas (dataparallel/, DESIGN.md decision 10):
// a step's batch is cut into --micro-batch samples, replicas take them, and
// the gradients are summed in a fixed order, so the numbers depend on the
// micro-batch and never on --cores. --parallelism threads trains one model
// with intra-op threads instead (what the cores did before).
//
// The run is one job on the scheduler, set up as every sweep is (RunSetup):
// journal and --resume, results.csv and results.json, trace.json and
// report.html, --serve, Ctrl-C handling. Everything the user can get wrong
// is checked before the output folder is touched.
#include "command_entry.hpp"
#include "commands.hpp"
#include "common_options.hpp"
#include "run_setup.hpp"

#include <packtrain/data/dataset.hpp>
#include <packtrain/dataparallel/data_parallel.hpp>
#include <packtrain/models/models.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/resources.hpp>
#include <packtrain/scheduler/results.hpp>
#include <packtrain/train/checkpoint.hpp>
#include <packtrain/train/trainer.hpp>

#include <algorithm>
#include <memory>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

namespace po = boost::program_options;

namespace packtrain::cli {
namespace {


struct TrainCommandOptions {
  std::string model = "mlp";
  int epochs = 5;
  std::string schedule = "cosine";
  int checkpoint_every = 0;
  double width_multiplier = 1.0;
  bool augment = false;
  std::int64_t limit = 0;
  int max_cores = 0;  // 0: --cores
  std::int64_t micro_batch = dataparallel::kDefaultMicroBatch;
  std::string parallelism;  // empty: the model's default
  std::string lr_scaling = "none";
  int warmup_epochs = 0;
  double bucket_cap_mb = dataparallel::kDefaultBucketCapMb;
  std::string overlap = "on";
};

std::string list_text(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// A gang's start, agreed by its ranks before the run opens: the latest
// epoch every rank has a checkpoint of (with --resume; none: from scratch),
// and the weights each rank then holds, compared by hash. Throws the same
// Error on every rank (a usage error: nothing started, nothing written)
// when a rank cannot read its checkpoint or starts from other weights.
std::string agree_gang_start(dataparallel::Gang& gang, const CommonOptions& common, const TrainCommandOptions& o,
                             const std::filesystem::path& checkpoints, const Job& job,
                             models::ModelOptions model_options) {
  const auto members = static_cast<std::size_t>(gang.size());
  // First, what decides the exchanges below, at one size on every rank: the
  // job (its flags), --resume and --epochs. Ranks started with other flags
  // are refused here, before they make exchanges of other sizes.
  struct Head {
    std::uint64_t job = 0;
    std::int64_t epochs = 0;
    std::int64_t resume = 0;
  } head{stable_hash(job.id()), o.epochs, common.resume ? 1 : 0};
  std::vector<Head> heads(members);
  gang.allgather(&head, sizeof head, heads.data());
  for (std::size_t r = 1; r < members; ++r)
    if (heads[r].job != heads[0].job || heads[r].epochs != heads[0].epochs || heads[r].resume != heads[0].resume)
      throw Error("rank " + std::to_string(r) + " was started with other flags than rank 0 (its job, --epochs or "
                  "--resume differ): start every rank with the same command");
  std::string resume_from;
  if (common.resume) {
    std::vector<char> have(static_cast<std::size_t>(o.epochs) + 1, 0);
    for (int e = 1; e <= o.epochs; ++e) {
      std::error_code ec;  // unreadable counts as missing
      have[static_cast<std::size_t>(e)] = std::filesystem::exists(train::checkpoint_path(checkpoints, e), ec);
    }
    std::vector<char> all(have.size() * members);
    gang.allgather(have.data(), have.size(), all.data());
    for (int e = o.epochs; e >= 1 && resume_from.empty(); --e) {
      bool everywhere = true;
      for (std::size_t r = 0; r < members; ++r) everywhere = everywhere && all[r * have.size() + static_cast<std::size_t>(e)];
      if (everywhere) resume_from = train::checkpoint_path(checkpoints, e).string();
    }
  }
  // Each rank's weights: the job's model from its seed, and the checkpoint.
  struct Start {
    std::uint64_t hash = 0;
    char problem[248] = {};
  } mine;
  try {
    model_options.seed = derive_seed(job.id(), common.seed);
    auto model = models::make_model(o.model, model_options);
    if (!resume_from.empty()) (void)train::load_checkpoint(resume_from, *model, nullptr);
    mine.hash = dataparallel::weights_hash(*model);
  } catch (const std::exception& e) {
    std::snprintf(mine.problem, sizeof mine.problem, "%s", e.what());
  }
  std::vector<Start> all(members);
  gang.allgather(&mine, sizeof mine, all.data());
  for (std::size_t r = 0; r < members; ++r)
    if (all[r].problem[0] != '\0') throw Error("rank " + std::to_string(r) + ": " + all[r].problem);
  for (std::size_t r = 1; r < members; ++r)
    if (all[r].hash != all[0].hash) {
      char text[96];
      std::snprintf(text, sizeof text, "(hash %016llx, rank 0 %016llx)", static_cast<unsigned long long>(all[r].hash),
                    static_cast<unsigned long long>(all[0].hash));
      throw Error("rank " + std::to_string(r) + " starts from other weights than rank 0 " + text +
                  (resume_from.empty() ? ": start every rank with the same command"
                                       : ": its " + resume_from + " is another run's; start every rank from the same run"));
    }
  return resume_from;
}

// How many ranks mpirun or srun started (their environment says so before
// MPI is initialized); 1 when it does not say.
int launched_ranks() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"})
    if (const char* value = std::getenv(name)) {
      char* end = nullptr;
      const long n = std::strtol(value, &end, 10);
      if (end != value && n > 0) return static_cast<int>(n);
    }
  return 1;
}

// In a batch (meta_prefix set), an entry of its own: its job starts on one
// core of the batch's run and, with replicas, grows onto idle ones (up to
// --max-cores, default every core of the run); it trains on its own, never
// as a gang of the batch's ranks; its epoch lines are not printed (the
// results hold them); its checkpoints go to OUT/checkpoints/ENTRY.
class TrainEntry final : public CommandEntry {
 public:
  TrainEntry() : CommandEntry("train") { columns = train::result_columns(); }

  void check_options() override {
    // One job: its gang is the world (RunSetup takes a value above 1 for a sweep's lanes).
    ranks_given_ = common.given.count("ranks-per-job") > 0;
    ranks_per_job_ = common.ranks_per_job;
    common.ranks_per_job = 1;
    const bool batch = !meta_prefix.empty();
    if (batch && ranks_given_) throw Error("--ranks-per-job is not for a batch's train entry: run packtrain train alone under mpirun");
    // The job has --cores and may grow to --max-cores: the run holds the most.
    // Ranks of a run started by mpirun or srun train replicas together, whatever the model's default.
    parallelism_ = dataparallel::parallelism_from_string(
        !o_.parallelism.empty()            ? o_.parallelism
        : launched_ranks() > 1 && !batch   ? std::string("replicas")
                                           : std::string(dataparallel::to_string(dataparallel::default_parallelism(o_.model))));
    lr_scaling_ = dataparallel::lr_scaling_from_string(o_.lr_scaling);
    job_cores_ = batch ? std::optional<int>(1) : common.cores;
    if (common.given.count("max-cores")) {
      if (parallelism_ != dataparallel::Parallelism::replicas)
        throw Error("--max-cores is for --parallelism replicas: intra-op threads cannot change in a running job");
      const int usable = detect_node_resources().core_count();
      if (o_.max_cores > usable)
        throw Error("--max-cores " + std::to_string(o_.max_cores) + " is above the " + std::to_string(usable) +
                    " usable core(s) of this node");
      if (job_cores_ && o_.max_cores < *job_cores_)
        throw Error("--max-cores " + std::to_string(o_.max_cores) + " is below --cores " + std::to_string(*job_cores_));
      if (o_.max_cores < 1) throw Error("--max-cores must be at least 1 (got " + std::to_string(o_.max_cores) + ")");
      if (!job_cores_) job_cores_ = o_.max_cores;
      if (!batch) common.cores = o_.max_cores;
    }
  }

  std::vector<Job> plan(RunSetup& setup) override {
    auto& o = o_;
    const bool batch = !meta_prefix.empty();
    if (o.epochs < 1) throw Error("--epochs must be at least 1, not " + std::to_string(o.epochs));
    if (o.checkpoint_every < 0) throw Error("--checkpoint-every must not be negative");
    if (o.limit < 0) throw Error("--limit must not be negative (got " + std::to_string(o.limit) + ")");
    if (common.given.count("width-multiplier") && o.model != "mobilenetv2")
      throw Error("--width-multiplier is for mobilenetv2; --model " + o.model + " has no width to scale");
    (void)models::model_hash(o.model);  // Error: an unknown name, a file that is not TorchScript
    label_ = models::model_label(o.model);
    const auto schedule = train::schedule_from_string(o.schedule);
    if (o.micro_batch < 1) throw Error("--micro-batch must be at least 1, not " + std::to_string(o.micro_batch));
    if (o.micro_batch > common.batch_size)
      throw Error("--micro-batch " + std::to_string(o.micro_batch) + " is larger than --batch-size " +
                  std::to_string(common.batch_size));
    if (common.batch_size % o.micro_batch != 0)
      throw Error("--micro-batch " + std::to_string(o.micro_batch) + " does not divide --batch-size " +
                  std::to_string(common.batch_size) + " (a step's batch is cut into equal micro-batches)");
    if (o.warmup_epochs < 0 || o.warmup_epochs > o.epochs)
      throw Error("--warmup-epochs must be in 0.." + std::to_string(o.epochs) + " (--epochs), not " +
                  std::to_string(o.warmup_epochs));
    const bool replicas = parallelism_ == dataparallel::Parallelism::replicas;
    if (!replicas && common.given.count("micro-batch"))
      throw Error("--micro-batch is for --parallelism replicas; with threads the whole batch is one");
    if (!replicas && o.warmup_epochs > 0) throw Error("--warmup-epochs is for --parallelism replicas");
    // Under mpirun every rank trains the one job on its cores, together: a gang.
    if (ranks_per_job_ < 1) throw Error("--ranks-per-job must be at least 1, not " + std::to_string(ranks_per_job_));
    if (ranks_given_ && ranks_per_job_ != setup.ranks())
      throw Error("--ranks-per-job " + std::to_string(ranks_per_job_) + ": train runs one job, on every rank of the run (" +
                  std::to_string(setup.ranks()) + (setup.ranks() > 1 ? "" : ": started without mpirun") +
                  "); start it with mpirun -np " + std::to_string(ranks_per_job_) + " instead");
    if (setup.ranks() > 1 && !batch) {
      if (!replicas)
        throw Error("under mpirun the ranks train the model together as replicas; --parallelism threads trains on "
                    "one process: run it without mpirun");
      check_micro_batches_for_ranks(common.batch_size, o.micro_batch, setup.ranks());
      gang_ = setup.gang();
    }
    if (o.overlap != "on" && o.overlap != "off") throw Error("--overlap must be on or off, not '" + o.overlap + "'");
    if (!(o.bucket_cap_mb > 0) || o.bucket_cap_mb > 1024)
      throw Error("--bucket-cap-mb must be above 0 and at most 1024, not " + number_text(o.bucket_cap_mb));
    if (!gang_)
      for (const char* flag : {"bucket-cap-mb", "overlap"})
        if (common.given.count(flag))
          throw Error(std::string("--") + flag + " is for a model trained by several ranks (train under mpirun)");
    const int max_cores = std::min(setup.node().core_count(), batch && o.max_cores > 0 ? o.max_cores : setup.node().core_count());
    const int cores = job_cores_.value_or(max_cores);
    // This rank's folder under MPI; a batch's entry's own.
    checkpoints_ = setup.out() / "checkpoints";
    if (batch) checkpoints_ /= entry_name();
    auto options = trainer_options(common)
                       .epochs(o.epochs)
                       .schedule(schedule)
                       .threads(cores)
                       .checkpoint_dir(checkpoints_.string())
                       .checkpoint_every(o.checkpoint_every)
                       .checkpoint_epochs({o.epochs});
    options.validate();
    auto dp_options = dataparallel::DataParallelOptions()
                          .model(o.model)
                          .width_multiplier(o.width_multiplier)
                          .micro_batch(o.micro_batch)
                          .lr_scaling(lr_scaling_)
                          .warmup_epochs(o.warmup_epochs)
                          .parallelism(parallelism_)
                          .gang(gang_)
                          .bucket_cap_mb(o.bucket_cap_mb)
                          .overlap(o.overlap == "on");

    data_ = setup.load_data();
    const auto& data = data_;
    if (o.augment && (data->channels != 3 || data->height != 32 || data->width != 32))
      throw Error("--augment is for 3x32x32 images; " + data->name + " has " + std::to_string(data->channels) + "x" +
                  std::to_string(data->height) + "x" + std::to_string(data->width));
    options.augment(o.augment);
    models::ModelOptions model_options{.channels = data->channels, .height = data->height, .width = data->width,
                                       .classes = data->classes, .width_multiplier = o.width_multiplier};
    const double flops = models::estimate_flops(o.model, model_options);  // Error: a model that cannot take these inputs
    if (replicas) dataparallel::check_replicable(o.model, model_options);

    // --- the job: its cores (and with replicas, up to every core) ------------
    Job job;
    job.name = label_ + "/" + o.schedule;
    job.spec = {{"command", "train"}, {"schedule", o.schedule},
                {"data", data->name}, {"epochs", o.epochs},       {"optimizer", common.optimizer},
                {"lr", options.effective_lr()}, {"batch_size", common.batch_size}};
    job.spec.update(models::model_spec(o.model));  // its label, and a file's hash
    if (o.model == "mobilenetv2") job.spec["width_multiplier"] = o.width_multiplier;
    if (o.augment) job.spec["augment"] = true;
    // The job's identity: what changes its numbers (never the cores, with replicas).
    job.spec["parallelism"] = dataparallel::to_string(parallelism_);
    if (replicas) job.spec["micro_batch"] = o.micro_batch;
    if (lr_scaling_ != dataparallel::LrScaling::none) job.spec["lr_scaling"] = dataparallel::to_string(lr_scaling_);
    if (o.warmup_epochs > 0) job.spec["warmup_epochs"] = o.warmup_epochs;
    job.cores = cores;
    job.max_cores = replicas ? max_cores : 0;
    samples_ = o.limit > 0 ? std::min<std::int64_t>(o.limit, data->train.size()) : data->train.size();
    if (o.limit > 0) job.spec["limit"] = o.limit;
    job.cost = train::job_cost(flops, static_cast<double>(samples_), static_cast<double>(data->test.size()), o.epochs);
    // A gang's ranks agree, before anything is written, on the checkpoint
    // they resume from and that it gives every one of them the same weights.
    if (gang_) gang_resume_from_ = agree_gang_start(*gang_, common, o, checkpoints_, job, model_options);
    job.run = [this, &setup, options, model_options, dp_options, replicas, batch](JobContext& ctx) mutable {
      return run_job(setup, ctx, options, model_options, dp_options, replicas, !batch && !common.quiet && setup.is_root());
    };
    meta = {{"metric", "val_top1"}, {"model", label_}};
    std::vector<Job> jobs;
    jobs.push_back(std::move(job));
    return jobs;
  }

  std::string summarize(RunSetup& setup, const RunSummary& run, nlohmann::json& summary) override {
    summary["model"] = label_;
    summary["schedule"] = o_.schedule;
    std::string text;
    for (const auto& r : run.jobs) {
      if (r.status == JobStatus::done) {
        char line[160];
        std::snprintf(line, sizeof line, "packtrain train: done in %.1fs: test top-1 %s\n", r.seconds(),
                      result_cell(r, "val_top1").c_str());
        text += line;
        if (r.metrics.contains("val_top1")) summary["val_top1"] = r.metrics["val_top1"];
      } else if (setup.is_root()) {
        std::fprintf(stderr, "packtrain train: %s%s%s\n", std::string(to_string(r.status)).c_str(),
                     r.message.empty() ? "" : ": ", r.message.c_str());
      }
    }
    if (gang_ && setup.is_root() && !common.quiet && setup.gang_exchanges() > 0) {
      // Each exchange: this rank's packet out, every rank's in (an allgather).
      const double seconds = setup.gang_seconds();
      const double moved = static_cast<double>(setup.gang_bytes()) * gang_->size();
      const double wall = run.makespan_s > 0 ? run.makespan_s : 0;
      // Exchanges: gradient buckets, step headers, evaluations, checks. The
      // seconds are the gang thread's in MPI calls: those overlapping
      // backward count too.
      char line[512];
      std::snprintf(line, sizeof line,
                    "packtrain train: %d ranks, %lld exchanges of %.0f KiB a rank: %.2f s in MPI on rank 0 (%.0f%% of "
                    "the run, overlapping compute and waiting for the slowest rank included), %.2f GB/s gathered\n",
                    gang_->size(), static_cast<long long>(setup.gang_exchanges()),
                    static_cast<double>(setup.gang_bytes()) / static_cast<double>(setup.gang_exchanges()) / 1024.0,
                    seconds, wall > 0 ? 100.0 * seconds / wall : 0.0, seconds > 0 ? moved / seconds * 1e-9 : 0.0);
      text += line;
    }
    return text;
  }

 protected:
  std::string description() const override { return "packtrain train: train one model on all the cores it is given"; }

  void add_options(po::options_description& desc) override {
    auto& o = o_;
    desc.add_options()
      ("model", po::value(&o.model)->default_value(o.model), ("model: " + list_text(models::model_names()) + ", or the path of a TorchScript file (net.pt)").c_str())
      ("epochs", po::value(&o.epochs)->default_value(o.epochs), "epochs to train (at least 1)")
      ("schedule", po::value(&o.schedule)->default_value(o.schedule),
       "learning-rate schedule over the whole run: none, step, cosine, warm (cosine with warm restarts)")
      ("checkpoint-every", po::value(&o.checkpoint_every)->default_value(o.checkpoint_every),
       "also save a checkpoint every N epochs (0: only the final one, always saved in OUT/checkpoints)")
      ("width-multiplier", po::value(&o.width_multiplier)->default_value(o.width_multiplier, number_text(o.width_multiplier)),
       "mobilenetv2 only: scales every layer's channels")
      ("augment", po::bool_switch(&o.augment), "random crop (4 pixels of padding) and horizontal flip; 3x32x32 data only")
      ("limit", po::value(&o.limit)->default_value(o.limit), "train on the first N training samples only (0: all)")
      ("max-cores", po::value(&o.max_cores),
       "replicas: grow onto up to M cores while they are idle (default: --cores); the numbers stay the same")
      ("micro-batch", po::value(&o.micro_batch)->default_value(o.micro_batch),
       "replicas: each step's --batch-size samples are cut into micro-batches of N, which the replicas take; must "
       "divide --batch-size. The numbers depend on it, never on the core count")
      ("parallelism", po::value(&o.parallelism),
       "replicas (every core trains a replica on micro-batches: the same numbers on any number of cores) or threads "
       "(one model, the cores as intra-op threads; the numbers may change with the cores). Default: the faster "
       "for the model in bench/dataparallel: threads for mlp and TorchScript files, replicas for the others; "
       "replicas for the ranks of mpirun or srun")
      ("lr-scaling", po::value(&o.lr_scaling)->default_value(o.lr_scaling),
       "none, or linear: the learning rate times --batch-size / 64 (Goyal et al. 2017, for large batches)")
      ("warmup-epochs", po::value(&o.warmup_epochs)->default_value(o.warmup_epochs),
       "replicas: raise the learning rate linearly over the first W epochs, from a 64-sample batch's rate to "
       "--lr-scaling's (0: no warm-up)")
      ("bucket-cap-mb", po::value(&o.bucket_cap_mb)->default_value(o.bucket_cap_mb, number_text(o.bucket_cap_mb)),
       "under mpirun: the ranks exchange gradients in buckets of up to this many MiB, the last layers' first (the "
       "first bucket up to 1 MiB, as PyTorch DDP); the numbers do not depend on it")
      ("overlap", po::value(&o.overlap)->default_value(o.overlap),
       "under mpirun: on (a bucket's exchange starts while backward still runs on the layers before it) or off "
       "(once the rank's micro-batches are summed); the numbers do not depend on it");
    add_ranks_per_job_option(desc, common,
                             "under mpirun: the ranks that train the job together; train has one job, so every rank "
                             "of the run",
                             "every rank");
  }

 private:
  JobOutcome run_job(RunSetup& setup, JobContext& ctx, train::TrainOptions options, models::ModelOptions model_options,
                     const dataparallel::DataParallelOptions& dp_options, bool replicas, bool print) {
    const auto& o = o_;
    const auto& data = data_;
    if (gang_) setup.gang_job_started();
    model_options.seed = ctx.seed();
    auto run_options = options;
    run_options.seed(ctx.seed()).threads(ctx.threads());
    if (gang_) {
      run_options.resume_from(gang_resume_from_);
    } else if (common.resume) {
      if (auto last = train::latest_checkpoint(checkpoints_)) run_options.resume_from(last->string());
    }
    if (lr_scaling_ == dataparallel::LrScaling::linear && !replicas)  // replicas scale inside, with the warm-up
      run_options.lr(run_options.effective_lr() * static_cast<double>(common.batch_size) /
                     static_cast<double>(dataparallel::kReferenceBatch));
    if (print) {
      const std::string how = replicas ? std::to_string(ctx.threads()) + (ctx.threads() == 1 ? " replica" : " replicas") +
                                             (ctx.max_cores() > ctx.threads() ? " (up to " + std::to_string(ctx.max_cores()) + ")" : "") +
                                             ", micro-batches of " + std::to_string(o.micro_batch) +
                                             (gang_ ? ", on each of " + std::to_string(gang_->size()) + " ranks" : "")
                                       : std::to_string(ctx.threads()) + " intra-op thread" + (ctx.threads() == 1 ? "" : "s");
      std::printf("packtrain train: %s on %s, %d epochs, %s schedule, %s%s\n", label_.c_str(), data->name.c_str(),
                  o.epochs, o.schedule.c_str(), how.c_str(),
                  run_options.resume_from().empty() ? "" : (", resuming from " + run_options.resume_from()).c_str());
    }
    const auto print_epoch = [&](const train::EpochMetrics& m, const std::string& extra) {
      if (!print) return;
      std::printf("epoch %3d/%d  train loss %.4f  test loss %.4f  test top-1 %.4f  top-5 %.4f  lr %.5f  %.1fs%s\n",
                  m.epoch, o.epochs, m.train_loss, m.val_loss, m.val_top1, m.val_top5, m.lr, m.seconds, extra.c_str());
      std::fflush(stdout);
    };
    auto train_data = train::TrainData::train_test(*data);
    train_data.train_idx = train_data.train_idx.slice(0, 0, samples_);  // --limit
    JobOutcome outcome;
    if (replicas) {
      dataparallel::DataParallelCallbacks callbacks;
      callbacks.on_epoch = [&](const train::EpochMetrics& m, const dataparallel::EpochCost& c) {
        char extra[96];
        std::snprintf(extra, sizeof(extra), "  replicas %d  sync %.0f%%", c.peak_replicas, 100.0 * c.sync_share);
        print_epoch(m, extra);
      };
      const auto result =
          dataparallel::fit_in_job(ctx, model_options, dataparallel::DataParallelOptions(dp_options).train(run_options),
                                   train_data, callbacks);
      outcome = {.status = result.train.status, .metrics = result.metrics(), .message = result.train.message};
      if (gang_) outcome.metrics["ranks"] = gang_->size();
    } else {
      train::Trainer trainer(models::make_model(o.model, model_options), run_options);
      train::TrainCallbacks callbacks;
      callbacks.should_stop = [&ctx] { return ctx.stop_requested(); };
      callbacks.on_epoch = [&](const train::EpochMetrics& m) {
        ctx.report({{"epoch", m.epoch}, {"train_loss", m.train_loss}, {"val_top1", m.val_top1}, {"seconds", m.seconds}});
        print_epoch(m, "");
      };
      const auto result = trainer.fit(train_data, callbacks);
      outcome = {.status = result.status, .metrics = result.metrics(), .message = result.message};
    }
    outcome.metrics["epochs"] = o.epochs;
    return outcome;
  }

  TrainCommandOptions o_;
  bool ranks_given_ = false;
  int ranks_per_job_ = 1;
  dataparallel::Parallelism parallelism_ = dataparallel::Parallelism::replicas;
  dataparallel::LrScaling lr_scaling_ = dataparallel::LrScaling::none;
  std::optional<int> job_cores_;
  std::string label_;
  std::filesystem::path checkpoints_;
  std::shared_ptr<const data::DatasetSplit> data_;
  std::int64_t samples_ = 0;
  std::shared_ptr<dataparallel::Gang> gang_;
  std::string gang_resume_from_;
};

}  // namespace

std::unique_ptr<CommandEntry> make_train_entry() { return std::make_unique<TrainEntry>(); }

int train_command(int argc, char** argv) {
  TrainEntry entry;
  return run_command(entry, argc, argv);
}

}  // namespace packtrain::cli
