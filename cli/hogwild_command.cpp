// packtrain hogwild: one model trained by lock-free SGD workers on shared
// weights (hogwild/), as an elastic job: --min-threads cores from the start,
// up to --threads while cores would otherwise be idle.
#include "commands.hpp"
#include "command_entry.hpp"
#include "common_options.hpp"
#include "run_setup.hpp"

#include <packtrain/hogwild/hogwild.hpp>
#include <packtrain/scheduler/error.hpp>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>

namespace po = boost::program_options;

namespace packtrain::cli {

namespace {

class HogwildEntry final : public CommandEntry {
 public:
  HogwildEntry() : CommandEntry("hogwild") { columns = hogwild::result_columns(); }

  void check_options() override {
    if (common.optimizer != "sgd")
      throw Error("hogwild trains with plain SGD (lock-free updates, no optimizer state); --optimizer " +
                  common.optimizer + " is not supported");
  }

  std::vector<Job> plan(RunSetup& setup) override {
    // Everything that can be wrong is checked before anything is written.
    const int cores = setup.node().core_count();
    const int max_threads = threads_.value_or(cores);
    if (max_threads < 1) throw Error("--threads must be at least 1 (got " + std::to_string(max_threads) + ")");
    if (min_threads_ < 1) throw Error("--min-threads must be at least 1 (got " + std::to_string(min_threads_) + ")");
    if (min_threads_ > max_threads)
      throw Error("--min-threads " + std::to_string(min_threads_) + " is more than --threads " +
                  std::to_string(max_threads));
    if (max_threads > cores)
      throw Error("--threads " + std::to_string(max_threads) + " is more than the " + std::to_string(cores) +
                  " core(s) this run uses");
    auto data = setup.load_data();
    const auto options = hogwild::HogwildOptions()
                             .model(model_)
                             .epochs(epochs_)
                             .batch_size(common.batch_size)
                             .lr(common.lr > 0 ? common.lr : hogwild::HogwildOptions().lr())
                             .weight_decay(weight_decay_)
                             .seed(common.seed)
                             .limit(limit_);
    std::vector<Job> jobs;
    jobs.push_back(hogwild::make_hogwild_job(data, options, min_threads_, max_threads));
    meta = {{"group_by", nlohmann::json::array({"model"})}, {"metric", "test_top1"}};
    return jobs;
  }

  std::string summarize(RunSetup&, const RunSummary& run, nlohmann::json& summary) override {
    std::optional<JobRecord> record;
    for (const auto& r : run.jobs)
      if (r.status == JobStatus::done || r.status == JobStatus::cancelled) record = r;
    if (!record) return "";
    summary["test_top1"] = record->metrics.value("test_top1", nlohmann::json(nullptr));
    summary["samples_per_s"] = record->metrics.value("samples_per_s", nlohmann::json(nullptr));
    summary["peak_workers"] = record->metrics.value("peak_workers", nlohmann::json(nullptr));
    summary["per_epoch"] = record->metrics.value("per_epoch", nlohmann::json::array());
    std::string text = "epoch  workers  samples/s  train loss  test top-1\n";
    for (const auto& e : record->metrics.value("per_epoch", nlohmann::json::array())) {
      const auto num = [&](const char* key) { return e[key].is_number() ? e[key].get<double>() : 0.0; };
      char line[128];
      std::snprintf(line, sizeof(line), "%5d  %7d  %9.0f  %10.4f  %9.2f%%\n", e["epoch"].get<int>(),
                    e["peak_workers"].get<int>(), num("samples_per_s"), num("train_loss"), 100.0 * num("test_top1"));
      text += line;
    }
    return text;
  }

 protected:
  std::string description() const override {
    return "packtrain hogwild: one model trained by Hogwild (lock-free SGD workers sharing one set of weights), as "
           "an elastic job that grows onto idle cores";
  }

  void add_options(po::options_description& desc) override {
    desc.add_options()
      ("model", po::value(&model_)->default_value(model_), "model: mlp, lenet5, vgg11, resnet18, mobilenetv2, or the path of a TorchScript file (net.pt)")
      ("epochs", po::value(&epochs_)->default_value(epochs_), "epochs to train (at least 1)")
      ("threads", po::value<int>()->notifier([this](int v) { threads_ = v; }),
       "the most workers (cores) at once; default: every core of the run. The job has more than --min-threads only "
       "while no other job could use the cores")
      ("min-threads", po::value(&min_threads_)->default_value(min_threads_), "workers (cores) the job starts with")
      ("weight-decay", po::value(&weight_decay_)->default_value(weight_decay_, number_text(weight_decay_)), "L2 weight decay of the SGD step")
      ("limit", po::value(&limit_)->default_value(limit_), "train on the first N training samples only (0: all)");
  }

 private:
  std::string model_ = "mlp";
  int epochs_ = 5;
  std::optional<int> threads_;
  int min_threads_ = 1;
  double weight_decay_ = 0;
  std::int64_t limit_ = 0;
};

}  // namespace

std::unique_ptr<CommandEntry> make_hogwild_entry() { return std::make_unique<HogwildEntry>(); }

int hogwild_command(int argc, char** argv) {
  HogwildEntry entry;
  return run_command(entry, argc, argv);
}

}  // namespace packtrain::cli
