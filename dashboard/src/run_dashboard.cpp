#include <packtrain/dashboard/run_dashboard.hpp>

#include <packtrain/dashboard/live_server.hpp>
#include <packtrain/dashboard/live_status.hpp>
#include <packtrain/dashboard/rebuild.hpp>
#include <packtrain/scheduler/mutex.hpp>
#include <packtrain/dashboard/report.hpp>
#include <packtrain/dashboard/run_files.hpp>
#include <packtrain/dashboard/trace.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/job_runner.hpp>
#include <packtrain/scheduler/resources.hpp>
#include <packtrain/scheduler/results.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

namespace packtrain::dashboard {
namespace {

// A rewrite of trace.json may take at most this fraction of the time
// between rewrites: a very long run's trace is rewritten less often rather
// than costing more than 1% of a core.
constexpr double kTraceWriteShare = 0.01;

SweepMeta resolve_sweep(const DashboardOptions& options) {
  nlohmann::json meta = nlohmann::json::object();
  if (options.journal())
    for (const auto& key : SweepMeta::keys())
      if (auto value = options.journal()->meta(key)) meta[key] = *value;
  if (options.meta().is_object())
    for (const auto& [key, value] : options.meta().items()) meta[key] = value;
  try {
    return SweepMeta::from_json(meta);
  } catch (const Error&) {
    // Meta a sweep wrote badly costs the report its sweep summary, not the run.
    SweepMeta plain;
    if (meta.contains("command") && meta["command"].is_string()) plain.command = meta["command"].get<std::string>();
    return plain;
  }
}

}  // namespace

struct RunDashboard::Impl {
  explicit Impl(DashboardOptions opts);
  void tick(const Sample& sample) PACKTRAIN_EXCLUDES(mutex_, writer_mutex_);
  // Adds attempts that ended to the trace and rewrites trace.json.
  void write_trace(bool final) PACKTRAIN_REQUIRES(writer_mutex_) PACKTRAIN_EXCLUDES(mutex_);
  // Ends the slices of the cores lent to `job_id` that `keep` rejects.
  template <typename Keep>
  void close_lent(const std::string& job_id, double end, Keep keep) PACKTRAIN_REQUIRES(mutex_) {
    const std::string prefix = job_id + "#";
    for (auto it = open.lower_bound(prefix); it != open.end() && it->first.starts_with(prefix);) {
      if (keep(it->second.first.cores.front())) {
        ++it;
        continue;
      }
      auto [span, args] = std::move(it->second);
      span.status = JobStatus::done;
      span.end = std::max(span.start, end);
      if (!lent_csv.is_open() && !options.out_dir().empty()) {
        // Opened at the first lent core: most runs lend none. A folder that
        // cannot take it costs the rebuilt trace its lent slices, not the run.
        try {
          lent_csv = AppendFile(options.out_dir() / "lent.csv");
          if (lent_csv.empty_at_open()) lent_csv.append(kAttemptsHeader);
        } catch (const Error&) {
        }
      }
      if (lent_csv.is_open()) lent_csv.append(attempt_row(span));
      ended.emplace_back(std::move(span), std::move(args));
      it = open.erase(it);
    }
  }

  const DashboardOptions options;
  const std::vector<int> cores;
  const double t0;  // the trace's time zero (unix seconds)
  const std::filesystem::path trace_path;

  // Shared by the event, sampler and server threads.
  mutable Mutex mutex_;
  LiveStatus live PACKTRAIN_GUARDED_BY(mutex_);
  std::map<std::string, nlohmann::json> specs PACKTRAIN_GUARDED_BY(mutex_);     // job id -> spec (from the journal)
  std::map<std::string, std::pair<AttemptSpan, nlohmann::json>> open PACKTRAIN_GUARDED_BY(mutex_);  // running, by job id
  std::vector<std::pair<AttemptSpan, nlohmann::json>> ended PACKTRAIN_GUARDED_BY(mutex_);  // not yet in the trace
  double origin PACKTRAIN_GUARDED_BY(mutex_) = INFINITY;  // the runner's time zero: JobEvent::time counts from it
  AppendFile attempts_csv PACKTRAIN_GUARDED_BY(mutex_);
  AppendFile lent_csv PACKTRAIN_GUARDED_BY(mutex_);  // cores lent to elastic jobs, as attempts.csv rows
  AppendFile steps_csv PACKTRAIN_GUARDED_BY(mutex_);  // a gang's steps (opened at the first)
  std::vector<std::pair<StepSlice, std::string>> steps PACKTRAIN_GUARDED_BY(mutex_);  // with the job's name; not yet in the trace
  bool finished PACKTRAIN_GUARDED_BY(mutex_) = false;

