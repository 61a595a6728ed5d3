#pragma once
// The run's journal: a SQLite file (WAL mode) with one row per job.
//
// Protocol: the runner writes a row `queued` for each job, then `running`
// (attempt, start time, cores, rank) when it starts, then its final status
// with the end time, metrics and the files it wrote (JobOutcome::artifacts). Each write is one autocommitted statement,
// so a process killed at any moment leaves a consistent file: completed
// rows intact, the jobs it was running still `running`. WAL with
// synchronous=NORMAL survives a killed process (not a power cut, which a
// training sweep can afford to redo). One writer per run (rank 0 under MPI).
//
// Older journals: a journal written before the `artifacts` column existed
// gets it when opened to write (open()), filled from the "artifacts" list
// its jobs used to keep in their metrics; read-only (open_existing()), the
// same list is read from the metrics and the file is left as it is.
//
//   auto journal = packtrain::Journal::open(out / "journal.sqlite");
//   for (auto& r : journal.records()) if (r.status == JobStatus::done) ...
#include <packtrain/scheduler/job.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace packtrain {

// JobRecord (one job's row) is in job.hpp.

class Journal {
 public:
  // Opens (creating if needed) the journal at `path`. Throws Error naming the
  // path when it cannot be opened or is not a packtrain journal.
  static std::unique_ptr<Journal> open(const std::filesystem::path& path);
  // Opens an existing journal to read it: creates nothing and changes
  // nothing in the file. Throws Error naming the path when it is missing,
  // damaged or not a packtrain journal.
  static std::unique_ptr<Journal> open_existing(const std::filesystem::path& path);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Adds a `queued` row; an existing row of that id keeps its status,
  // attempts, times and results, and gets this name and spec.
  void add_queued(const std::string& id, const std::string& name, const nlohmann::json& spec);
  void mark_started(const std::string& id, int attempt, double started_at, const std::vector<int>& cores, int rank);
  void mark_ended(const std::string& id, JobStatus status, int attempts, double ended_at,
                  const nlohmann::json& metrics, const std::string& message,
                  const std::vector<std::string>& artifacts = {});
  // A whole row, as another process or rank recorded it (shard merges, MPI).
  void put(const JobRecord& record);

  std::vector<JobRecord> records() const;  // in insertion order
  std::optional<JobRecord> find(const std::string& id) const;

  void set_meta(const std::string& key, const std::string& value);
  std::optional<std::string> meta(const std::string& key) const;

 private:
  explicit Journal(std::filesystem::path path);
  void exec(const std::string& sql);
  bool has_column(const char* table, const char* column);
  void add_artifacts_column();  // an older journal, opened to write

  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
  bool artifacts_column_ = true;  // false: an older journal, opened read-only
  mutable std::mutex mutex_;  // one connection, used from any worker thread
};

// Seconds since the unix epoch, as the journal records times.
double unix_now();

// A record as JSON and back (records travel between ranks and shards).
nlohmann::json record_to_json(const JobRecord& record);
JobRecord record_from_json(const nlohmann::json& json);

}  // namespace packtrain
