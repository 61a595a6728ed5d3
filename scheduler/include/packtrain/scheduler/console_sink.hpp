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
  std::string metric = "val_top1";  // the metric shown for finished jobs
};

class ConsoleSink : public EventSink {
 public:
  explicit ConsoleSink(ConsoleOptions options = {});
  void on_run_start(const RunStart& start) override;
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

}  // namespace packtrain
