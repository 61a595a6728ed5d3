#include <packtrain/kfold/kfold.hpp>

#include <packtrain/models/models.hpp>
#include <packtrain/scheduler/console_sink.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/results.hpp>
#include <packtrain/train/checkpoint.hpp>
#include <packtrain/train/fused_trainer.hpp>
#include <packtrain/train/trainer.hpp>


#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

namespace packtrain::kfold {
namespace {

// The folds each fused job of a (model, schedule) trains: as many folds a
// job as keeps every core busy (the sweep's jobs over the cores), at most
// the group's, in near-equal runs of consecutive folds. Empty: no fusing.
std::vector<std::vector<int>> fused_chunks(int folds, std::size_t total_jobs, int cores) {
  if (cores < 1) return {};
  const int per = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(folds), total_jobs / cores));
  if (per < 2) return {};
  const int chunks = (folds + per - 1) / per;
  std::vector<std::vector<int>> out(static_cast<std::size_t>(chunks));
  for (int f = 0; f < folds; ++f) out[static_cast<std::size_t>(f * chunks / folds)].push_back(f);
  return out;
}

std::filesystem::path fold_outcome_path(const std::filesystem::path& dir, int fold) {
  return dir / ("fold" + std::to_string(fold) + ".json");
}

// The job that trains `chunk`'s folds fused, and each fold's job made its
// follower: it waits for the fused job and returns what it wrote for it.
void fuse(std::vector<Job>& jobs, std::size_t first, const std::vector<int>& chunk, const std::string& model,
          const std::string& label, train::Schedule schedule, const std::shared_ptr<const data::DatasetSplit>& data,
          const std::shared_ptr<const std::vector<data::Fold>>& folds, const KFoldOptions& options) {
  // The slowdown fusing saves (bench_fused, lenet5 at batch 32-256): for longest-first order.
  constexpr double kFusedSpeedup = 1.3;
  Job fused;
  nlohmann::json group = jobs[first].spec;
  group.erase("fold");
  group["fused_folds"] = chunk;
  // No top-level model or schedule: summaries and reports group the folds' rows, not this one.
  fused.spec = {{"sweep", "kfold"}, {"fused", group}};
  fused.name = label + "/" + std::string(train::to_string(schedule)) + "/fused" + std::to_string(chunk.front()) + "-" +
               std::to_string(chunk.back());
  fused.memory_mb = options.memory_mb_per_job() * chunk.size();
  std::vector<std::uint64_t> seeds;
  for (const int f : chunk) {
    const auto& job = jobs[first + static_cast<std::size_t>(f)];
    fused.cost += job.cost / kFusedSpeedup;
    seeds.push_back(derive_seed(job.id(), options.seed()));  // the seed the runner gives the fold's own job
  }
  const auto fused_id = fused.id();
  fused.run = [data, folds, model, options, schedule, chunk, seeds](JobContext& ctx) {
    const std::filesystem::path root = options.checkpoint_root();
    const auto dir = root / ctx.id();
    std::vector<train::FusedFold> runs;
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      const models::ModelOptions shape{.channels = data->channels, .height = data->height, .width = data->width,
                                       .classes = data->classes, .seed = seeds[i]};
      runs.push_back({models::make_model(model, shape),
                      train::TrainData::from_fold(*data, (*folds)[static_cast<std::size_t>(chunk[i])]), seeds[i]});
    }
    auto topts = options.trainer();
    topts.schedule(schedule).threads(ctx.threads()).checkpoint_every(0).checkpoint_epochs({}).checkpoint_dir("");
    train::FusedCallbacks callbacks;
    callbacks.should_stop = [&ctx] { return ctx.stop_requested(); };
    if (options.print_every() > 0) {
      callbacks.on_epoch = [&ctx, &chunk, every = options.print_every()](int i, const train::EpochMetrics& e) {
        if (e.epoch % every != 0) return;
        ctx.report({{"fold", chunk[static_cast<std::size_t>(i)]}, {"epoch", e.epoch}, {"train_loss", e.train_loss},
                    {"val_top1", e.val_top1}, {"val_loss", e.val_loss}, {"lr", e.lr}, {"seconds", e.seconds}});
      };
    }
    const auto results = train::fit_fused(model, runs, topts, callbacks);
    // Stopped (Ctrl-C, preemption): no fold's outcome is written, so its
    // follower is skipped and a --resume trains the folds again.
    bool stopped = false;
    for (const auto& r : results) stopped = stopped || r.status == JobStatus::cancelled;
    if (stopped)
      return JobOutcome{.status = JobStatus::cancelled,
                        .metrics = {{"train_seconds", results.front().seconds}},
                        .message = "stopped: --resume trains these folds again"};
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::vector<std::string> artifacts;
    nlohmann::json summary = nlohmann::json::object();
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      auto metrics = results[i].metrics();
      metrics["fused_job"] = ctx.id();
      const auto path = fold_outcome_path(dir, chunk[i]);
      write_file_atomically(path, nlohmann::json{{"status", std::string(to_string(results[i].status))},
                                                 {"message", results[i].message},
                                                 {"metrics", metrics}}
                                          .dump(2) + "\n");
      artifacts.push_back(path.lexically_relative(root.parent_path()).generic_string());
      summary["fold" + std::to_string(chunk[i])] = std::string(to_string(results[i].status));
    }
    return JobOutcome{.status = JobStatus::done,
                      .metrics = {{"folds", summary}, {"train_seconds", results.front().seconds}},
                      .artifacts = artifacts};
  };
  for (const int f : chunk) {
    auto& job = jobs[first + static_cast<std::size_t>(f)];
    job.after.push_back(fused_id);
    job.cost = 1.0;  // reads a file
    // Without its file (removed with checkpoints/ after the fused job ended),
    // the fold trains alone, as it would unfused: the same numbers up to rounding.
    job.run = [root = std::filesystem::path(options.checkpoint_root()), fused_id, f,
               alone = std::move(job.run)](JobContext& ctx) {
      const auto path = fold_outcome_path(root / fused_id, f);
      std::error_code ec;
      if (!std::filesystem::exists(path, ec)) return alone(ctx);
      std::ifstream in(path);
      const auto outcome = nlohmann::json::parse(in, nullptr, false);
      if (!in || outcome.is_discarded() || !outcome.is_object() || !outcome.contains("status"))
        throw Error("fold " + std::to_string(f) + "'s outcome from its fused job " + fused_id + " is unreadable: " +
                    path.string() + " (remove it to train the fold alone)");
      return JobOutcome{.status = job_status_from_string(outcome["status"].get<std::string>()),
                        .metrics = outcome.value("metrics", nlohmann::json::object()),
                        .message = outcome.value("message", "")};
    };
  }
  jobs.push_back(std::move(fused));
}

}  // namespace

