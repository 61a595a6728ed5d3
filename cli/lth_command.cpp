// packtrain lth: a lottery-ticket sweep. One dense run saves checkpoints at
// init, at the reset epochs and at the end; then every (sparsity, reset
// epoch) (or every round of an iterative chain) is a masked retrain job,
// packed onto the cores like any other job.
#include "commands.hpp"
#include "command_entry.hpp"
#include "common_options.hpp"
#include "run_setup.hpp"

#include <packtrain/lth/lth.hpp>
#include <packtrain/scheduler/error.hpp>

#include <cstdio>
#include <limits>
#include <memory>
#include <string>

namespace po = boost::program_options;

namespace packtrain::cli {
namespace {

constexpr int kNotGiven = std::numeric_limits<int>::min();  // --rounds absent: one-shot

template <typename T>
std::vector<T> parse_numbers(const std::string& text, const std::string& what) {
  std::vector<T> out;
  for (const auto& item : split_list(text, what)) {
    std::size_t used = 0;
    T value{};
    try {
      if constexpr (std::is_integral_v<T>) value = static_cast<T>(std::stoi(item, &used));
      else value = static_cast<T>(std::stod(item, &used));
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || item.empty()) throw Error(what + ": '" + item + "' is not a number");
    out.push_back(value);
  }
  return out;
}

class LthEntry final : public CommandEntry {
 public:
  LthEntry() : CommandEntry("lth") { columns = lth::result_columns(); }
  bool serial() const override { return serial_; }

  void check_options() override {
    if (rounds_ != kNotGiven && rounds_ < 1)
      throw Error("--rounds must be at least 1 (got " + std::to_string(rounds_) + ")");
    refuse_together(common, "rounds", "sparsities",
                    "--rounds prunes iteratively, --prune-rate of the weights left each round; --sparsities is one-shot");
    if (common.given.count("prune-rate") && !common.given.count("rounds"))
      throw Error("--prune-rate is the fraction each of --rounds removes: give --rounds too, or --sparsities alone");
  }

  std::vector<Job> plan(RunSetup& setup) override {
    // Everything that can be wrong is checked before anything is written.
    const auto how = check_job_core_options(common, cores_, setup.node().core_count(), setup.node().memory_mb);
    auto options = lth::LthOptions()
                       .model(model_)
                       .reset_epochs(parse_numbers<int>(reset_epochs_, "--reset-epochs"))
                       .scope(per_layer_ ? lth::Scope::per_layer : lth::Scope::global)
                       .rounds(rounds_ == kNotGiven ? 0 : rounds_)
                       .prune_rate(prune_rate_)
                       .tolerance(tolerance_ / 100.0)
                       .seed(common.seed)
                       .limit(limit_)
                       .cores_per_job(cores_.cores_per_job)
                       .max_cores_per_job(serial_ ? 0 : cores_.max_cores_per_job)
                       .memory_mb_per_job(static_cast<std::uint64_t>(cores_.memory_mb))
                       .micro_batch(cores_.micro_batch)
                       .parallelism(how)
                       .trainer(trainer_options(common).epochs(epochs_).schedule(train::schedule_from_string(schedule_)))
                       // This rank's own folder: under mpirun the files a job on
                       // another rank made arrive there (no shared filesystem).
                       .out_dir(setup.out().string())
                       // A batch's entry: masks/ and tickets/ of its own.
                       .files_dir(entry_name().empty() ? "" : "entries/" + entry_name())
                       .transfer(transfer_)
                       .gangs(setup.gangs());
    if (rounds_ == kNotGiven) options.sparsities(parse_numbers<double>(sparsities_, "--sparsities"));
    if (!(tolerance_ >= 0)) throw Error("--tolerance must not be negative");
    auto data = setup.load_data();
    sweep_ = std::make_unique<lth::LotteryTicketSweep>(data, options);
    meta = {{"group_by", nlohmann::json::array({"sparsity", "reset_epoch"})},
            {"metric", "test_top1"},
            {"plot_x", "sparsity"},
            {"plot_series", "reset_epoch"}};
    return sweep_->jobs();
  }

