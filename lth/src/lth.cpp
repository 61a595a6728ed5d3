#include <packtrain/lth/lth.hpp>

#include <packtrain/models/models.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/results.hpp>
#include <packtrain/train/checkpoint.hpp>
#include <packtrain/train/trainer.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <set>

namespace packtrain::lth {
namespace fs = std::filesystem;
namespace {

std::string fixed(double v, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, v);
  return text;
}

// File names of a retrain: "sparsity-0.9000_reset-1" (one-shot) or "reset-1_round-3".
std::string stem_of(int reset_epoch, double sparsity, int round) {
  if (round > 0) return "reset-" + std::to_string(reset_epoch) + "_round-" + std::to_string(round);
  return "sparsity-" + fixed(sparsity, 4) + "_reset-" + std::to_string(reset_epoch);
}

std::string relative_to_run(const fs::path& path, const fs::path& root) { return path.lexically_relative(root).generic_string(); }

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

void write_json(const fs::path& path, const nlohmann::json& json) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  write_file_atomically(path, json.dump(2) + "\n");
}

at::Tensor first_n(const data::Dataset& part, std::int64_t limit) {
  const auto n = limit > 0 ? std::min(limit, part.size()) : part.size();
  return torch::arange(n, torch::kInt64);
}

std::shared_ptr<models::Model> build(const std::string& name, const data::DatasetSplit& data, std::uint64_t seed) {
  return models::make_model(name, {.channels = data.channels, .height = data.height, .width = data.width,
                                   .classes = data.classes, .seed = seed});
}

train::TrainCallbacks callbacks_for(JobContext& ctx, int print_every) {
  train::TrainCallbacks callbacks;
  callbacks.should_stop = [&ctx] { return ctx.stop_requested(); };
  callbacks.should_checkpoint = [&ctx] { return ctx.checkpoint_requested(); };
  if (print_every > 0) {
    callbacks.on_epoch = [&ctx, print_every](const train::EpochMetrics& e) {
      if (e.epoch % print_every != 0) return;
      ctx.report({{"epoch", e.epoch}, {"train_loss", e.train_loss}, {"test_top1", e.val_top1}, {"val_loss", e.val_loss},
                  {"lr", e.lr}, {"seconds", e.seconds}});
    };
  }
  return callbacks;
}

// A job trained by one train::Trainer saves a mid-epoch checkpoint in `dir`
// when the run is preempted, and goes on from it when there is one (a
// later checkpoint or the job's end removes it). Replicas
// (dataparallel::fit_in_job) go on from their epoch checkpoints.
void preemptible(train::TrainOptions& topts, const fs::path& dir, bool replicas) {
  if (replicas) return;
  const auto preempted = train::preempt_checkpoint_path(dir);
  topts.preempt_checkpoint(preempted.string());
  std::error_code ec;
  if (fs::is_regular_file(preempted, ec)) topts.resume_from(preempted.string());
}

// What a job's training gave: the result and its metrics (test_top1 too).
struct Trained {
  train::TrainResult result;
  nlohmann::json metrics;
};