KFold::KFold(std::shared_ptr<const data::DatasetSplit> data, KFoldOptions options)
    : data_(std::move(data)), options_(std::move(options)) {
  if (!data_) throw Error("a k-fold sweep needs a dataset");
  auto trainer = options_.trainer();
  if (trainer.checkpoint_every() > 0) {
    // Each job checkpoints into a folder of its own under checkpoint_root.
    if (options_.checkpoint_root().empty())
      throw Error("checkpoints every " + std::to_string(trainer.checkpoint_every()) +
                  " epoch(s) need a folder for them (KFoldOptions::checkpoint_root)");
    trainer.checkpoint_dir(options_.checkpoint_root());
  }
  trainer.validate();
  const std::int64_t n = data_->train.size();
  if (options_.limit() < 0) throw Error("--limit must not be negative");
  const std::int64_t used = options_.limit() > 0 ? std::min(options_.limit(), n) : n;
  if (options_.folds() < 2) throw Error("--folds must be at least 2 (got " + std::to_string(options_.folds()) + ")");
  if (options_.folds() > used)
    throw Error("--folds " + std::to_string(options_.folds()) + " is more than the " + std::to_string(used) +
                " training samples");
  dataparallel::check_sweep_cores(options_.cores_per_job(), options_.max_cores_per_job(), options_.micro_batch(),
                                  trainer.batch_size());
  const auto labels = data_->train.labels.slice(0, 0, used);
  folds_ = std::make_shared<const std::vector<data::Fold>>(
      data::kfold_splits(labels, options_.folds(), options_.seed(), options_.stratified()));
}

