#pragma once
// A command that runs jobs (kfold, lth, hogwild, train) as two halves around the run: its
// options and jobs before, its summary after. `packtrain kfold` runs one
// entry on a run of its own (run_command); `packtrain batch` runs every
// entry of a plan on one run (batch_command.cpp).
//
//   auto entry = make_entry("kfold");          // its options, defaults set
//   parse_options(argc, argv, entry->options(), entry->usage(), entry->common);
//   RunSetup setup(entry->common, "kfold", entry->serial());
//   auto jobs = entry->plan(setup);            // checks, then the jobs; sets meta
//   setup.open_run(entry->meta, jobs, entry->columns);
//   const auto run = setup.run();
//   auto summary = setup.summary_json(run);
//   const auto text = entry->summarize(setup, run, summary);
#include "common_options.hpp"
#include "run_setup.hpp"

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace packtrain::cli {

class CommandEntry {
 public:
  explicit CommandEntry(std::string command) : command_(std::move(command)) {}
  virtual ~CommandEntry() = default;
  CommandEntry(const CommandEntry&) = delete;
  CommandEntry& operator=(const CommandEntry&) = delete;

  const std::string& command() const { return command_; }
  // Every option of the command, the common ones included, bound to this
  // object. Built on first use, with the defaults `common` holds then (a
  // batch sets the plan's data and seed first).
  boost::program_options::options_description& options();
  std::string usage() const { return "packtrain " + command_ + " [options] --out DIR"; }
  // The options' own checks, made before the RunSetup exists.
  virtual void check_options() {}
  // --serial: one core, one job at a time.
  virtual bool serial() const { return false; }

  // Checks what needs the node and the data, then builds the jobs. Sets
  // `meta` (the journal's meta for the report: group_by, metric, ...).
  // `columns` (results.csv's) are set from the start. Journal meta of the entry's own that a
  // resumed run reads back goes under meta_prefix + key.
  virtual std::vector<Job> plan(RunSetup& setup) = 0;
  // After the run: `run` holds this entry's jobs' records. Adds the entry's
  // figures to `summary` (and may add report meta, e.g. plot_reference) and
  // returns the text the command prints (rank 0).
  virtual std::string summarize(RunSetup& setup, const RunSummary& run, nlohmann::json& summary) = 0;
  // A sweep that picks a best model (kfold): from its jobs' records, the
  // best group's flag values ({"model": "lenet5", "schedule": "cosine"})
  // and its figure ({"val_top1": 0.89}); nullopt when no job was measured.
  // A batch's `model = "best:ENTRY"` takes them.
  virtual bool picks_best() const { return false; }
  virtual std::optional<nlohmann::json> best(const std::vector<JobRecord>&) const { return std::nullopt; }

  // A sweep that picks a best model: every value best() may answer (each
  // model and schedule it trains), as flag values.
  virtual std::vector<nlohmann::json> candidates() const { return {}; }

  CommonOptions common;
  nlohmann::json meta = nlohmann::json::object();
  std::vector<std::string> columns;
  std::string meta_prefix;  // "" for a command run alone; a batch's entry prints no speed line of its own
  // A batch's entry planned while the run goes (best:ENTRY): journal meta it
  // finds missing on a --resume was never recorded, not recorded as none.
  bool planned_late = false;
  // The batch entry's name ("" for a command run alone): its own folders.
  std::string entry_name() const {
    return meta_prefix.size() > 7 ? meta_prefix.substr(6, meta_prefix.size() - 7) : std::string();  // "entry.NAME."
  }

 protected:
  virtual void add_options(boost::program_options::options_description& desc) = 0;
  virtual std::string description() const = 0;

 private:
  std::string command_;
  std::unique_ptr<boost::program_options::options_description> desc_;
};

// kfold, lth, hogwild, train; null for any other name.
std::unique_ptr<CommandEntry> make_entry(const std::string& command);

// The whole command: parse argv, plan, run, summarize, write and print.
int run_command(CommandEntry& entry, int argc, char** argv);

}  // namespace packtrain::cli
