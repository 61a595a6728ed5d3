// packtrain lth: a lottery-ticket sweep. One dense run saves checkpoints at
// init, at the reset epochs and at the end; then every (sparsity, reset
// epoch) (or every round of an iterative chain) is a masked retrain job,
// packed onto the cores like any other job.
#include "commands.hpp"
#include "common_options.hpp"
#include "run_setup.hpp"

#include <packtrain/lth/lth.hpp>
#include <packtrain/scheduler/error.hpp>

#include <cstdio>
#include <limits>
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

}  // namespace

int lth_command(int argc, char** argv) {
  CommonOptions common;
  std::string model = "mlp";
  std::string schedule = "cosine";
  int epochs = 10;
  std::string reset_epochs = "0";
  std::string sparsities = "0.5,0.8,0.9,0.95";
  bool per_layer = false;
  int rounds = kNotGiven;
  double prune_rate = 0.2;
  double tolerance = 0.5;
  std::int64_t limit = 0;
  JobCoreOptions cores;
  bool serial = false;
  std::string transfer;

  po::options_description desc(
      "packtrain lth: lottery-ticket sweep (iterative magnitude pruning with late resetting); one dense job, then "
      "one masked retrain job per (sparsity, reset epoch), packed");
  add_common_options(desc, common);
  desc.add_options()
    ("model", po::value(&model)->default_value(model), "model: mlp, lenet5, vgg11, resnet18, mobilenetv2, or the path of a TorchScript file (net.pt)")
    ("epochs", po::value(&epochs)->default_value(epochs), "E: epochs of the dense run; every ticket trains to epoch E too")
    ("schedule", po::value(&schedule)->default_value(schedule),
     "LR schedule over the E epochs (none, step, cosine, warm); a ticket reset to epoch e goes on from epoch e of it")
    ("reset-epochs", po::value(&reset_epochs)->default_value(reset_epochs),
     "comma-separated epochs whose weights tickets are reset to (0: the initial weights; each < --epochs)")
    ("sparsities", po::value(&sparsities)->default_value(sparsities),
     "comma-separated sparsities in (0, 1): the fraction of conv/linear weights removed (one-shot pruning)")
    ("per-layer", po::bool_switch(&per_layer),
     "remove that fraction from every layer alike instead of by one global magnitude threshold")
    ("rounds", po::value(&rounds),
     "iterative pruning: R >= 1 rounds per reset epoch, each removing --prune-rate of the weights left (instead "
     "of --sparsities, which it cannot be given with)")
    ("prune-rate", po::value(&prune_rate)->default_value(prune_rate, number_text(prune_rate)),
     "with --rounds: the fraction of the remaining weights each round removes, in (0, 1)")
    ("tolerance", po::value(&tolerance)->default_value(tolerance, number_text(tolerance)),
     "the winning ticket is the sparsest one within this many top-1 points of the dense model")
    ("transfer", po::value(&transfer),
     "train the winning ticket on this dataset (e.g. mnist-digits) and the same model from scratch, and compare")
    ("serial", po::bool_switch(&serial), "run the same jobs one at a time on one core (the baseline)")
    ("limit", po::value(&limit)->default_value(limit), "train on the first N training samples only (0: all)");
  add_job_core_options(desc, cores);
  add_gang_option(desc, common);
  if (!parse_options(argc, argv, desc, "packtrain lth [options] --out DIR", common)) return 0;

  // Everything that can be wrong is checked before anything is written.
  if (rounds != kNotGiven && rounds < 1) throw Error("--rounds must be at least 1 (got " + std::to_string(rounds) + ")");
  refuse_together(common, "rounds", "sparsities",
                  "--rounds prunes iteratively, --prune-rate of the weights left each round; --sparsities is one-shot");
  if (common.given.count("prune-rate") && !common.given.count("rounds"))
    throw Error("--prune-rate is the fraction each of --rounds removes: give --rounds too, or --sparsities alone");
  RunSetup setup(common, "lth", serial);
  const auto how = check_job_core_options(common, cores, setup.node().core_count(), setup.node().memory_mb);
  auto options = lth::LthOptions()
                     .model(model)
                     .reset_epochs(parse_numbers<int>(reset_epochs, "--reset-epochs"))
                     .scope(per_layer ? lth::Scope::per_layer : lth::Scope::global)
                     .rounds(rounds == kNotGiven ? 0 : rounds)
                     .prune_rate(prune_rate)
                     .tolerance(tolerance / 100.0)
                     .seed(common.seed)
                     .limit(limit)
                     .cores_per_job(cores.cores_per_job)
                     .max_cores_per_job(serial ? 0 : cores.max_cores_per_job)
                     .memory_mb_per_job(cores.memory_mb)
                     .micro_batch(cores.micro_batch)
                     .parallelism(how)
                     .trainer(trainer_options(common).epochs(epochs).schedule(train::schedule_from_string(schedule)))
                     // This rank's own folder: under mpirun the files a job on
                     // another rank made arrive there (no shared filesystem).
                     .out_dir(setup.out().string())
                     .transfer(transfer)
                     .gangs(setup.gangs());
  if (rounds == kNotGiven) options.sparsities(parse_numbers<double>(sparsities, "--sparsities"));
  if (!(tolerance >= 0)) throw Error("--tolerance must not be negative");
  auto data = setup.load_data();
  lth::LotteryTicketSweep sweep(data, options);

  setup.open_run({{"group_by", nlohmann::json::array({"sparsity", "reset_epoch"})},
                  {"metric", "test_top1"},
                  {"plot_x", "sparsity"},
                  {"plot_series", "reset_epoch"}},
                 sweep.jobs(), lth::result_columns());
  // Under mpirun every rank's summary holds every rank's records; rank 0
  // reports from it.
  const auto result = sweep.result_of(setup.run());
  if (setup.is_root() && result.report.dense_top1)
    setup.journal().set_meta("plot_reference", nlohmann::json(*result.report.dense_top1).dump());

  nlohmann::json summary = setup.summary_json(result.run);
  summary["speedup"] = result.speedup;
  const auto& r = result.report;
  summary["dense_top1"] = r.dense_top1 ? nlohmann::json(*r.dense_top1) : nlohmann::json(nullptr);
  summary["tolerance"] = r.tolerance;
  if (r.winner)
    summary["winner"] = {{"job", r.winner->job}, {"sparsity", r.winner->sparsity}, {"reset_epoch", r.winner->reset_epoch},
                         {"round", r.winner->round}, {"test_top1", r.winner->test_top1}, {"mask", r.winner->mask},
                         {"ticket", r.winner->ticket}};
  if (!r.transfer.empty()) {
    const auto opt = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
    summary["transfer"] = {{"data", r.transfer}, {"ticket_top1", opt(r.transfer_ticket_top1)},
                           {"scratch_top1", opt(r.transfer_scratch_top1)}};
  }
  setup.finish(result.run, summary);
  if (setup.is_root()) std::printf("%s%s\n", lth::format_report(r).c_str(), setup.speed_line(result.run).c_str());
  setup.print_outputs();
  return result.run.exit_code();
}

}  // namespace packtrain::cli