KFold& KFold::add_model(const std::string& name, ModelFactory factory) {
  models::ModelOptions shape{.channels = data_->channels, .height = data_->height, .width = data_->width,
                             .classes = data_->classes};
  const auto label_of = [](const std::string& model, bool zoo_or_file) {
    return zoo_or_file ? models::model_label(model) : model;  // a caller's factory: its name as given
  };
  for (const auto& m : models_)
    if (label_of(m.name, m.zoo) == label_of(name, !factory))
      throw Error(m.name == name ? "model " + name + " is in the sweep twice"
                                 : "models " + m.name + " and " + name + " would both be named " +
                                       label_of(name, !factory) + " in the results: rename one file");
  double flops = 0;
  const bool zoo = !factory;
  if (!factory) {
    flops = models::estimate_flops(name, shape);  // throws for unknown names and inputs that do not fit
    factory = [name](const models::ModelOptions& o) { return models::make_model(name, o); };
  } else {
    flops = factory(shape)->flops();
  }
  models_.push_back({name, std::move(factory), flops, zoo, label_of(name, zoo)});
  return *this;
}

KFold& KFold::add_schedule(train::Schedule schedule) {
  schedules_.push_back(schedule);
  return *this;
}

std::vector<Job> KFold::jobs() const {
  if (models_.empty()) throw Error("a k-fold sweep needs at least one model");
  if (schedules_.empty()) throw Error("a k-fold sweep needs at least one schedule");
  const auto& t = options_.trainer();
  std::vector<Job> jobs;
  const std::size_t total_jobs = models_.size() * schedules_.size() * static_cast<std::size_t>(options_.folds());
  for (const auto& m : models_) {
    for (const auto schedule : schedules_) {
      const std::size_t first = jobs.size();
      const bool fusable = options_.fuse() && m.zoo && !options_.checkpoint_root().empty() && !options_.gangs() &&
                     options_.cores_per_job() == 1 && std::max(options_.max_cores_per_job(), 1) == 1 &&
                     train::fusion_pays(m.name, t.batch_size());
      for (int fold = 0; fold < options_.folds(); ++fold) {
        Job job;
        job.name = m.label + "/" + std::string(train::to_string(schedule)) + "/fold" + std::to_string(fold);
        job.spec = {{"sweep", "kfold"},
                    {"data", data_->name},
                    {"schedule", std::string(train::to_string(schedule))},
                    {"fold", fold},
                    {"folds", options_.folds()},
                    {"stratified", options_.stratified()},
                    {"limit", options_.limit()},
                    {"epochs", t.epochs()},
                    {"batch_size", t.batch_size()},
                    {"optimizer", std::string(train::to_string(t.optimizer()))},
                    {"lr", t.effective_lr()},
                    {"seed", options_.seed()}};
        // Its label, and a file's hash; a caller's factory: its name.
        job.spec.update(m.zoo ? models::model_spec(m.name) : nlohmann::json{{"model", m.name}});
        job.cores = options_.cores_per_job();
        job.memory_mb = options_.memory_mb_per_job();
        const int max_cores = std::max(options_.max_cores_per_job(), job.cores);
        const auto parallelism = options_.parallelism().value_or(dataparallel::default_parallelism(m.name));
        // Replicas where a job has cores to share out (DESIGN.md decision 10).
        // (A model of the caller's own factory trains with threads: replicas build zoo models.)
        // Gang jobs always train replicas (a gang or one rank, the same numbers).
        if (options_.gangs() && !m.zoo)
          throw Error("model " + m.label + " is the caller's own: gang jobs train the zoo's models as replicas");
        const bool replicas =
            m.zoo && (options_.gangs() || (max_cores > 1 && parallelism == dataparallel::Parallelism::replicas));
        if (replicas) {
          if (fold == 0)
            dataparallel::check_replicable(m.name, {.channels = data_->channels, .height = data_->height,
                                                    .width = data_->width, .classes = data_->classes});
          job.spec["parallelism"] = "replicas";
          job.spec["micro_batch"] = options_.micro_batch();
          job.max_cores = max_cores;
        }
        job.cost = train::job_cost(m.flops, static_cast<double>((*folds_)[fold].train_idx.size(0)),
                                   static_cast<double>((*folds_)[fold].val_idx.size(0)), t.epochs());
        job.run = [data = data_, folds = folds_, factory = m.factory, name = m.name, options = options_, schedule,
                   fold, replicas](JobContext& ctx) {
          models::ModelOptions shape{.channels = data->channels, .height = data->height, .width = data->width,
                                     .classes = data->classes, .seed = ctx.seed()};
          auto topts = options.trainer();
          topts.schedule(schedule).seed(ctx.seed()).threads(ctx.threads());
          if (!options.checkpoint_root().empty()) {
            const auto dir = std::filesystem::path(options.checkpoint_root()) / ctx.id();
            // A preempted attempt's mid-epoch checkpoint is the latest: a later
            // epoch checkpoint or the job's end removes it.
            const auto preempted = train::preempt_checkpoint_path(dir);
            topts.preempt_checkpoint(preempted.string());
            if (topts.checkpoint_every() > 0) {
              topts.checkpoint_dir(dir.string());
              if (auto latest = train::latest_checkpoint(dir)) topts.resume_from(latest->string());
            }
            std::error_code ec;
            if (!replicas && std::filesystem::is_regular_file(preempted, ec)) topts.resume_from(preempted.string());
          }
          const auto resumed_from = topts.resume_from();
          const auto fold_data = train::TrainData::from_fold(*data, (*folds)[fold]);
          train::TrainResult result;
          nlohmann::json metrics;
          if (replicas) {
            // fit_in_job reports every epoch, with the replicas and the sync share.
            const auto dp = dataparallel::fit_in_job(ctx, shape,
                                                     dataparallel::DataParallelOptions()
                                                         .model(name)
                                                         .train(topts)
                                                         .micro_batch(options.micro_batch())
                                                         .gang(options.gangs() ? options.gangs()(ctx.id()) : nullptr),
                                                     fold_data);
            result = dp.train;
            metrics = dp.metrics();
          } else {
            train::Trainer trainer(factory(shape), topts);
            train::TrainCallbacks callbacks;
            callbacks.should_stop = [&ctx] { return ctx.stop_requested(); };
            callbacks.should_checkpoint = [&ctx] { return ctx.checkpoint_requested(); };
            if (options.print_every() > 0) {
              callbacks.on_epoch = [&ctx, every = options.print_every()](const train::EpochMetrics& e) {
                if (e.epoch % every != 0) return;
                ctx.report({{"epoch", e.epoch}, {"train_loss", e.train_loss}, {"val_top1", e.val_top1},
                            {"val_loss", e.val_loss}, {"lr", e.lr}, {"seconds", e.seconds}});
              };
            }
            result = trainer.fit(fold_data, callbacks);
            metrics = result.metrics();
          }
          // A job that went on from its last checkpoint (--checkpoint-every, --resume) says from which.
          if (!resumed_from.empty())
            metrics["resumed_from"] = std::filesystem::path(resumed_from).filename().string();
          return JobOutcome{.status = result.status, .metrics = metrics, .message = result.message};
        };
        jobs.push_back(std::move(job));
      }
      if (!fusable) continue;
      for (const auto& chunk : fused_chunks(options_.folds(), total_jobs, options_.fuse_cores())) {
        std::vector<std::int64_t> sizes;
        for (const int f : chunk) sizes.push_back((*folds_)[static_cast<std::size_t>(f)].train_idx.size(0));
        // Checkpoint settings are the run's, not the job list's: fused jobs write none (fit_fused's options drop them).
        if (chunk.size() < 2 || !train::why_not_fused(m.name, sizes, train::TrainOptions(t).checkpoint_every(0)).empty())
          continue;
        fuse(jobs, first, chunk, m.name, m.label, schedule, data_, folds_, options_);
      }
    }
  }
  return jobs;
}

