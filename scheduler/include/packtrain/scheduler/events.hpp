#pragma once
// Job events and the sinks that listen to them (console, dashboard, trace).
//
// The runner calls every sink from one thread, the one in JobRunner::run,
// in the order things happened and outside the runner's lock, so a sink
// needs no locking of its own and a slow one delays only later events, never
// placement. Every event of a run reaches the sinks before on_run_end. Sinks
// observe; they never call back into the runner.
#include <packtrain/scheduler/job.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace packtrain {

// resized: an elastic job's cores changed (cores lent or taken back); `cores`
// holds every core it has now, data {"cores": n}.
enum class EventKind { queued, started, progress, finished, failed, retried, skipped, cancelled, resized };
std::string_view to_string(EventKind kind);

struct JobEvent {
  EventKind kind = EventKind::queued;
  std::string job_id;
  std::string name;
  double time = 0;                 // seconds since the run started
  std::vector<int> cores;          // started: the cores it was pinned to; resized: all it has now
  int attempt = 0;
  int rank = 0;
  JobStatus status = JobStatus::queued;  // finished/failed/...: the final status
  nlohmann::json data;             // progress: the job's report; finished: its metrics
  std::string message;             // failed/skipped: why
  double cost = 0;                 // the job's cost estimate (for ETAs)
};

struct RunStart {
  int total_jobs = 0;
  int already_done = 0;            // resumed from the journal
  int already_crashed = 0;         // recorded `crashed` in the journal: not run again
  std::vector<int> cores;
  double total_cost = 0;           // sum of cost estimates of the jobs to run
};

struct RunSummary;

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void on_run_start(const RunStart&) {}
  // Jobs added while the run goes (Job::then): how many, how many of them
  // were done before (resumed), their cost; `cores` is empty. Their
  // `queued` events follow.
  virtual void on_jobs_added(const RunStart&) {}
  virtual void on_event(const JobEvent& event) = 0;
  virtual void on_run_end(const RunSummary&) {}
};

}  // namespace packtrain
