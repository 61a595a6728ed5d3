#pragma once
// A run's results as files: DIR/results.csv (one row per job) and
// DIR/results.json (the same rows and the run's summary).
//
// Columns are the sweep's to choose (kfold's are model, schedule, fold,
// ...): the fixed ones (job, status, name, attempts, seconds, cores, rank)
// come from the journal record; any other column is looked up in the job's
// spec, then in its metrics, and left empty where neither has it. Files are written to a
// temporary name and renamed, so a crash never leaves half a file and an
// earlier complete file stays until the new one is whole.
//
//   write_results_csv(out / "results.csv", summary.jobs, {"job", "status", "model", "seconds"});
#include <packtrain/scheduler/journal.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace packtrain {

// One cell's text: "" when absent; numbers in full precision.
std::string result_cell(const JobRecord& record, const std::string& column);

void write_results_csv(const std::filesystem::path& path, const std::vector<JobRecord>& records,
                       const std::vector<std::string>& columns);

// {"summary": summary, "jobs": [{column: value, ..., "spec": {...}, "metrics": {...}}]}
void write_results_json(const std::filesystem::path& path, const std::vector<JobRecord>& records,
                        const nlohmann::json& summary, const std::vector<std::string>& columns);

// Writes `text` to `path` through a temporary file and a rename.
void write_file_atomically(const std::filesystem::path& path, const std::string& text);

// Creates `dir` (and its parents) if missing and proves it a writable
// folder. Throws Error naming the problem. Whether the folder may be used
// (empty, or a run to resume) is the caller's decision, made before this.
void create_output_dir(const std::filesystem::path& dir);

}  // namespace packtrain
