#include "run_setup.hpp"

#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/resources.hpp>
#include <packtrain/scheduler/results.hpp>

#include <cstdio>

namespace packtrain::cli {

train::TrainOptions trainer_options(const CommonOptions& common) {
  auto options = train::TrainOptions()
                     .batch_size(common.batch_size)
                     .optimizer(train::optimizer_from_string(common.optimizer))
                     .lr(common.lr);
  options.validate();
  return options;
}

RunSetup::RunSetup(const CommonOptions& common, std::string command, bool serial)
    : common_(common), command_(std::move(command)), out_(common.out) {
  if (common_.out.empty()) throw Error("--out is required: the folder for the run's journal and results");
  if (common_.serve_port < 0 || common_.serve_port > 65535)
    throw Error("--serve " + std::to_string(common_.serve_port) + " is not a port number");
  trainer_options(common_);  // validates batch size, optimizer and lr
  node_ = detect_node_resources(ResourceProbe{.requested_cores = common_.cores});
  if (serial) node_.cores.resize(1);
}

RunSetup::~RunSetup() {
  // The runner and executor go before the journal they write to.
  runner_.reset();
  executor_.reset();
}

std::shared_ptr<const data::DatasetSplit> RunSetup::load_data() { return data::shared_dataset(common_.data); }

void RunSetup::open_run(const nlohmann::json& meta) {
  prepare_output_dir(out_, common_.resume);
  journal_ = Journal::open(out_ / "journal.sqlite");
  journal_->set_meta("command", command_);
  for (const auto& [key, value] : meta.items()) journal_->set_meta(key, value.is_string() ? value.get<std::string>() : value.dump());
  executor_ = std::make_unique<Executor>(node_.cores);
  runner_ = std::make_unique<JobRunner>(*executor_, node_);
  interrupts_.on_interrupt([runner = runner_.get()] { runner->request_stop(); });
  console_ = std::make_unique<ConsoleSink>(ConsoleOptions{.quiet = common_.quiet});
  run_options_.journal = journal_.get();
  run_options_.resume = common_.resume;
  run_options_.base_seed = common_.seed;
  run_options_.sinks = {console_.get()};
}

nlohmann::json RunSetup::summary_json(const RunSummary& run) const {
  return {{"command", command_},     {"cores", node_.core_count()}, {"done", run.done},
          {"failed", run.failed},    {"diverged", run.diverged},    {"skipped", run.skipped},
          {"cancelled", run.cancelled}, {"resumed", run.resumed},   {"makespan_s", run.makespan_s},
          {"job_seconds", run.job_seconds}, {"interrupted", run.interrupted}, {"data", common_.data}};
}

void RunSetup::finish(const RunSummary& run, const nlohmann::json& summary, const std::vector<std::string>& columns) {
  journal_->set_meta("summary", summary.dump());
  write_results_csv(out_ / "results.csv", run.jobs, columns);
  write_results_json(out_ / "results.json", run.jobs, summary, columns);
}

void RunSetup::print_outputs() const {
  if (common_.quiet) return;
  std::printf("results: %s  (also results.json, journal.sqlite)\n", (out_ / "results.csv").c_str());
}

}  // namespace packtrain::cli