// Trains a fresh options.model() in the job with `topts`: `load` puts other
// weights in first (after a resume's checkpoint), and `mask`'s removed
// weights stay exactly zero. With `replicas` on the job's cores (and lent
// ones): dataparallel::fit_in_job, the mask applied again after every step
// (MaskedTraining::reset: the optimizers update elementwise, so the kept
// weights get the bits gradient masking gives them); otherwise one
// train::Trainer on the job's threads, the mask on the gradients.
Trained train_in_job(JobContext& ctx, const LthOptions& options, const data::DatasetSplit& shape_of,
                     const train::TrainOptions& topts, const train::TrainData& td, bool replicas,
                     const std::function<void(torch::nn::Module&)>& load, const Mask* mask) {
  Trained out;
  if (replicas) {
    std::optional<MaskedTraining> masked;
    dataparallel::DataParallelCallbacks callbacks;
    callbacks.before_fit = [&](models::Model& master, torch::optim::Optimizer& optimizer) {
      if (load) load(master);
      if (mask) masked.emplace(*mask, master, &optimizer);
    };
    if (mask) callbacks.after_step = [&masked](torch::nn::Module&) { masked->reset(); };
    const models::ModelOptions shape{.channels = shape_of.channels, .height = shape_of.height, .width = shape_of.width,
                                     .classes = shape_of.classes, .seed = ctx.seed()};
    const auto dp = dataparallel::fit_in_job(ctx, shape,
                                             dataparallel::DataParallelOptions()
                                                 .model(options.model())
                                                 .train(topts)
                                                 .micro_batch(options.micro_batch())
                                                 .gang(options.gangs() ? options.gangs()(ctx.id()) : nullptr),
                                             td, callbacks);
    out.result = dp.train;
    out.metrics = dp.metrics();
  } else {
    auto model = build(options.model(), shape_of, ctx.seed());
    if (load) load(*model);
    train::Trainer trainer(model, topts);
    std::optional<MaskedTraining> masked;
    if (mask) masked.emplace(*mask, trainer.model(), &trainer.optimizer());
    out.result = trainer.fit(td, callbacks_for(ctx, options.print_every()));
    out.metrics = out.result.metrics();
  }
  out.metrics["test_top1"] = number_or_null(out.result.val.top1);
  return out;
}

}  // namespace

const std::vector<std::string>& result_columns() {
  static const std::vector<std::string> columns = [] {
    auto c = train::result_columns();
    for (const char* extra : {"kind", "sparsity", "reset_epoch", "round", "test_top1", "weights_left"}) c.push_back(extra);
    return c;
  }();
  return columns;
}

std::optional<TicketPoint> choose_winner(double dense_top1, const std::vector<TicketPoint>& points, double tolerance) {
  std::optional<TicketPoint> best;
  for (const auto& p : points) {
    if (!(p.test_top1 >= dense_top1 - tolerance)) continue;
    if (!best || p.sparsity > best->sparsity || (p.sparsity == best->sparsity && p.test_top1 > best->test_top1)) best = p;
  }
  return best;
}

LotteryTicketSweep::LotteryTicketSweep(std::shared_ptr<const data::DatasetSplit> data, LthOptions options)
    : data_(std::move(data)), options_(std::move(options)) {
  if (!data_) throw Error("a lottery-ticket sweep needs a dataset");
  auto& t = options_.trainer();
  t.validate();
  const int epochs = t.epochs();
  flops_ = models::estimate_flops(options_.model(), {.channels = data_->channels, .height = data_->height,
                                                     .width = data_->width, .classes = data_->classes});
  if (replicas())
    dataparallel::check_replicable(options_.model(), {.channels = data_->channels, .height = data_->height,
                                                      .width = data_->width, .classes = data_->classes});
  if (options_.out_dir().empty()) throw Error("a lottery-ticket sweep needs a run folder (out_dir)");
  if (options_.reset_epochs().empty()) throw Error("--reset-epochs needs at least one epoch");
  std::set<int> seen;
  for (const int e : options_.reset_epochs()) {
    if (e < 0 || e >= epochs)
      throw Error("reset epoch " + std::to_string(e) + " is outside 0.." + std::to_string(epochs - 1) +
                  " (a ticket must have epochs left to train; --epochs is " + std::to_string(epochs) + ")");
    if (!seen.insert(e).second) throw Error("reset epoch " + std::to_string(e) + " is listed twice");
  }
  if (options_.rounds() < 0) throw Error("--rounds must be at least 1");
  if (options_.rounds() == 0) {
    if (options_.sparsities().empty()) throw Error("--sparsities needs at least one sparsity");
    std::set<double> s;
    for (const double x : options_.sparsities()) {
      if (!(x > 0.0 && x < 1.0))
        throw Error("sparsity " + fixed(x, 4) + " is outside (0, 1): it is the fraction of weights removed");
      if (!s.insert(x).second) throw Error("sparsity " + fixed(x, 4) + " is listed twice");
    }
  } else if (!(options_.prune_rate() > 0.0 && options_.prune_rate() < 1.0)) {
    throw Error("--prune-rate " + fixed(options_.prune_rate(), 4) + " is outside (0, 1)");
  }
  if (!(options_.tolerance() >= 0.0 && options_.tolerance() < 1.0)) throw Error("--tolerance must be in [0, 100) points");
  if (options_.limit() < 0) throw Error("--limit must not be negative");
  dataparallel::check_sweep_cores(options_.cores_per_job(), options_.max_cores_per_job(), options_.micro_batch(),
                                  t.batch_size());
  if (!options_.transfer().empty()) {
    transfer_data_ = data::shared_dataset(options_.transfer());
    const auto& d = *transfer_data_;
    if (d.channels != data_->channels || d.height != data_->height || d.width != data_->width || d.classes != data_->classes)
      throw Error("--transfer " + options_.transfer() + " has " + std::to_string(d.channels) + "x" +
                  std::to_string(d.height) + "x" + std::to_string(d.width) + " inputs and " + std::to_string(d.classes) +
                  " classes; the ticket needs the same as " + data_->name);
  }
}