  // The files the sampler thread writes while the run goes; finish() after
  // it stopped. Lock order: writer_mutex_, then mutex_.
  Mutex writer_mutex_;
  TraceBuilder trace PACKTRAIN_GUARDED_BY(writer_mutex_);
  UtilizationWriter utilization_csv PACKTRAIN_GUARDED_BY(writer_mutex_);
  std::vector<Series> series PACKTRAIN_GUARDED_BY(writer_mutex_);
  std::chrono::steady_clock::time_point next_trace_write PACKTRAIN_GUARDED_BY(writer_mutex_);

  // Destroyed first (reverse order): the server, then the sampler, before
  // the state their threads use.
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<LiveServer> server;
};

RunDashboard::Impl::Impl(DashboardOptions opts)
    : options(std::move(opts)),
      cores(options.cores().empty() ? affinity_cores() : options.cores()),
      t0(unix_now()),
      trace_path(options.out_dir().empty() ? std::filesystem::path() : options.out_dir() / "trace.json"),
      live(options.rank(), cores, options.sample_ms(),
           std::clamp(60000 / std::max(1, options.sample_ms()), 30, 240)),  // about a minute of history
      trace(options.rank(), t0) {
  if (options.trace_ms() < 10) throw Error("trace interval " + std::to_string(options.trace_ms()) + " ms is too short");
  std::vector<std::shared_ptr<SampleSource>> sources = {std::make_shared<CpuSource>(cores), std::make_shared<MemorySource>()};
  for (const auto& s : options.sources()) sources.push_back(s);
  sampler = std::make_unique<Sampler>(std::move(sources), options.sample_ms(), [this](const Sample& s) { tick(s); });
  trace.add_cores(cores);
  series = sampler->series();

  // The server first: a port in use fails before any file is touched.
  if (options.serve_port())
    server = std::make_unique<LiveServer>(options.bind(), *options.serve_port(),
                                          LiveServer::Content{
                                              .status_json = [this] {
                                                MutexLock lock(mutex_);
                                                return live.status_json(unix_now()).dump(-1, ' ', false,
                                                                                         nlohmann::json::error_handler_t::replace);
                                              },
                                              .metrics_text = [this] {
                                                const double cpu = sampler->cpu_seconds();
                                                MutexLock lock(mutex_);
                                                return live.metrics_text(unix_now(), cpu);
                                              }},
                                          options.token());
  if (!options.out_dir().empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options.out_dir(), ec);
    if (ec) throw Error("dashboard: cannot create " + options.out_dir().string() + ": " + ec.message());
    attempts_csv = AppendFile(options.out_dir() / "attempts.csv");
    if (attempts_csv.empty_at_open()) attempts_csv.append(kAttemptsHeader);
    utilization_csv = UtilizationWriter(options.out_dir() / "utilization.csv", series);
  }
  next_trace_write = std::chrono::steady_clock::now() + std::chrono::milliseconds(options.trace_ms());
  sampler->start();
}

void RunDashboard::Impl::tick(const Sample& sample) {
  MutexLock writer(writer_mutex_);
  if (utilization_csv.is_open()) utilization_csv.append(sample);
  {
    MutexLock lock(mutex_);
    live.sample(series, sample);
    if (trace_path.empty()) {
      ended.clear();  // no trace to write them to
      steps.clear();
      return;
    }
  }
  trace.add_sample(series, sample);
  if (std::chrono::steady_clock::now() >= next_trace_write) write_trace(false);
}

