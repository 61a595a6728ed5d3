#pragma once
// The whole dashboard for one run, attached to a JobRunner as an EventSink:
// the sampler, the live trace.json, utilization.csv and attempts.csv, the
// report at the end, and (optionally) the live HTTP view. It only listens:
// it never calls back into the runner or the sweep.
//
//   packtrain::dashboard::RunDashboard dash(packtrain::dashboard::DashboardOptions()
//       .out_dir(out).cores(node.cores).rank(0).sample_ms(250)
//       .serve_port(0).bind("127.0.0.1").journal(journal.get()));
//   if (dash.port()) std::printf("dashboard: %s\n", dash.url().c_str());
//   run_options.sinks.push_back(&dash);
//   auto summary = runner.run(run_options);
//   dash.finish(summary);                  // final trace.json + report.html
//
// Threads: events arrive on the runner's threads (one at a time), samples on
// the sampler thread, requests on the server's threads; one mutex guards the
// state they share. The sampler thread is also the only writer of
// trace.json (every `trace_ms`, replaced atomically) and utilization.csv
// while the run goes; finish() writes the last versions after stopping it.
// The dashboard prints nothing.
#include <packtrain/dashboard/sampler.hpp>
#include <packtrain/scheduler/events.hpp>
#include <packtrain/scheduler/journal.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace packtrain {
struct RunSummary;
}

namespace packtrain::dashboard {

// LibTorch-style options: DashboardOptions().out_dir(dir).sample_ms(100).
class DashboardOptions {
 public:
  // Where trace.json, report.html, utilization.csv and attempts.csv go.
  // Empty: write no files (live view only).
  DashboardOptions& out_dir(std::filesystem::path dir) { out_dir_ = std::move(dir); return *this; }
  // The run's cores (CPU ids). Default: this process's affinity mask.
  DashboardOptions& cores(std::vector<int> cores) { cores_ = std::move(cores); return *this; }
  // The MPI rank: the trace's pid.
  DashboardOptions& rank(int rank) { rank_ = rank; return *this; }
  // Milliseconds between samples (at least 10; the CLI's --sample-ms).
  DashboardOptions& sample_ms(int ms) { sample_ms_ = ms; return *this; }
  // Milliseconds between rewrites of trace.json while the run goes.
  DashboardOptions& trace_ms(int ms) { trace_ms_ = ms; return *this; }
  // Serve the live view on this port; 0 picks a free one (port() says
  // which). Not called: no server. (The CLI's `--serve 0` means "off", so it
  // calls this only when --serve was given.)
  DashboardOptions& serve_port(int port) { serve_port_ = port; return *this; }
  // The address the live view listens on. Default 127.0.0.1: this machine only.
  DashboardOptions& bind(std::string address) { bind_ = std::move(address); return *this; }
  // Required of every request when not empty (LiveServer): what a live view
  // reachable from other machines needs.
  DashboardOptions& token(std::string token) { token_ = std::move(token); return *this; }
  // The run's journal: job specs for the trace's args, and the sweep's meta
  // (command, group_by, metric, plot_*) for the report. Optional.
  DashboardOptions& journal(const Journal* journal) { journal_ = journal; return *this; }
  // Meta keys (as in the journal's meta table) that override the journal's:
  // for runs without a journal, and tests.
  DashboardOptions& meta(nlohmann::json meta) { meta_ = std::move(meta); return *this; }
  // Another source of samples (a GPU, say), sampled with the others.
  DashboardOptions& add_source(std::shared_ptr<SampleSource> source) { sources_.push_back(std::move(source)); return *this; }

  const std::filesystem::path& out_dir() const { return out_dir_; }
  const std::vector<int>& cores() const { return cores_; }
  int rank() const { return rank_; }
  int sample_ms() const { return sample_ms_; }
  int trace_ms() const { return trace_ms_; }
  const std::optional<int>& serve_port() const { return serve_port_; }
  const std::string& bind() const { return bind_; }
  const std::string& token() const { return token_; }
  const Journal* journal() const { return journal_; }
  const nlohmann::json& meta() const { return meta_; }
  const std::vector<std::shared_ptr<SampleSource>>& sources() const { return sources_; }

 private:
  std::filesystem::path out_dir_;
  std::vector<int> cores_;
  int rank_ = 0;
  int sample_ms_ = 250;
  int trace_ms_ = 1000;
  std::optional<int> serve_port_;
  std::string bind_ = "127.0.0.1";
  std::string token_;
  const Journal* journal_ = nullptr;
  nlohmann::json meta_ = nlohmann::json::object();
  std::vector<std::shared_ptr<SampleSource>> sources_;
};

class RunDashboard : public EventSink {
 public:
  // Starts sampling (and serving). Throws Error for a bad option, an
  // output folder it cannot write, or an address it cannot listen on.
  explicit RunDashboard(DashboardOptions options);
  // Stops the server and the sampler. Without finish(), it still leaves a
  // final trace.json (best effort: a destructor does not throw).
  ~RunDashboard() override;
  RunDashboard(const RunDashboard&) = delete;
  RunDashboard& operator=(const RunDashboard&) = delete;

  // The port the live view listens on; 0 without one.
  int port() const;
  // "http://127.0.0.1:PORT/", or "" without a server.
  std::string url() const;

  void on_run_start(const RunStart& start) override;
  void on_jobs_added(const RunStart& added) override;
  void on_event(const JobEvent& event) override;
  void on_run_end(const RunSummary& summary) override;

  // Stops sampling and writes the final trace.json and report.html (with
  // `summary`'s records). The live view stays up, showing the finished run,
  // until the dashboard is destroyed. Call it once, after runner.run().
  void finish(const RunSummary& summary);

  // What GET /api/status and GET /metrics answer.
  nlohmann::json status() const;
  std::string metrics() const;

  // CPU time the sampler thread has used, its file writes included.
  double sampler_cpu_seconds() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace packtrain::dashboard