nlohmann::json LotteryTicketSweep::base_spec() const {
  const auto& t = options_.trainer();
  nlohmann::json spec = {{"sweep", "lth"},
          {"data", data_->name},
          {"schedule", std::string(train::to_string(t.schedule()))},
          {"epochs", t.epochs()},
          {"batch_size", t.batch_size()},
          {"optimizer", std::string(train::to_string(t.optimizer()))},
          {"lr", t.effective_lr()},
          {"limit", options_.limit()},
          {"seed", options_.seed()}};
  spec.update(models::model_spec(options_.model()));  // its label, and a file's hash
  return spec;
}

bool LotteryTicketSweep::replicas() const {
  const int max_cores = std::max(options_.max_cores_per_job(), options_.cores_per_job());
  const auto parallelism = options_.parallelism().value_or(dataparallel::default_parallelism(options_.model()));
  return options_.gangs() || (max_cores > 1 && parallelism == dataparallel::Parallelism::replicas);
}

void LotteryTicketSweep::set_cores(Job& job) const {
  job.cores = options_.cores_per_job();
  job.memory_mb = options_.memory_mb_per_job();
  if (!replicas()) return;
  job.max_cores = std::max(options_.max_cores_per_job(), options_.cores_per_job());
  job.spec["parallelism"] = "replicas";
  job.spec["micro_batch"] = options_.micro_batch();
}

std::string LotteryTicketSweep::dense_id() const { return dense_job().id(); }

Job LotteryTicketSweep::dense_job() const {
  const auto& t = options_.trainer();
  Job job;
  job.name = models::model_label(options_.model()) + "/dense";
  job.spec = base_spec();
  job.spec["kind"] = "dense";
  job.spec["sparsity"] = 0.0;
  job.spec["saves"] = options_.reset_epochs();
  set_cores(job);
  const double samples = static_cast<double>(first_n(data_->train, options_.limit()).size(0));
  job.cost = train::job_cost(flops_, samples, static_cast<double>(data_->test.size()), t.epochs());  // validated on test
  job.run = [data = data_, options = options_, replicas = replicas()](JobContext& ctx) {
    const fs::path root = options.out_dir();
    const auto dir = root / "checkpoints" / ctx.id();
    auto saves = options.reset_epochs();
    saves.push_back(options.trainer().epochs());
    auto topts = options.trainer();
    topts.seed(ctx.seed()).threads(ctx.threads()).checkpoint_dir(dir.string()).checkpoint_epochs(saves).resume_from("");
    preemptible(topts, dir, replicas);
    const train::TrainData td{data->train, first_n(data->train, options.limit()), data->test, data::all_indices(data->test)};
    auto [result, metrics] = train_in_job(ctx, options, *data, topts, td, replicas, {}, nullptr);
    metrics["sparsity"] = 0.0;
    std::vector<std::string> artifacts;
    if (result.status == JobStatus::done) {
      std::sort(saves.begin(), saves.end());
      nlohmann::json files = nlohmann::json::array();
      for (const int e : saves) files.push_back(relative_to_run(train::checkpoint_path(dir, e), root));
      metrics["checkpoints"] = files;
      write_json(dir / "result.json", {{"job", ctx.id()}, {"test_top1", metrics["test_top1"]}, {"checkpoints", files}});
      // The retrains read the checkpoints, the transfer ticket job result.json.
      artifacts = files.get<std::vector<std::string>>();
      artifacts.push_back(relative_to_run(dir / "result.json", root));
    }
    return JobOutcome{.status = result.status, .metrics = metrics, .message = result.message, .artifacts = artifacts};
  };
  return job;
}

