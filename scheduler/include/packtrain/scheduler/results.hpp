#pragma once
// A run's results as files: DIR/results.csv (one row per job) and
// DIR/results.json (the same rows and the run's summary).
//
// Columns: the fixed ones (job, status, seconds, cores, rank) come from the
// journal record; any other column is looked up in the job's spec, then in
// its metrics, and left empty where neither has it. Files are written to a
// temporary name and renamed, so a crash never leaves half a file and an
// earlier complete file stays until the new one is whole.
//
//   write_results_csv(out / "results.csv", summary.jobs, kKFoldColumns);
#include <packtrain/scheduler/journal.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace packtrain {

// The columns every sweep writes (DESIGN.md, "The command line").
extern const std::vector<std::string> kResultColumns;

// One cell's text: "" when absent; numbers in full precision.
std::string result_cell(const JobRecord& record, const std::string& column);

void write_results_csv(const std::filesystem::path& path, const std::vector<JobRecord>& records,
                       const std::vector<std::string>& columns = kResultColumns);

// {"summary": summary, "jobs": [{column: value, ..., "spec": {...}, "metrics": {...}}]}
void write_results_json(const std::filesystem::path& path, const std::vector<JobRecord>& records,
                        const nlohmann::json& summary, const std::vector<std::string>& columns = kResultColumns);

// Writes `text` to `path` through a temporary file and a rename.
void write_file_atomically(const std::filesystem::path& path, const std::string& text);

// Checks that `dir` can hold a run's output: creates it if missing, proves it
// writable, and refuses a folder that already holds a journal unless
// `resume` (nothing there is touched). Throws Error naming the problem.
void prepare_output_dir(const std::filesystem::path& dir, bool resume);

}  // namespace packtrain
