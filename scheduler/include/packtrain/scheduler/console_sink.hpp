#pragma once
// Shows a run on the terminal: on a TTY one live progress line
// ("[12/40] running 2  failed 0  ETA 1m20s  last: mlp/cosine/fold3 0.871"),
// redrawn in place; otherwise (logs, CI) one plain line per job event.
#include <packtrain/scheduler/events.hpp>

#include <cstdio>
#include <string>

namespace packtrain {

struct ConsoleOptions {
  bool quiet = false;        // print nothing per job
  int live = -1;             // 1 live line, 0 plain lines, -1 live when `out` is a terminal
  std::FILE* out = stderr;
  std::string metric;        // the metric shown for finished jobs (a key of their metrics)
};

class ConsoleSink : public EventSink {
 public:
  explicit ConsoleSink(ConsoleOptions options = {});
  void on_run_start(const RunStart& start) override;
  void on_jobs_added(const RunStart& added) override;
  void on_event(const JobEvent& event) override;
  void on_run_end(const RunSummary& summary) override;

 private:
  void draw();
  std::string eta() const;

  ConsoleOptions options_;
  bool live_ = false;
  int total_ = 0, done_ = 0, failed_ = 0, running_ = 0;
  double total_cost_ = 0, done_cost_ = 0, last_time_ = 0;
  std::string last_;
};

// "1h02m", "3m20s", "12s".
std::string format_duration(double seconds);

// How much faster the run went than its jobs one after another, on how
// many cores in all (over every rank), with no newline:
//   "makespan 2m50s, jobs' own time 5m38s: 1.99x the speed of one job at a time on 2 cores"
// or, when no job ran in this run, why: "nothing to run: all 20 jobs were done before (--resume)".
// A ratio above the cores is not called a speedup: the line then says the
// cores were shared with other work.
std::string format_speedup(const RunSummary& run, int cores, int ranks = 1);

}  // namespace packtrain