Job LotteryTicketSweep::retrain_job(int reset_epoch, double sparsity, int round, const std::string& previous) const {
  const auto& t = options_.trainer();
  const auto dense = dense_id();
  const auto stem = stem_of(reset_epoch, sparsity, round);
  Job job;
  job.spec = base_spec();
  job.spec["kind"] = "retrain";
  job.spec["dense"] = dense;
  job.spec["reset_epoch"] = reset_epoch;
  job.spec["scope"] = options_.scope() == Scope::global ? "global" : "per-layer";
  if (round == 0) {
    job.spec["sparsity"] = sparsity;
    job.name = models::model_label(options_.model()) + "/sparsity" + fixed(sparsity, 4) + "/reset" + std::to_string(reset_epoch);
  } else {
    job.spec["round"] = round;
    job.spec["prune_rate"] = options_.prune_rate();
    job.name = models::model_label(options_.model()) + "/reset" + std::to_string(reset_epoch) + "/round" + std::to_string(round);
  }
  job.after = {previous.empty() ? dense : previous};
  set_cores(job);
  const double samples = static_cast<double>(first_n(data_->train, options_.limit()).size(0));
  job.cost = train::job_cost(flops_, samples, static_cast<double>(data_->test.size()), t.epochs() - reset_epoch);
  const double fraction = round == 0 ? sparsity : options_.prune_rate();
  job.run = [data = data_, options = options_, dense, previous, stem, reset_epoch, fraction, round,
             replicas = replicas()](JobContext& ctx) {
    const fs::path root = options.out_dir();
    const int epochs = options.trainer().epochs();
    const auto dense_dir = root / "checkpoints" / dense;
    const auto own_dir = root / "checkpoints" / ctx.id();
    auto model = build(options.model(), *data, ctx.seed());

    // The mask: from the dense final weights, or (iterative) from the previous
    // round's trained weights and mask.
    std::optional<Mask> previous_mask;
    if (previous.empty()) {
      train::load_checkpoint(train::checkpoint_path(dense_dir, epochs), *model, nullptr);
    } else {
      train::load_checkpoint(train::checkpoint_path(root / "checkpoints" / previous, epochs), *model, nullptr);
      previous_mask = Mask::load(root / options.files_dir() / "masks" / (stem_of(reset_epoch, 0, round - 1) + ".pt"));
    }
    const auto mask = magnitude_mask(*model, fraction, options.scope(), previous_mask ? &*previous_mask : nullptr);
    const auto mask_path = root / options.files_dir() / "masks" / (stem + ".pt");
    mask.save(mask_path);

    // The ticket: the reset-epoch weights, masked, with a fresh optimizer.
    auto topts = options.trainer();
    topts.seed(ctx.seed()).threads(ctx.threads()).checkpoint_dir(own_dir.string()).checkpoint_epochs({epochs});
    train::load_checkpoint(train::checkpoint_path(dense_dir, reset_epoch), *model, nullptr);
    mask.apply(*model);
    const auto ticket_path = root / options.files_dir() / "tickets" / (stem + ".pt");
    {
      train::Trainer fresh(model, topts);
      train::save_checkpoint(ticket_path, *model, &fresh.optimizer(), reset_epoch);
    }
    // Retrain from epoch reset_epoch to the end: a resume goes on with the
    // schedule at step reset_epoch x batches per epoch. It loads the ticket:
    // masked weights and no optimizer state, so the removed weights start at
    // 0 and the mask keeps them there.
    const train::TrainData td{data->train, first_n(data->train, options.limit()), data->test, data::all_indices(data->test)};
    topts.resume_from(ticket_path.string());
    preemptible(topts, own_dir, replicas);
    auto [result, metrics] = train_in_job(ctx, options, *data, topts, td, replicas, {}, &mask);
    metrics["sparsity"] = mask.sparsity();
    metrics["weights_left"] = mask.kept();
    metrics["weights_total"] = mask.total();
    metrics["mask"] = relative_to_run(mask_path, root);
    metrics["ticket"] = relative_to_run(ticket_path, root);
    std::vector<std::string> artifacts;
    if (result.status == JobStatus::done) {
      const auto checkpoint = relative_to_run(train::checkpoint_path(own_dir, epochs), root);
      metrics["checkpoints"] = nlohmann::json::array({checkpoint});
      const auto result_path = root / options.files_dir() / "tickets" / (stem + ".json");
      // The next round reads the mask and the trained weights, the transfer
      // ticket job the result, the winner's mask and ticket.
      artifacts = {checkpoint, relative_to_run(mask_path, root), relative_to_run(ticket_path, root),
                   relative_to_run(result_path, root)};
      write_json(result_path,
                 {{"job", ctx.id()}, {"reset_epoch", reset_epoch}, {"round", round}, {"sparsity", mask.sparsity()},
                  {"test_top1", metrics["test_top1"]}, {"mask", metrics["mask"]}, {"ticket", metrics["ticket"]}});
    }
    return JobOutcome{.status = result.status, .metrics = metrics, .message = result.message, .artifacts = artifacts};
  };
  return job;
}

