#pragma once
// Helpers for tests that run the packtrain binary as a user would: run it,
// read the files a run leaves (results.csv, results.json), and take a
// folder's bytes to show that a refused command touched nothing.
// Include only from test binaries built with LibTorch (PACKTRAIN_CLI).
#include "common/test_util.hpp"
#include "packtrain_paths.hpp"

#include <packtrain/scheduler/journal.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace packtrain::testing {

// Runs `packtrain ARGS...`.
inline CommandResult run_packtrain(std::vector<std::string> args) {
  args.insert(args.begin(), PACKTRAIN_CLI);
  return run_command(args);
}

// The argv of `packtrain ARGS... EXTRA...`: a test's sweep (ARGS) and what
// one case changes or adds to it (EXTRA), for run_command.
inline std::vector<std::string> packtrain_argv(std::vector<std::string> args, const std::vector<std::string>& extra = {}) {
  args.insert(args.begin(), PACKTRAIN_CLI);
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// One results.csv row: column -> cell (RFC 4180 quoting is not needed: the
// tests' cells hold no commas).
using ResultRow = std::map<std::string, std::string>;

// results.csv's header and rows, in file order.
inline std::pair<std::vector<std::string>, std::vector<ResultRow>> read_results_csv(const std::filesystem::path& csv) {
  std::istringstream in(read_file(csv));
  std::string line;
  std::vector<std::string> header;
  std::vector<ResultRow> rows;
  if (!std::getline(in, line)) return {header, rows};
  std::stringstream h(line);
  for (std::string c; std::getline(h, c, ',');) header.push_back(c);
  while (std::getline(in, line)) {
    std::stringstream cells(line);
    ResultRow row;
    std::size_t i = 0;
    for (std::string c; i < header.size() && std::getline(cells, c, ','); ++i) row[header[i]] = c;
    rows.push_back(std::move(row));
  }
  return {header, rows};
}

inline nlohmann::json read_json_file(const std::filesystem::path& path) {
  return nlohmann::json::parse(read_file(path), nullptr, false);
}

// A run's journal rows (DIR/journal.sqlite), in insertion order, and by job id.
inline std::vector<JobRecord> journal_records(const std::filesystem::path& dir) {
  return Journal::open(dir / "journal.sqlite")->records();
}
inline std::map<std::string, JobRecord> journal_by_id(const std::filesystem::path& dir) {
  std::map<std::string, JobRecord> out;
  for (auto& r : journal_records(dir)) out[r.id] = r;
  return out;
}
// The started_at of each job the journal holds as done, by id. Read it once the killed process is gone: jobs
// may end between a poll and the kill.
inline std::map<std::string, double> done_started_at(const std::filesystem::path& dir) {
  std::map<std::string, double> out;
  for (const auto& r : journal_records(dir))
    if (r.status == JobStatus::done) out[r.id] = r.started_at;
  return out;
}

// results.csv's rows by job id.
inline std::map<std::string, ResultRow> results_by_id(const std::filesystem::path& csv) {
  std::map<std::string, ResultRow> out;
  for (auto& row : read_results_csv(csv).second) out[row["job"]] = row;
  return out;
}

// Every file under `dir` (relative path -> bytes): equal snapshots mean
// nothing was added, removed or changed.
inline std::map<std::string, std::string> folder_bytes(const std::filesystem::path& dir) {
  std::map<std::string, std::string> files;
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir))
    if (entry.is_regular_file()) files[std::filesystem::relative(entry.path(), dir).string()] = read_file(entry.path());
  return files;
}

// The one line a refused command prints: stderr has exactly one line.
inline bool one_line(const std::string& text) {
  return !text.empty() && text.find('\n') == text.size() - 1;
}

}  // namespace packtrain::testing