KFoldResult KFold::run(JobRunner& runner, const RunOptions& options) const {
  // A fused job gives each fold the seed the runner would (derive_seed of its id and the base seed).
  if (options_.fuse() && options.base_seed != options_.seed())
    throw Error("fused folds take their seeds from KFoldOptions::seed (" + std::to_string(options_.seed()) +
                "), but the runner's base seed is " + std::to_string(options.base_seed) + ": set them alike");
  for (auto& job : jobs()) runner.add(std::move(job));
  return result_of(runner.run(options));
}

KFoldResult result_of(RunSummary run) {
  KFoldResult result;
  result.run = std::move(run);
  result.groups = summarize(result.run.jobs);
  for (const auto& r : result.run.jobs) result.sum_job_seconds += r.seconds();
  // The speedup over running this run's jobs one after another.
  result.speedup = result.run.makespan_s > 0 ? result.run.job_seconds / result.run.makespan_s : 0;
  return result;
}

std::vector<GroupSummary> summarize(const std::vector<JobRecord>& records) {
  std::vector<GroupSummary> groups;
  std::map<std::pair<std::string, std::string>, std::size_t> where;
  std::vector<std::vector<double>> top1, loss;
  for (const auto& r : records) {
    if (!r.spec.contains("model") || !r.spec.contains("schedule")) continue;
    const auto key = std::make_pair(r.spec["model"].get<std::string>(), r.spec["schedule"].get<std::string>());
    auto [it, added] = where.emplace(key, groups.size());
    if (added) {
      groups.push_back({.model = key.first, .schedule = key.second});
      top1.emplace_back();
      loss.emplace_back();
    }
    auto& g = groups[it->second];
    ++g.folds_total;
    if (r.status != JobStatus::done || !r.metrics.contains("val_top1") || !r.metrics["val_top1"].is_number()) continue;
    ++g.folds_done;
    top1[it->second].push_back(r.metrics["val_top1"].get<double>());
    if (r.metrics.contains("val_loss") && r.metrics["val_loss"].is_number())
      loss[it->second].push_back(r.metrics["val_loss"].get<double>());
  }
  int best = -1;
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const auto& v = top1[i];
    if (v.empty()) continue;
    double sum = 0;
    for (double x : v) sum += x;
    groups[i].mean_top1 = sum / v.size();
    double sq = 0;
    for (double x : v) sq += (x - groups[i].mean_top1) * (x - groups[i].mean_top1);
    groups[i].std_top1 = v.size() > 1 ? std::sqrt(sq / (v.size() - 1)) : 0;
    double lsum = 0;
    for (double x : loss[i]) lsum += x;
    groups[i].mean_loss = loss[i].empty() ? NAN : lsum / loss[i].size();
    if (best < 0 || groups[i].mean_top1 > groups[best].mean_top1) best = static_cast<int>(i);
  }
  if (best >= 0) groups[best].best = true;
  return groups;
}

std::string format_summary(const KFoldResult& result, int cores, int ranks) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof(line), "%-12s %-9s %7s  %-20s %9s\n", "model", "schedule", "folds", "val top-1 mean ± std",
                "val loss");
  out += line;
  for (const auto& g : result.groups) {
    if (g.folds_done == 0) {
      // No fold finished: no score to show, not a score of 0. ("—" is one
      // column but three bytes, so it is padded by hand.)
      std::snprintf(line, sizeof(line), "%-12s %-9s %3d/%-3d  ", g.model.c_str(), g.schedule.c_str(), g.folds_done,
                    g.folds_total);
      out += std::string(line) + "—" + std::string(19, ' ') + " " + std::string(8, ' ') + "—\n";
      continue;
    }
    std::snprintf(line, sizeof(line), "%-12s %-9s %3d/%-3d  %.4f ± %.4f      %9.4f%s\n", g.model.c_str(),
                  g.schedule.c_str(), g.folds_done, g.folds_total, g.mean_top1, g.std_top1, g.mean_loss,
                  g.best ? "  <- best" : "");
    out += line;
  }
  out += format_speedup(result.run, cores, ranks) + "\n";
  return out;
}

}  // namespace packtrain::kfold