void RunDashboard::Impl::write_trace(bool final) {
  std::vector<std::pair<AttemptSpan, nlohmann::json>> done, running;
  std::vector<std::pair<StepSlice, std::string>> new_steps;
  {
    MutexLock lock(mutex_);
    done.swap(ended);
    new_steps.swap(steps);
    for (const auto& [id, attempt] : open) running.push_back(attempt);
  }
  for (const auto& [span, args] : done) trace.add_attempt(span, args);
  for (const auto& [step, name] : new_steps) trace.add_step(step, name);
  if (trace_path.empty()) return;
  const auto begin = std::chrono::steady_clock::now();
  try {
    write_file_atomically(trace_path, trace.text(running, unix_now()));
  } catch (const Error&) {
    if (final) throw;
    // While the run goes, a full disk costs the live trace, not the run.
  }
  const auto took = std::chrono::steady_clock::now() - begin;
  const auto interval = std::max<std::chrono::steady_clock::duration>(
      std::chrono::milliseconds(options.trace_ms()),
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(took / kTraceWriteShare));
  next_trace_write = std::chrono::steady_clock::now() + interval;
}

RunDashboard::RunDashboard(DashboardOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

RunDashboard::~RunDashboard() {
  impl_->server.reset();
  bool finished;
  {
    MutexLock lock(impl_->mutex_);
    finished = impl_->finished;
  }
  impl_->sampler->stop();
  if (!finished) {
    try {
      MutexLock writer(impl_->writer_mutex_);
      impl_->write_trace(true);
    } catch (...) {
      // A destructor does not throw; the last trace written stays.
    }
  }
}

int RunDashboard::port() const { return impl_->server ? impl_->server->port() : 0; }
std::string RunDashboard::url() const { return impl_->server ? impl_->server->url() : ""; }

namespace {

// Every job's spec in the journal, by id (none without a journal).
std::map<std::string, nlohmann::json> journal_specs(const Journal* journal) {
  std::map<std::string, nlohmann::json> specs;
  if (journal)
    for (auto& r : journal->records()) specs[r.id] = std::move(r.spec);
  return specs;
}

}  // namespace

void RunDashboard::on_run_start(const RunStart& start) {
  // Read outside the lock: the journal has its own (the runner has queued
  // every job in it before this call).
  auto specs = journal_specs(impl_->options.journal());
  const SweepMeta sweep = resolve_sweep(impl_->options);
  const double now = unix_now();
  MutexLock lock(impl_->mutex_);
  impl_->specs = std::move(specs);
  impl_->live.set_command(sweep.command);
  impl_->live.set_metric(sweep.metric);
  impl_->live.run_start(start, now);
  impl_->origin = now;
}

void RunDashboard::on_jobs_added(const RunStart& added) {
  // Their specs, from the journal (the runner has queued them in it first).
  auto specs = journal_specs(impl_->options.journal());
  MutexLock lock(impl_->mutex_);
  for (auto& [id, spec] : specs) impl_->specs[id] = std::move(spec);
  impl_->live.jobs_added(added);
}

void RunDashboard::on_event(const JobEvent& e) {
  const double now = unix_now();
  auto& d = *impl_;
  MutexLock lock(d.mutex_);
  // JobEvent::time counts from the runner's start; its unix time is the
  // earliest estimate (each event arrives a little after its time).
  d.origin = std::min(d.origin, now - e.time);
  d.live.event(e, now);
  const auto spec_it = d.specs.find(e.job_id);
  const nlohmann::json spec = spec_it == d.specs.end() ? nlohmann::json::object() : spec_it->second;
  switch (e.kind) {
    case EventKind::started: {
      AttemptSpan span{.job_id = e.job_id, .name = e.name, .attempt = e.attempt, .status = JobStatus::running,
                       .start = d.origin + e.time, .cores = e.cores, .rank = e.rank};
      nlohmann::json args = slice_args(span, spec, nlohmann::json::object());
      d.open[e.job_id] = {std::move(span), std::move(args)};
      return;
    }
    case EventKind::progress: {
      // A gang's steps: to steps.csv (for `packtrain report`) and the trace.
      auto new_steps = steps_in_progress(e.job_id, e.attempt, e.data);
      if (new_steps.empty() || d.trace_path.empty()) return;
      if (!d.steps_csv.is_open()) {
        // A folder that cannot take it costs the rebuilt trace its steps, not the run.
        try {
          d.steps_csv = AppendFile(d.options.out_dir() / "steps.csv");
          if (d.steps_csv.empty_at_open()) d.steps_csv.append(kStepsHeader);
        } catch (const Error&) {
        }
      }
      std::string rows;
      for (auto& step : new_steps) {
        rows += step_row(step);
        d.steps.emplace_back(std::move(step), e.name);
      }
      if (d.steps_csv.is_open()) d.steps_csv.append(rows);
      return;
    }
    case EventKind::resized: {
      // An elastic job's lent cores: one slice per lent core, from the
      // moment it was lent to the moment it went back (keyed "id#core").
      const auto own = d.open.find(e.job_id);
      if (own == d.open.end()) return;
      const auto& own_cores = own->second.first.cores;
      const auto now_s = std::max(own->second.first.start, d.origin + e.time);
      d.close_lent(e.job_id, now_s, [&](int core) {
        return std::find(e.cores.begin(), e.cores.end(), core) != e.cores.end();
      });
      for (int c : e.cores) {
        if (std::find(own_cores.begin(), own_cores.end(), c) != own_cores.end()) continue;
        const std::string key = e.job_id + "#" + std::to_string(c);
        if (d.open.count(key)) continue;
        AttemptSpan span{.job_id = e.job_id, .name = e.name + " (lent)", .attempt = e.attempt,
                         .status = JobStatus::running, .start = now_s, .cores = {c}, .rank = e.rank};
        nlohmann::json args = slice_args(span, spec, nlohmann::json::object());
        args["lent"] = true;
        d.open[key] = {std::move(span), std::move(args)};
      }
      return;
    }
    case EventKind::finished:
    case EventKind::failed:
    case EventKind::retried:
    case EventKind::cancelled: {
      d.close_lent(e.job_id, d.origin + e.time, [](int) { return false; });
      const auto it = d.open.find(e.job_id);
      if (it == d.open.end()) return;
      AttemptSpan span = std::move(it->second.first);
      d.open.erase(it);
      // The attempt's own status: a retried attempt failed.
      span.status = e.kind == EventKind::failed || e.kind == EventKind::retried ? JobStatus::failed : e.status;
      span.end = std::max(span.start, d.origin + e.time);
      nlohmann::json args = slice_args(span, spec, e.data);
      if (d.attempts_csv.is_open()) d.attempts_csv.append(attempt_row(span));
      d.ended.emplace_back(std::move(span), std::move(args));
      return;
    }
    default:
      return;
  }
}

void RunDashboard::on_run_end(const RunSummary&) {
  MutexLock lock(impl_->mutex_);
  impl_->live.run_end(unix_now());
}

void RunDashboard::finish(const RunSummary& summary) {
  auto& d = *impl_;
  {
    MutexLock lock(d.mutex_);
    if (d.finished) return;
    d.finished = true;
    d.live.run_end(unix_now());  // in case the runner's on_run_end did not reach us
  }
  d.sampler->stop();  // its last sample is in utilization.csv when this returns
  {
    MutexLock writer(d.writer_mutex_);
    d.write_trace(true);
  }
  if (d.options.out_dir().empty()) return;
  if (d.options.journal()) {
    // From the journal, exactly as `packtrain report DIR` rebuilds it.
    write_report(read_run(d.options.out_dir(), *d.options.journal()));
    return;
  }
  const SweepMeta sweep = resolve_sweep(d.options);
  const nlohmann::json totals = {{"command", sweep.command},      {"cores", d.cores.size()},
                                 {"done", summary.done},          {"failed", summary.failed},
                                 {"diverged", summary.diverged},  {"skipped", summary.skipped},
                                 {"cancelled", summary.cancelled}, {"resumed", summary.resumed},
                                 {"makespan_s", summary.makespan_s}, {"job_seconds", summary.job_seconds},
                                 {"interrupted", summary.interrupted}};
  auto input = report_input(d.options.out_dir(), summary.jobs, sweep, totals);
  input.rank = d.options.rank();
  for (int c : d.cores)
    if (std::find(input.cores.begin(), input.cores.end(), c) == input.cores.end()) input.cores.push_back(c);
  std::sort(input.cores.begin(), input.cores.end());
  write_file_atomically(d.options.out_dir() / "report.html", render_report_html(input));
}

nlohmann::json RunDashboard::status() const {
  MutexLock lock(impl_->mutex_);
  return impl_->live.status_json(unix_now());
}

std::string RunDashboard::metrics() const {
  const double cpu = impl_->sampler->cpu_seconds();
  MutexLock lock(impl_->mutex_);
  return impl_->live.metrics_text(unix_now(), cpu);
}

double RunDashboard::sampler_cpu_seconds() const { return impl_->sampler->cpu_seconds(); }

}  // namespace packtrain::dashboard