std::vector<Job> LotteryTicketSweep::transfer_jobs(const std::vector<std::string>& retrains) const {
  std::vector<Job> jobs;
  if (!transfer_data_) return jobs;
  const auto& t = options_.trainer();
  const double samples = static_cast<double>(transfer_data_->train.size());
  for (const bool ticket : {true, false}) {
    Job job;
    job.spec = base_spec();
    job.spec["kind"] = ticket ? "transfer_ticket" : "transfer_scratch";
    job.spec["data"] = transfer_data_->name;
    job.spec["source"] = data_->name;
    job.spec["limit"] = 0;
    if (ticket) {
      job.spec["dense"] = dense_id();
      job.spec["retrains"] = retrains;
      job.spec["tolerance"] = options_.tolerance();
      job.after = retrains;
    }
    job.name = models::model_label(options_.model()) + "/transfer/" + (ticket ? "ticket" : "scratch");
    set_cores(job);
    job.cost = train::job_cost(flops_, samples, static_cast<double>(transfer_data_->test.size()), t.epochs());
    job.run = [target = transfer_data_, options = options_, ticket, dense = dense_id(),
               replicas = replicas()](JobContext& ctx) {
      const fs::path root = options.out_dir();
      auto topts = options.trainer();
      topts.seed(ctx.seed()).threads(ctx.threads()).checkpoint_epochs({}).checkpoint_every(0).resume_from("");
      preemptible(topts, root / "checkpoints" / ctx.id(), replicas);
      nlohmann::json extra = nlohmann::json::object();
      std::optional<Mask> mask;
      std::function<void(torch::nn::Module&)> load;
      if (ticket) {
        // The winner, from the files the dense job and the retrains left.
        std::ifstream dense_in(root / "checkpoints" / dense / "result.json");
        if (!dense_in) throw Error("the dense job's result.json is missing");
        const double dense_top1 = nlohmann::json::parse(dense_in)["test_top1"].get<double>();
        std::vector<TicketPoint> points;
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(root / options.files_dir() / "tickets", ec)) {
          if (entry.path().extension() != ".json") continue;
          std::ifstream in(entry.path());
          const auto j = nlohmann::json::parse(in);
          if (!j["test_top1"].is_number()) continue;
          points.push_back({.job = j["job"], .reset_epoch = j["reset_epoch"], .round = j["round"],
                            .sparsity = j["sparsity"], .test_top1 = j["test_top1"], .mask = j["mask"],
                            .ticket = j["ticket"]});
        }
        std::sort(points.begin(), points.end(), [](const auto& a, const auto& b) { return a.job < b.job; });
        const auto winner = choose_winner(dense_top1, points, options.tolerance());
        if (!winner) throw Error("no ticket is within the tolerance of the dense accuracy: nothing to transfer");
        mask = Mask::load(root / winner->mask);
        load = [path = root / winner->ticket](torch::nn::Module& model) { train::load_checkpoint(path, model, nullptr); };
        extra = {{"ticket", winner->ticket}, {"sparsity", winner->sparsity}, {"reset_epoch", winner->reset_epoch}};
      }
      auto [result, metrics] = train_in_job(ctx, options, *target, topts, train::TrainData::train_test(*target), replicas,
                                            load, mask ? &*mask : nullptr);
      metrics.update(extra);
      return JobOutcome{.status = result.status, .metrics = metrics, .message = result.message};
    };
    jobs.push_back(std::move(job));
  }
  return jobs;
}

