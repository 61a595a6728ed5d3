// packtrain report DIR: rebuilds a run's report.html, results.csv,
// results.json and (when its utilization samples exist) trace.json from
// DIR/journal.sqlite and the dashboard's files next to it. It trains
// nothing and needs no LibTorch.
//
// packtrain report --merge DIR... --out OUT: makes one run of the --shard
// runs of a sweep (SLURM job arrays): OUT gets a journal with every job's
// record, results.csv, results.json and report.html. Each shard's journal
// lists the whole sweep's jobs (meta `sweep_jobs`, written by RunSetup), so
// the merge can tell runs of other sweeps and name the jobs no shard ran.
#include "commands.hpp"

#include <packtrain/dashboard/rebuild.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/results.hpp>

#include <boost/program_options.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace po = boost::program_options;

namespace packtrain::cli {
namespace {

// Writes results.csv, results.json, report.html and (when it can) trace.json
// into `run.dir`, and says where they are.
void write_outputs(const dashboard::RunFolder& run, bool trace_wanted, bool quiet) {
  dashboard::write_results(run);
  dashboard::write_report(run);
  const bool trace = trace_wanted && dashboard::write_trace(run);
  if (quiet) return;
  std::printf("report: %s\n", (run.dir / "report.html").c_str());
  std::printf("results: %s  (also results.json)\n", (run.dir / "results.csv").c_str());
  if (!trace_wanted) return;
  if (trace)
    std::printf("trace: %s  (open in ui.perfetto.dev)\n", (run.dir / "trace.json").c_str());
  else
    std::printf("trace: not rebuilt (no utilization.csv in %s)\n", run.dir.c_str());
}

struct Shard {
  dashboard::RunFolder run;
  std::string shard;                         // "i/n" as it ran; empty for a run without --shard
  nlohmann::json jobs;                       // the whole sweep: [{"id","name"}, ...]
  std::map<std::string, std::string> meta;   // the SweepMeta keys present
};

Shard read_shard(const std::filesystem::path& dir) {
  Shard s;
  s.run = dashboard::read_run_folder(dir);  // one-line Error for a folder that is not a run
  const auto journal = Journal::open(dir / "journal.sqlite");
  const auto jobs = journal->meta("sweep_jobs");
  if (!jobs)
    throw Error(dir.string() + "'s journal does not list its sweep's jobs (a run by an older packtrain?): cannot merge it");
  s.jobs = nlohmann::json::parse(*jobs, nullptr, false);
  if (!s.jobs.is_array()) throw Error(dir.string() + "'s journal has a damaged job list (meta sweep_jobs)");
  s.shard = journal->meta("shard").value_or("");
  for (const auto& key : dashboard::SweepMeta::keys())
    if (auto value = journal->meta(key)) s.meta[key] = *value;
  return s;
}

// The merge; everything is read and checked before OUT is created.
int merge(const std::vector<std::string>& dirs, const std::filesystem::path& out, bool quiet) {
  std::error_code ec;
  if (std::filesystem::exists(out, ec) &&
      (!std::filesystem::is_directory(out, ec) || !std::filesystem::is_empty(out, ec)))
    throw Error("--out " + out.string() + " is not an empty folder: merge into a new one");
  std::vector<Shard> shards;
  for (const auto& dir : dirs) shards.push_back(read_shard(dir));
  const auto& first = shards.front();
  for (std::size_t k = 1; k < shards.size(); ++k) {
    const auto& s = shards[k];
    if (s.run.sweep.command != first.run.sweep.command)
      throw Error("cannot merge " + dirs[k] + " (a " + s.run.sweep.command + " run) with " + dirs[0] + " (a " +
                  first.run.sweep.command + " run)");
    if (s.jobs != first.jobs)
      throw Error(dirs[k] + " is not a shard of the same sweep as " + dirs[0] +
                  ": their job lists differ (other options or data?)");
  }

  // One record per job: a job in several shards keeps the first done record
  // (in the order the DIRs are given), else the first record there is.
  std::map<std::string, JobRecord> chosen;
  for (const auto& s : shards)
    for (const auto& r : s.run.records) {
      auto it = chosen.find(r.id);
      if (it == chosen.end()) chosen.emplace(r.id, r);
      else if (it->second.status != JobStatus::done && r.status == JobStatus::done) it->second = r;
    }
  std::vector<std::string> missing;
  std::vector<JobRecord> records;
  std::set<std::string> in_sweep;
  for (const auto& job : first.jobs) {
    const auto id = job.value("id", "");
    in_sweep.insert(id);
    if (const auto it = chosen.find(id); it != chosen.end()) records.push_back(it->second);
    else missing.push_back(job.value("name", "") + " (" + id + ")");
  }
  for (const auto& [id, r] : chosen)
    if (!in_sweep.count(id)) throw Error(r.name + " (" + id + ") is in a shard's journal but not in its sweep's job list");
  if (!missing.empty()) {
    std::set<std::string> given;
    int n = 0;
    for (const auto& s : shards) {
      given.insert(s.shard);
      if (const auto slash = s.shard.find('/'); slash != std::string::npos) n = std::max(n, std::stoi(s.shard.substr(slash + 1)));
    }
    std::string absent;
    for (int i = 0; i < n; ++i)
      if (!given.count(std::to_string(i) + "/" + std::to_string(n))) absent += (absent.empty() ? "" : ", ") + std::to_string(i) + "/" + std::to_string(n);
    std::string names;
    for (std::size_t k = 0; k < missing.size() && k < 5; ++k) names += (k ? ", " : "") + missing[k];
    if (missing.size() > 5) names += ", and " + std::to_string(missing.size() - 5) + " more";
    throw Error("the shards do not cover the sweep: " + std::to_string(missing.size()) + " of " +
                std::to_string(first.jobs.size()) + " jobs are in none of them" +
                (absent.empty() ? "" : " (shard " + absent + " not given)") + ": " + names);
  }

  std::filesystem::create_directories(out);
  {
    const auto journal = Journal::open(out / "journal.sqlite");
    journal->set_meta("command", first.run.sweep.command);
    journal->set_meta("sweep_jobs", first.jobs.dump());
    // What the report needs to describe the sweep (its columns among them),
    // from the first shard that has each key.
    for (const auto& key : dashboard::SweepMeta::keys())
      for (const auto& s : shards)
        if (const auto it = s.meta.find(key); it != s.meta.end()) {
          journal->set_meta(key, it->second);
          break;
        }
    dashboard::RunFolder counted{.dir = out, .records = records, .sweep = first.run.sweep};
    auto summary = dashboard::run_summary(counted);
    summary["merged_from"] = dirs;
    journal->set_meta("merged_from", nlohmann::json(dirs).dump());
    journal->set_meta("summary", summary.dump());
    for (const auto& r : records) journal->put(r);
  }
  // The shards' utilization samples and attempts stay with them: the jobs
  // ran on different nodes, so there is no one trace to rebuild.
  write_outputs(dashboard::read_run_folder(out), false, quiet);
  return 0;
}

}  // namespace

int report_command(int argc, char** argv) {
  std::vector<std::string> dirs;
  bool quiet = false;
  bool merging = false;
  std::string out;
  po::options_description desc(
      "packtrain report DIR: rebuild report.html, results.csv, results.json and trace.json from a run's journal\n"
      "packtrain report --merge DIR... --out OUT: merge the --shard runs of one sweep into one run");
  desc.add_options()
    ("help,h", "show this help")
    ("merge", po::bool_switch(&merging),
     "merge the journals of the shard runs DIR... (same command and options, each with --shard I/N) into --out: "
     "journal.sqlite, results.csv, results.json, report.html. Refuses runs of different sweeps, and names the jobs "
     "no shard holds. A job in several shards keeps its first done record, in the order the DIRs are given. "
     "Checkpoints stay in the shards' folders")
    ("out", po::value(&out), "with --merge (required): a new or empty folder for the merged run")
    ("quiet,q", po::bool_switch(&quiet), "print nothing but errors (not where the files are)");
  po::options_description hidden;
  hidden.add_options()("dir", po::value(&dirs), "the run's output folder");
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description positional;
  positional.add("dir", -1);

  po::variables_map vm;
  try {
    // argv[0] is "report": the parser skips it as the program's name.
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw Error(std::string(e.what()) + " (see packtrain report --help)");
  }
  if (vm.count("help")) {
    std::cout << "usage: packtrain report DIR [--quiet]\n"
                 "       packtrain report --merge DIR... --out OUT [--quiet]\n\n"
              << desc << "\n";
    return 0;
  }
  if (merging) {
    if (dirs.empty()) throw Error("--merge needs the shard runs' folders: packtrain report --merge DIR... --out OUT");
    if (out.empty()) throw Error("--merge needs --out: the folder for the merged run");
    return merge(dirs, out, quiet);
  }
  if (!out.empty()) throw Error("--out is for --merge; packtrain report DIR rewrites DIR's own files");
  if (dirs.empty()) throw Error("report needs the run's folder: packtrain report DIR");
  if (dirs.size() > 1) throw Error("report takes one DIR; to merge shard runs: --merge DIR... --out OUT (see packtrain report --help)");

  // Everything is read before anything is written: bad input leaves the
  // folder as it was.
  write_outputs(dashboard::read_run_folder(dirs.front()), true, quiet);
  return 0;
}

}  // namespace packtrain::cli
