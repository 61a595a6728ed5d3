// packtrain hogwild: one model trained by lock-free SGD workers on shared
// weights (hogwild/), as an elastic job: --min-threads cores from the start,
// up to --threads while cores would otherwise be idle.
#include "commands.hpp"
#include "common_options.hpp"
#include "run_setup.hpp"

#include <packtrain/hogwild/hogwild.hpp>
#include <packtrain/scheduler/error.hpp>

#include <cstdio>
#include <optional>
#include <string>

namespace po = boost::program_options;

namespace packtrain::cli {

int hogwild_command(int argc, char** argv) {
  CommonOptions common;
  std::string model = "mlp";
  int epochs = 5;
  std::optional<int> threads;
  int min_threads = 1;
  double weight_decay = 0;
  std::int64_t limit = 0;

  po::options_description desc(
      "packtrain hogwild: one model trained by Hogwild (lock-free SGD workers sharing one set of weights), as an "
      "elastic job that grows onto idle cores");
  add_common_options(desc, common);
  desc.add_options()
    ("model", po::value(&model)->default_value(model), "model: mlp, lenet5, vgg11, resnet18, mobilenetv2, or the path of a TorchScript file (net.pt)")
    ("epochs", po::value(&epochs)->default_value(epochs), "epochs to train (at least 1)")
    ("threads", po::value<int>()->notifier([&](int v) { threads = v; }),
     "the most workers (cores) at once; default: every core of the run. The job has more than --min-threads only "
     "while no other job could use the cores")
    ("min-threads", po::value(&min_threads)->default_value(min_threads), "workers (cores) the job starts with")
    ("weight-decay", po::value(&weight_decay)->default_value(weight_decay, number_text(weight_decay)), "L2 weight decay of the SGD step")
    ("limit", po::value(&limit)->default_value(limit), "train on the first N training samples only (0: all)");
  if (!parse_options(argc, argv, desc, "packtrain hogwild [options] --out DIR", common)) return 0;

  // Everything that can be wrong is checked before anything is written.
  if (common.optimizer != "sgd")
    throw Error("hogwild trains with plain SGD (lock-free updates, no optimizer state); --optimizer " +
                common.optimizer + " is not supported");
  RunSetup setup(common, "hogwild", false);
  const int cores = setup.node().core_count();
  const int max_threads = threads.value_or(cores);
  if (max_threads < 1) throw Error("--threads must be at least 1 (got " + std::to_string(max_threads) + ")");
  if (min_threads < 1) throw Error("--min-threads must be at least 1 (got " + std::to_string(min_threads) + ")");
  if (min_threads > max_threads)
    throw Error("--min-threads " + std::to_string(min_threads) + " is more than --threads " + std::to_string(max_threads));
  if (max_threads > cores)
    throw Error("--threads " + std::to_string(max_threads) + " is more than the " + std::to_string(cores) +
                " core(s) this run uses");
  auto data = setup.load_data();
  const auto options = hogwild::HogwildOptions()
                           .model(model)
                           .epochs(epochs)
                           .batch_size(common.batch_size)
                           .lr(common.lr > 0 ? common.lr : hogwild::HogwildOptions().lr())
                           .weight_decay(weight_decay)
                           .seed(common.seed)
                           .limit(limit);
  auto job = hogwild::make_hogwild_job(data, options, min_threads, max_threads);

  std::vector<Job> jobs;
  jobs.push_back(std::move(job));
  setup.open_run({{"group_by", nlohmann::json::array({"model"})}, {"metric", "test_top1"}}, std::move(jobs),
                 hogwild::result_columns());
  const auto run = setup.run();
  nlohmann::json summary = setup.summary_json(run);
  std::optional<JobRecord> record;
  for (const auto& r : run.jobs)
    if (r.status == JobStatus::done || r.status == JobStatus::cancelled) record = r;
  if (record) {
    summary["test_top1"] = record->metrics.value("test_top1", nlohmann::json(nullptr));
    summary["samples_per_s"] = record->metrics.value("samples_per_s", nlohmann::json(nullptr));
    summary["peak_workers"] = record->metrics.value("peak_workers", nlohmann::json(nullptr));
    summary["per_epoch"] = record->metrics.value("per_epoch", nlohmann::json::array());
  }
  setup.finish(run, summary);
  if (setup.is_root() && record) {
    std::printf("epoch  workers  samples/s  train loss  test top-1\n");
    for (const auto& e : record->metrics.value("per_epoch", nlohmann::json::array())) {
      const auto num = [&](const char* key) { return e[key].is_number() ? e[key].get<double>() : 0.0; };
      std::printf("%5d  %7d  %9.0f  %10.4f  %9.2f%%\n", e["epoch"].get<int>(), e["peak_workers"].get<int>(),
                  num("samples_per_s"), num("train_loss"), 100.0 * num("test_top1"));
    }
  }
  setup.print_outputs();
  return run.exit_code();
}

}  // namespace packtrain::cli