std::vector<Job> LotteryTicketSweep::jobs() const {
  std::vector<Job> jobs;
  jobs.push_back(dense_job());
  std::vector<std::string> retrains;
  for (const int e : options_.reset_epochs()) {
    if (options_.rounds() == 0) {
      for (const double s : options_.sparsities()) {
        jobs.push_back(retrain_job(e, s, 0, ""));
        retrains.push_back(jobs.back().id());
      }
    } else {
      std::string previous;
      for (int r = 1; r <= options_.rounds(); ++r) {
        jobs.push_back(retrain_job(e, 0, r, previous));
        previous = jobs.back().id();
        retrains.push_back(previous);
      }
    }
  }
  for (auto& j : transfer_jobs(retrains)) jobs.push_back(std::move(j));
  return jobs;
}

LthResult LotteryTicketSweep::run(JobRunner& runner, const RunOptions& options) const {
  for (auto& job : jobs()) runner.add(std::move(job));
  return result_of(runner.run(options));
}

LthResult LotteryTicketSweep::result_of(RunSummary run) const {
  LthResult result;
  result.run = std::move(run);
  result.report = summarize(result.run.jobs, options_.tolerance());
  result.speedup = result.run.makespan_s > 0 ? result.run.job_seconds / result.run.makespan_s : 0;
  return result;
}

LthReport summarize(const std::vector<JobRecord>& records, double tolerance) {
  LthReport report;
  report.tolerance = tolerance;
  const auto top1 = [](const JobRecord& r) -> std::optional<double> {
    if (r.status != JobStatus::done || !r.metrics.contains("test_top1") || !r.metrics["test_top1"].is_number())
      return std::nullopt;
    return r.metrics["test_top1"].get<double>();
  };
  for (const auto& r : records) {
    if (r.spec.value("sweep", "") != "lth") continue;
    const auto kind = r.spec.value("kind", "");
    const auto acc = top1(r);
    if (!acc) continue;
    if (kind == "dense") {
      report.dense_top1 = acc;
    } else if (kind == "retrain") {
      TicketPoint p;
      p.job = r.id;
      p.reset_epoch = r.spec.value("reset_epoch", 0);
      p.round = r.spec.value("round", 0);
      p.sparsity = r.metrics.value("sparsity", 0.0);
      p.requested = r.spec.value("sparsity", p.sparsity);
      p.test_top1 = *acc;
      p.mask = r.metrics.value("mask", "");
      p.ticket = r.metrics.value("ticket", "");
      report.points.push_back(p);
    } else if (kind == "transfer_ticket") {
      report.transfer = r.spec.value("data", "");
      report.transfer_ticket_top1 = acc;
    } else if (kind == "transfer_scratch") {
      report.transfer = r.spec.value("data", "");
      report.transfer_scratch_top1 = acc;
    }
  }
  if (report.dense_top1) report.winner = choose_winner(*report.dense_top1, report.points, tolerance);
  return report;
}

