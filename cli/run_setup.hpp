#pragma once
// What every sweep subcommand does around its sweep, in the order that keeps
// bad input harmless: catch Ctrl-C first (before any thread exists), check
// options and cores, load the data, and only then touch the output folder,
// open the journal and start the executor. At the end: results.csv,
// results.json, and the lines that say where they are.
#include "common_options.hpp"

#include <packtrain/data/dataset.hpp>
#include <packtrain/scheduler/console_sink.hpp>
#include <packtrain/scheduler/interrupt.hpp>
#include <packtrain/scheduler/job_runner.hpp>
#include <packtrain/scheduler/journal.hpp>
#include <packtrain/train/options.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace packtrain::cli {

// TrainOptions from the common options (batch size, optimizer, lr).
train::TrainOptions trainer_options(const CommonOptions& common);

class RunSetup {
 public:
  // Validates the common options and finds the node's cores (one, with `serial`).
  RunSetup(const CommonOptions& common, std::string command, bool serial);
  ~RunSetup();

  const NodeResources& node() const { return node_; }
  std::shared_ptr<const data::DatasetSplit> load_data();

  // Prepares --out (refusing a finished run's folder without --resume), opens
  // the journal with `meta` (plus command and options), and starts the executor.
  void open_run(const nlohmann::json& meta);
  JobRunner& runner() { return *runner_; }
  Journal& journal() { return *journal_; }
  const RunOptions& run_options() const { return run_options_; }

  nlohmann::json summary_json(const RunSummary& run) const;
  // Writes results.csv and results.json from the run's records.
  void finish(const RunSummary& run, const nlohmann::json& summary, const std::vector<std::string>& columns);
  void print_outputs() const;

 private:
  CommonOptions common_;
  std::string command_;
  std::filesystem::path out_;
  InterruptGuard interrupts_;  // first: every thread created later inherits its signal mask
  NodeResources node_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<JobRunner> runner_;
  std::unique_ptr<ConsoleSink> console_;
  RunOptions run_options_;
};

}  // namespace packtrain::cli