  std::string summarize(RunSetup& setup, const RunSummary& run, nlohmann::json& summary) override {
    // Under mpirun every rank's summary holds every rank's records; rank 0
    // reports from it.
    const auto result = sweep_->result_of(run);
    if (result.report.dense_top1) meta["plot_reference"] = *result.report.dense_top1;
    summary["speedup"] = result.speedup;
    const auto& r = result.report;
    summary["dense_top1"] = r.dense_top1 ? nlohmann::json(*r.dense_top1) : nlohmann::json(nullptr);
    summary["tolerance"] = r.tolerance;
    if (r.winner)
      summary["winner"] = {{"job", r.winner->job},           {"sparsity", r.winner->sparsity},
                           {"reset_epoch", r.winner->reset_epoch}, {"round", r.winner->round},
                           {"test_top1", r.winner->test_top1}, {"mask", r.winner->mask},
                           {"ticket", r.winner->ticket}};
    if (!r.transfer.empty()) {
      const auto opt = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
      summary["transfer"] = {{"data", r.transfer}, {"ticket_top1", opt(r.transfer_ticket_top1)},
                             {"scratch_top1", opt(r.transfer_scratch_top1)}};
    }
    // In a batch the run's one speed line says it for every entry.
    return lth::format_report(r) + (meta_prefix.empty() ? setup.speed_line(run) + "\n" : "");
  }

 protected:
  std::string description() const override {
    return "packtrain lth: lottery-ticket sweep (iterative magnitude pruning with late resetting); one dense job, "
           "then one masked retrain job per (sparsity, reset epoch), packed";
  }

  void add_options(po::options_description& desc) override {
    desc.add_options()
      ("model", po::value(&model_)->default_value(model_), "model: mlp, lenet5, vgg11, resnet18, mobilenetv2, or the path of a TorchScript file (net.pt)")
      ("epochs", po::value(&epochs_)->default_value(epochs_), "E: epochs of the dense run; every ticket trains to epoch E too")
      ("schedule", po::value(&schedule_)->default_value(schedule_),
       "LR schedule over the E epochs (none, step, cosine, warm); a ticket reset to epoch e goes on from epoch e of it")
      ("reset-epochs", po::value(&reset_epochs_)->default_value(reset_epochs_),
       "comma-separated epochs whose weights tickets are reset to (0: the initial weights; each < --epochs)")
      ("sparsities", po::value(&sparsities_)->default_value(sparsities_),
       "comma-separated sparsities in (0, 1): the fraction of conv/linear weights removed (one-shot pruning)")
      ("per-layer", po::bool_switch(&per_layer_),
       "remove that fraction from every layer alike instead of by one global magnitude threshold")
      ("rounds", po::value(&rounds_),
       "iterative pruning: R >= 1 rounds per reset epoch, each removing --prune-rate of the weights left (instead "
       "of --sparsities, which it cannot be given with)")
      ("prune-rate", po::value(&prune_rate_)->default_value(prune_rate_, number_text(prune_rate_)),
       "with --rounds: the fraction of the remaining weights each round removes, in (0, 1)")
      ("tolerance", po::value(&tolerance_)->default_value(tolerance_, number_text(tolerance_)),
       "the winning ticket is the sparsest one within this many top-1 points of the dense model")
      ("transfer", po::value(&transfer_),
       "train the winning ticket on this dataset (e.g. mnist-digits) and the same model from scratch, and compare")
      ("serial", po::bool_switch(&serial_), "run the same jobs one at a time on one core (the baseline)")
      ("limit", po::value(&limit_)->default_value(limit_), "train on the first N training samples only (0: all)");
    add_job_core_options(desc, cores_);
    add_gang_option(desc, common);
  }

 private:
  std::string model_ = "mlp";
  std::string schedule_ = "cosine";
  int epochs_ = 10;
  std::string reset_epochs_ = "0";
  std::string sparsities_ = "0.5,0.8,0.9,0.95";
  bool per_layer_ = false;
  int rounds_ = kNotGiven;
  double prune_rate_ = 0.2;
  double tolerance_ = 0.5;
  std::int64_t limit_ = 0;
  JobCoreOptions cores_;
  bool serial_ = false;
  std::string transfer_;
  std::unique_ptr<lth::LotteryTicketSweep> sweep_;
};

}  // namespace

std::unique_ptr<CommandEntry> make_lth_entry() { return std::make_unique<LthEntry>(); }

int lth_command(int argc, char** argv) {
  LthEntry entry;
  return run_command(entry, argc, argv);
}

}  // namespace packtrain::cli
