#pragma once
// The state of a run as the live page and Prometheus see it, built from the
// runner's events and the sampler's samples: jobs by state, what runs on
// each core, each core's recent utilization, the ETA.
//
// Not thread-safe: RunDashboard keeps it under its mutex. Times are unix
// seconds, passed in so tests control them.
//
//   LiveStatus live(0, {0, 1}, 250);
//   live.run_start(start, unix_now());
//   live.event(event, unix_now());          // for every JobEvent
//   live.sample(series, sample);            // for every Sample
//   live.status_json(unix_now());           // GET /api/status
//   live.metrics_text(unix_now(), cpu_s);   // GET /metrics
#include <packtrain/dashboard/sampler.hpp>
#include <packtrain/scheduler/events.hpp>

#include <nlohmann/json.hpp>

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace packtrain::dashboard {

struct JobCounts {
  int total = 0;  // jobs in the run, resumed ones included
  int queued = 0, running = 0, done = 0, failed = 0, diverged = 0, skipped = 0, cancelled = 0;
  int resumed = 0;  // done before this run (counted in done too)
  int retried = 0;  // failed attempts that were retried
};

class LiveStatus {
 public:
  // `history` samples of each series are kept for the live page's sparklines.
  LiveStatus(int rank, std::vector<int> cores, int sample_ms, int history = 240);

  // The metric shown for finished jobs ("val_top1").
  void set_metric(std::string metric) { metric_ = std::move(metric); }
  void set_command(std::string command) { command_ = std::move(command); }

  void run_start(const RunStart& start, double now);
  // Jobs added while the run goes (EventSink::on_jobs_added).
  void jobs_added(const RunStart& added);
  void event(const JobEvent& event, double now);
  void run_end(double now);
  void sample(const std::vector<Series>& series, const Sample& sample);

  JobCounts counts() const;
  // Seconds left, from the cost of the jobs ended so far and the time they
  // took (as the console's ETA); nothing before the first job ends.
  std::optional<double> eta_seconds(double now) const;
  double elapsed_seconds(double now) const;

  // GET /api/status:
  //   {"rank":0,"state":"running","command":"kfold","elapsed_s":12.5,"eta_s":40.2,
  //    "jobs":{"total":12,"queued":6,"running":2,"done":4,...},
  //    "cores":[{"core":0,"busy":0.98,"history":[...],"job":{"id":..,"name":..,"attempt":1,"running_s":3.1}}],
  //      (a job's samples_per_s, replicas and sync_share too, once its progress reports them)
  //    "memory_mb":812.4,"memory_history":[...],"sample_ms":250,
  //    "samples_per_s":1234.5 (only when running jobs report it),
  //    "recent":[{"name":..,"status":"done","seconds":5.2,"metric":0.87}]}
  nlohmann::json status_json(double now) const;

  // GET /metrics: Prometheus text exposition format 0.0.4.
  std::string metrics_text(double now, double dashboard_cpu_seconds) const;

 private:
  struct Running {
    std::string id, name;
    int attempt = 1;
    double since = 0;
    std::vector<int> cores;
    std::optional<double> samples_per_s;
    // Data-parallel jobs (dataparallel::fit_in_job's progress): replicas and
    // the share of their time spent reducing and waiting, last epoch.
    std::optional<double> replicas, sync_share;
  };
  struct Ended {
    std::string name;
    JobStatus status;
    double seconds;
    std::optional<double> metric;
  };
  std::optional<double> latest(const Series& series) const;

  int rank_;
  std::vector<int> cores_;
  int sample_ms_;
  std::size_t history_;
  std::string metric_ = "val_top1";
  std::string command_;

  bool started_ = false, ended_ = false;
  double run_start_ = 0, run_end_ = 0;
  int total_ = 0, resumed_ = 0, retried_ = 0;
  double total_cost_ = 0, done_cost_ = 0;
  std::map<std::string, JobStatus> jobs_;   // this run's jobs by id
  std::map<std::string, Running> running_;  // by job id
  std::deque<Ended> recent_;

  std::vector<Series> series_;
  std::vector<double> latest_;                     // the last sample, per entry of series_
  std::vector<std::deque<float>> history_values_;  // per entry of series_
};

// A number as Prometheus and JSON readers expect it: shortest round-trip
// text, "NaN", "+Inf", "-Inf".
std::string prometheus_number(double value);

}  // namespace packtrain::dashboard
