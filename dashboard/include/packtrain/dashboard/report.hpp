#pragma once
// DIR/report.html: one self-contained page (inline CSS, SVG and a little
// JS; nothing fetched from the network) that shows where a run's cores
// went: a utilization track per core, a Gantt chart of jobs per core
// coloured by status, the sweep's summary (mean and std of its metric per
// group, the best group marked, and an accuracy line plot when the sweep
// asks for one) and the results table.
//
// The charts are SVG drawn here, in C++, so the page reads the same with
// scripts blocked; the script only sorts the tables. Elements carry data
// attributes for machines: each utilization track is
// <g class="core-track" data-core="N">, each Gantt row
// <g class="gantt-row" data-gantt-core="N">, the job count is
// <span id="job-count">.
//
// The sweep is described generically by the journal's meta table, so the
// dashboard never depends on kfold or lth (see SweepMeta).
//
//   auto input = load_report_input(dir);          // from DIR's files
//   write_file_atomically(dir / "report.html", render_report_html(input));
#include <packtrain/dashboard/run_files.hpp>
#include <packtrain/dashboard/sampler.hpp>
#include <packtrain/scheduler/journal.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace packtrain::dashboard {

// What the sweep wrote to the journal's meta table for its report:
//   command         "kfold"
//   group_by        JSON array of spec keys: ["model","schedule"]
//   metric          "val_top1"
//   metric_goal     "max" | "min" (optional; default max, min for a metric named *loss or *error)
//   plot_x          spec key on the x axis of a line plot: "sparsity" (optional)
//   plot_series     spec key, one line per value: "reset_epoch" (optional)
//   plot_reference  a number drawn as a dashed line: the dense accuracy (optional)
//   columns         JSON array: results.csv's columns, as the sweep chose them (optional)
//   cores           JSON array: the cores the run had, each a track even if idle (optional)
//   entries         JSON array: a batch's entries (packtrain batch), each
//                   {"name", "command", "meta": {the keys above}, "jobs": [ids]}:
//                   the report has a summary section for each, and every
//                   job's row an `entry` (optional)
struct SweepMeta {
  std::string command;
  std::vector<std::string> group_by;
  std::string metric = "val_top1";
  bool higher_is_better = true;
  std::string plot_x, plot_series;
  std::optional<double> plot_reference;
  std::vector<std::string> columns;
  std::vector<int> cores;
  struct Entry;
  std::vector<Entry> entries;

  // The meta keys above: what a report, a rebuild and a merge read.
  static const std::vector<std::string>& keys();

  // Reads the keys above; absent keys keep their defaults. Malformed values
  // (group_by not a JSON array of strings, plot_reference not a number)
  // throw Error naming the key.
  static SweepMeta from_journal(const Journal& journal);
  // The same keys from a JSON object (runs without a journal, tests).
  // Values may be JSON values or their text, as the journal holds them.
  static SweepMeta from_json(const nlohmann::json& meta);
};

struct SweepMeta::Entry {
  std::string name, command;
  SweepMeta meta;
  std::vector<std::string> jobs;  // ids
};

// A batch's jobs: each record of an entry's job gets metrics["entry"] (its
// name), which results.csv's `entry` column shows. Nothing for other runs.
void label_entries(std::vector<JobRecord>& records, const SweepMeta& sweep);

// The metric of one group of jobs (same values of the group_by keys).
struct GroupStat {
  nlohmann::json key = nlohmann::json::object();  // {"model":"mlp","schedule":"cosine"}
  int jobs = 0;                                   // jobs in the group
  int measured = 0;                               // done jobs with a numeric metric
  double mean = NAN;                              // of the metric over those
  double std = NAN;                               // sample std (n-1); 0 for one job
  bool best = false;                              // highest mean (lowest when !higher_is_better)
};

// Groups `jobs` by the values of `keys` in their specs (jobs lacking a key
// are left out), in order of first appearance.
std::vector<GroupStat> group_stats(const std::vector<JobRecord>& jobs, const std::vector<std::string>& keys,
                                   const std::string& metric, bool higher_is_better = true);

// Utilization averaged into equal time buckets: what a chart can draw.
struct UtilizationTrack {
  Series series;
  std::vector<double> buckets;  // the time-weighted mean in each bucket; NaN where no sample reached
  double mean = NAN;            // time-weighted, over the whole run
  double peak = NAN;            // the highest sample
};
struct UtilizationChart {
  double begin = 0, end = 0;  // unix seconds
  int samples = 0;
  std::vector<UtilizationTrack> tracks;
};

// Streams samples (in time order) into buckets over [begin, end]. Each
// sample stands for the interval since the previous one (at most
// kMaxSampleSpan; after a longer gap, one bucket's width).
class UtilizationBinner {
 public:
  static constexpr double kMaxSampleSpan = 60;  // seconds

  UtilizationBinner(double begin, double end, int buckets);
  void add(const std::vector<Series>& series, const Sample& sample);
  UtilizationChart chart() const;

 private:
  struct Sums {
    Series series;
    std::vector<double> sum;     // value x seconds, per bucket
    std::vector<double> weight;  // seconds, per bucket
    double total = 0, total_weight = 0, peak = -INFINITY;
  };
  double begin_, end_;
  int buckets_;
  int samples_ = 0;
  double previous_ = 0;  // the previous sample's time
  std::vector<Sums> sums_;
};

struct ReportInput {
  std::string title;                  // the run folder's name
  SweepMeta sweep;
  std::vector<JobRecord> jobs;        // the results table and the sweep summary
  std::vector<AttemptSpan> attempts;  // the Gantt chart
  UtilizationChart utilization;
  // Run totals: done, failed, ..., makespan_s, job_seconds, cores (the keys
  // of the CLI's summary JSON); missing ones are computed from `jobs`.
  nlohmann::json summary = nlohmann::json::object();
  std::vector<std::string> columns;   // of the results table (result_columns(sweep) when empty)
  std::vector<int> cores;             // a track for each, even a core that ran no job
  int rank = 0;
};

// A run's job attempts: every one in DIR/attempts.csv, plus each job's last
// attempt from the journal's `records` where the file lacks it (a run
// killed while it ran, a folder without the file). Running ones have end 0.
std::vector<AttemptSpan> run_attempts(const std::filesystem::path& dir, const std::vector<JobRecord>& records);

// Builds a ReportInput from a run's files: journal records and meta (the
// `summary` meta key when present), attempts.csv (else each job's last
// attempt from the journal) and utilization.csv (if any). `records` and
// `sweep` come from the caller, who already opened the journal.
ReportInput report_input(const std::filesystem::path& dir, std::vector<JobRecord> records, const SweepMeta& sweep,
                         const nlohmann::json& summary);

// The results table's columns: `base`, plus the group_by and plot keys of
// `sweep` that are missing from it.
std::vector<std::string> report_columns(const std::vector<std::string>& base, const SweepMeta& sweep);

// The columns of results.csv: the sweep's (meta `columns`), else, for a run
// that did not record them, job, status, the group_by and plot keys, the
// metric, seconds, cores and rank.
std::vector<std::string> result_columns(const SweepMeta& sweep);

std::string render_report_html(const ReportInput& input);

}  // namespace packtrain::dashboard
