#pragma once
// What the dashboard keeps in a run's folder so that its report and trace
// can be rebuilt later (`packtrain report DIR`), next to the journal:
//
//   utilization.csv   one row per sample. A header line names the columns,
//                     `time` (unix seconds) then one column per series
//                     (Series::name(): cpu0, cpu1, ..., rss_mb, later gpu0_busy):
//                       time,cpu0,cpu1,rss_mb
//                       1716200000.250,0.98,1,812.4
//                     A run resumed in the same folder appends a new header
//                     line when its series differ, so the file is a list of
//                     blocks, each starting with a line that begins "time,".
//   attempts.csv      one row per job attempt that ended (the journal keeps
//                     only a job's last attempt):
//                       job,attempt,status,start,end,rank,cores,name
//                       3f9c...,1,failed,1716200000.125,1716200002.5,0,0 1,mlp/cosine/fold0
//                     `cores` is space-separated; `name` is CSV-quoted when needed.
//   lent.csv          the same rows for cores lent to elastic jobs.
//   steps.csv         a gang's steps (a data-parallel job over ranks): one
//                     row per member and optimizer step, unix seconds:
//                       job,attempt,rank,step,compute_begin,compute_end,sync_begin,sync_end
//
// All are appended one whole line per write(2) and flushed, so a reader
// (or a process killed at any moment) sees whole rows, at worst without the
// last one; readers skip a line they cannot parse.
#include <packtrain/dashboard/sampler.hpp>
#include <packtrain/scheduler/job.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace packtrain::dashboard {

// One attempt of one job on its cores: a slice of the trace, a bar of the Gantt chart.
struct AttemptSpan {
  std::string job_id;
  std::string name;
  int attempt = 1;
  JobStatus status = JobStatus::running;  // running while it runs; failed for a retried attempt
  double start = 0;                       // unix seconds
  double end = 0;                         // unix seconds; 0 while running
  std::vector<int> cores;
  int rank = 0;
};

// One gang member's optimizer step (dataparallel::StepTiming): its
// compute, then its exchange with the others (allreduce).
struct StepSlice {
  std::string job_id;
  int attempt = 1;
  int rank = 0;
  std::int64_t step = 0;
  double compute_begin = 0, compute_end = 0;  // unix seconds
  double sync_begin = 0, sync_end = 0;
};

// Appends rows to a file opened for appending (O_APPEND). Not thread-safe.
class AppendFile {
 public:
  AppendFile() = default;
  explicit AppendFile(const std::filesystem::path& path);  // throws Error naming the path
  ~AppendFile();
  AppendFile(AppendFile&& other) noexcept;
  AppendFile& operator=(AppendFile&& other) noexcept;

  bool is_open() const { return fd_ >= 0; }
  bool empty_at_open() const { return empty_at_open_; }  // a new file: write its header
  // Writes `line` (which ends in '\n') with one write(2).
  void append(const std::string& line);

 private:
  int fd_ = -1;
  bool empty_at_open_ = true;
};

// utilization.csv, written by the sampler thread.
class UtilizationWriter {
 public:
  UtilizationWriter() = default;
  // Opens `path` for appending and writes a header line unless the file's
  // last header already names exactly `series`.
  UtilizationWriter(const std::filesystem::path& path, std::vector<Series> series);
  bool is_open() const { return file_.is_open(); }
  void append(const Sample& sample);

 private:
  AppendFile file_;
  std::vector<Series> series_;
};

// Calls `row` for every sample in `path`, with the series of its block.
// Returns false when the file does not exist.
bool read_utilization(const std::filesystem::path& path,
                      const std::function<void(const std::vector<Series>&, const Sample&)>& row);

// The text of one attempts.csv row, and the file's header line.
std::string attempt_row(const AttemptSpan& span);
extern const char* const kAttemptsHeader;

// Every row of attempts.csv in file order; empty when the file does not exist.
std::vector<AttemptSpan> read_attempts(const std::filesystem::path& path);

// steps.csv: the text of a row, the header line, every row in file order.
std::string step_row(const StepSlice& step);
extern const char* const kStepsHeader;
std::vector<StepSlice> read_steps(const std::filesystem::path& path);
// The steps a progress report carries (dataparallel::fit_in_job's
// "step_timings": [[rank, step, compute_begin, compute_end, sync_begin,
// sync_end], ...]); none when it has none. Rows of another shape are skipped.
std::vector<StepSlice> steps_in_progress(const std::string& job_id, int attempt, const nlohmann::json& progress);

// Splits one CSV line (RFC 4180 quoting) into cells.
std::vector<std::string> split_csv_line(const std::string& line);

// "0.97", "1", "0", "812.4": a value with at most `decimals` decimals and no trailing zeros.
std::string short_number(double value, int decimals);

}  // namespace packtrain::dashboard