std::string format_report(const LthReport& report) {
  std::string out;
  // Columns: one per requested sparsity (one-shot) or per round (iterative).
  std::map<std::pair<int, double>, double> column_sparsity;  // (round, requested) -> actual
  std::map<int, std::map<std::pair<int, double>, double>> rows;  // reset epoch -> column -> top-1
  for (const auto& p : report.points) {
    const auto key = std::make_pair(p.round, p.round > 0 ? 0.0 : p.requested);
    column_sparsity.emplace(key, p.sparsity);
    rows[p.reset_epoch][key] = p.test_top1;
  }
  const double bar = report.dense_top1 ? *report.dense_top1 - report.tolerance : 2.0;
  out += "lottery tickets: test top-1 (%) against sparsity (share of conv/linear weights removed)\n";
  if (report.dense_top1)
    out += "dense model: " + fixed(100 * *report.dense_top1, 2) + "%   (+ marks tickets within " +
           fixed(100 * report.tolerance, 2) + " points of it: >= " + fixed(100 * bar, 2) + "%)\n";
  else
    out += "dense model: not done\n";
  std::string header = "reset epoch |";
  for (const auto& [key, s] : column_sparsity) {
    char cell[32];
    if (key.first > 0) std::snprintf(cell, sizeof cell, "  r%d %5.1f%%", key.first, 100 * s);
    else std::snprintf(cell, sizeof cell, "    %6.1f%%", 100 * key.second);
    header += cell;
  }
  out += header + "\n";
  for (const auto& [epoch, cells] : rows) {
    char lead[32];
    std::snprintf(lead, sizeof lead, "%11d |", epoch);
    std::string line = lead;
    for (const auto& [key, s] : column_sparsity) {
      (void)s;
      const auto it = cells.find(key);
      char cell[32];
      if (it == cells.end()) std::snprintf(cell, sizeof cell, "  %9s", "-");
      else std::snprintf(cell, sizeof cell, "    %6.2f%s", 100 * it->second, it->second >= bar ? "+" : " ");
      line += cell;
    }
    out += line + "\n";
  }
  if (report.winner) {
    const auto& w = *report.winner;
    out += "winning ticket: " + fixed(100 * w.sparsity, 2) + "% removed (" + fixed(100 * (1 - w.sparsity), 2) +
           "% of weights left), reset epoch " + std::to_string(w.reset_epoch) + ", test top-1 " +
           fixed(100 * w.test_top1, 2) + "%\n  mask " + w.mask + ", ticket " + w.ticket + "\n";
  } else if (report.dense_top1) {
    out += report.points.empty() ? "winning ticket: none yet: no retrain finished\n"
                                 : "winning ticket: none within the tolerance\n";
  }
  if (!report.transfer.empty()) {
    const auto pct = [](const std::optional<double>& v) { return v ? fixed(100 * *v, 2) + "%" : std::string("not done"); };
    out += "transfer to " + report.transfer + ": winning ticket " + pct(report.transfer_ticket_top1) +
           ", same model from scratch " + pct(report.transfer_scratch_top1) + "\n";
  }
  return out;
}

}  // namespace packtrain::lth
