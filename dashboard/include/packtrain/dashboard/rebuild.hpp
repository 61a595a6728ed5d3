#pragma once
// A run's files from its folder: DIR/journal.sqlite (records and meta),
// DIR/attempts.csv, DIR/lent.csv and DIR/utilization.csv, the files
// RunDashboard left there. The run's own end writes results.csv,
// results.json and report.html through these same functions, so
// `packtrain report DIR` reproduces them byte for byte.
//
//   auto run = packtrain::dashboard::read_run_folder(dir);   // throws Error on bad input, writes nothing
//   packtrain::dashboard::write_results(run);                 // DIR/results.csv, DIR/results.json
//   packtrain::dashboard::write_report(run);                  // DIR/report.html
//   packtrain::dashboard::write_trace(run);                   // DIR/trace.json, when samples exist
#include <packtrain/dashboard/report.hpp>
#include <packtrain/scheduler/journal.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <vector>

namespace packtrain::dashboard {

struct RunFolder {
  std::filesystem::path dir;
  std::vector<JobRecord> records;  // the journal's rows, in insertion order
  SweepMeta sweep;                 // from the journal's meta table
  nlohmann::json summary = nlohmann::json::object();  // its `summary` key, when the run got that far
};

// Reads a run's journal. Throws Error (one line, naming the path) when the
// folder does not exist, holds no journal.sqlite, or the journal is damaged
// or not a packtrain journal; writes nothing.
RunFolder read_run_folder(const std::filesystem::path& dir);
// The same from a journal already open (the run's own, at its end).
RunFolder read_run(const std::filesystem::path& dir, const Journal& journal);

// The summary results.json carries: the run's (meta `summary`), else counts
// of jobs by status and the sum of their times (a run killed before its end).
nlohmann::json run_summary(const RunFolder& run);

// Writes DIR/results.csv and DIR/results.json (atomically), with the
// sweep's columns (result_columns).
void write_results(const RunFolder& run);

// Writes DIR/report.html (atomically).
void write_report(const RunFolder& run);

// Writes DIR/trace.json (atomically) from the attempts, the cores lent to
// elastic jobs (lent.csv) and the samples in utilization.csv. Returns false, writing nothing, when the folder has no
// utilization.csv (an existing trace.json is then the best there is).
bool write_trace(const RunFolder& run);

}  // namespace packtrain::dashboard
