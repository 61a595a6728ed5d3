// packtrain report DIR: rebuilds a run's report.html, results.csv,
// results.json and (when its utilization samples exist) trace.json from
// DIR/journal.sqlite and the dashboard's files next to it. It trains
// nothing and needs no LibTorch.
#include "commands.hpp"

#include <packtrain/dashboard/rebuild.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/results.hpp>

#include <boost/program_options.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace po = boost::program_options;

namespace packtrain::cli {
namespace {

// kResultColumns, plus lth's columns when any job's spec has them (DESIGN.md,
// "The command line").
std::vector<std::string> result_columns(const std::vector<JobRecord>& records) {
  auto columns = kResultColumns;
  for (const char* extra : {"sparsity", "reset_epoch"}) {
    const bool present = std::any_of(records.begin(), records.end(), [&](const JobRecord& r) {
      return r.spec.is_object() && r.spec.contains(extra);
    });
    if (present) columns.push_back(extra);
  }
  return columns;
}

// The summary results.json carries: the one the run recorded, else counts
// from the journal (a run killed before it wrote one).
nlohmann::json summary_of(const dashboard::RunFolder& run) {
  if (!run.summary.empty()) return run.summary;
  nlohmann::json s = {{"command", run.sweep.command}, {"jobs", run.records.size()}};
  for (const char* status : {"done", "failed", "diverged", "skipped", "cancelled", "running", "queued"}) s[status] = 0;
  double job_seconds = 0;
  for (const auto& r : run.records) {
    s[std::string(to_string(r.status))] = s[std::string(to_string(r.status))].get<int>() + 1;
    job_seconds += r.seconds();
  }
  s["job_seconds"] = job_seconds;
  return s;
}

}  // namespace

int report_command(int argc, char** argv) {
  std::string dir;
  bool quiet = false;
  po::options_description desc(
      "packtrain report DIR: rebuild report.html, results.csv, results.json and trace.json from a run's journal");
  desc.add_options()
    ("help,h", "show this help")
    ("quiet", po::bool_switch(&quiet), "print nothing");
  po::options_description hidden;
  hidden.add_options()("dir", po::value(&dir), "the run's output folder");
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description positional;
  positional.add("dir", 1);

  po::variables_map vm;
  try {
    // argv[0] is "report": the parser skips it as the program's name.
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw Error(std::string(e.what()) + " (see packtrain report --help)");
  }
  if (vm.count("help")) {
    std::cout << "usage: packtrain report DIR [--quiet]\n\n" << desc << "\n";
    return 0;
  }
  if (dir.empty()) throw Error("report needs the run's folder: packtrain report DIR");

  // Everything is read before anything is written: bad input leaves the
  // folder as it was.
  const auto run = dashboard::read_run_folder(dir);
  const auto columns = result_columns(run.records);
  write_results_csv(run.dir / "results.csv", run.records, columns);
  write_results_json(run.dir / "results.json", run.records, summary_of(run), columns);
  dashboard::write_report(run);
  const bool trace = dashboard::write_trace(run);
  if (!quiet) {
    std::printf("report: %s\n", (run.dir / "report.html").c_str());
    std::printf("results: %s  (also results.json)\n", (run.dir / "results.csv").c_str());
    if (trace)
      std::printf("trace: %s  (open in ui.perfetto.dev)\n", (run.dir / "trace.json").c_str());
    else
      std::printf("trace: not rebuilt (no utilization.csv in %s)\n", run.dir.c_str());
  }
  return 0;
}

}  // namespace packtrain::cli
