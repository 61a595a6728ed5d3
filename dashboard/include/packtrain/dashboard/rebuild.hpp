#pragma once
// Rebuilding a run's report and trace from its folder, after the fact
// (`packtrain report DIR`): from DIR/journal.sqlite, DIR/attempts.csv and
// DIR/utilization.csv, the files RunDashboard left there.
//
//   auto run = packtrain::dashboard::read_run_folder(dir);   // throws Error on bad input, writes nothing
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

// Writes DIR/report.html (atomically).
void write_report(const RunFolder& run);

// Writes DIR/trace.json (atomically) from the attempts and the samples in
// utilization.csv. Returns false, writing nothing, when the folder has no
// utilization.csv (an existing trace.json is then the best there is).
bool write_trace(const RunFolder& run);

}  // namespace packtrain::dashboard
