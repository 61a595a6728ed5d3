#include <packtrain/scheduler/console_sink.hpp>

#include <packtrain/scheduler/job_runner.hpp>

#include <unistd.h>

#include <cmath>

namespace packtrain {

std::string format_duration(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof(buf), "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof(buf), "%ldm%02lds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof(buf), "%lds", s);
  return buf;
}

std::string format_speedup(const RunSummary& run, int cores, int ranks) {
  const auto plural = [](long n, const char* word) { return std::to_string(n) + " " + word + (n == 1 ? "" : "s"); };
  const long jobs = static_cast<long>(run.jobs.size());
  if (jobs == 0) return "nothing to run: this share of the sweep holds none of its jobs";
  if (run.job_seconds <= 0 || run.makespan_s <= 0) {
    if (run.resumed == jobs) return "nothing to run: all " + plural(jobs, "job") + " were done before (--resume)";
    if (run.crashed > 0 && run.resumed + run.crashed == jobs)
      return "nothing to run: " + std::to_string(run.resumed) + " of " + plural(jobs, "job") + " were done before and " +
             std::to_string(run.crashed) + " crashed twice (never run again)";
    if (run.interrupted) return "interrupted before any job ended";
    return "no job ran to its end in this run";
  }
  char line[256];
  std::snprintf(line, sizeof(line), "makespan %s, jobs' own time %s: %.2fx the speed of one job at a time on %s%s",
                format_duration(run.makespan_s).c_str(), format_duration(run.job_seconds).c_str(),
                run.job_seconds / run.makespan_s, plural(cores, "core").c_str(),
                ranks > 1 ? (" (" + std::to_string(ranks) + " ranks)").c_str() : "");
  // Jobs on cores of their own cannot together go faster than the cores
  // (5% for clocks): more means they shared cores with other work, and
  // their own times counted its waiting as theirs. Say so, not a speedup.
  if (run.job_seconds / run.makespan_s > cores * 1.05)
    return std::string(line) + ": more than " + plural(cores, "core") +
           " can give, so the cores were shared with other work (other processes, or ranks given the same cores)";
  return line;
}

ConsoleSink::ConsoleSink(ConsoleOptions options) : options_(options) {
  live_ = options_.live < 0 ? isatty(fileno(options_.out)) != 0 : options_.live == 1;
}

void ConsoleSink::on_run_start(const RunStart& start) {
  total_ = start.total_jobs;
  done_ = start.already_done + start.already_crashed;
  total_cost_ = start.total_cost;
  if (options_.quiet) return;
  std::fprintf(options_.out, "packtrain: %d job(s) on %zu core(s)", total_, start.cores.size());
  if (start.already_done > 0) std::fprintf(options_.out, ", %d already done (resumed)", start.already_done);
  if (start.already_crashed > 0)
    std::fprintf(options_.out, ", %d crashed before (not run again)", start.already_crashed);
  std::fprintf(options_.out, "\n");
  std::fflush(options_.out);
}

void ConsoleSink::on_jobs_added(const RunStart& added) {
  total_ += added.total_jobs;
  done_ += added.already_done + added.already_crashed;
  total_cost_ += added.total_cost;
  if (options_.quiet) return;
  if (live_) std::fprintf(options_.out, "\r\033[K");
  std::fprintf(options_.out, "packtrain: %d more job(s)", added.total_jobs);
  if (added.already_done > 0) std::fprintf(options_.out, ", %d already done (resumed)", added.already_done);
  std::fprintf(options_.out, "\n");
  std::fflush(options_.out);
}

std::string ConsoleSink::eta() const {
  if (done_cost_ <= 0 || last_time_ <= 0) return "?";
  const double rate = done_cost_ / last_time_;  // cost per second so far
  return format_duration((total_cost_ - done_cost_) / rate);
}

void ConsoleSink::draw() {
  std::fprintf(options_.out, "\r\033[K[%d/%d] running %d  failed %d  ETA %s%s%s", done_, total_, running_, failed_,
               eta().c_str(), last_.empty() ? "" : "  last: ", last_.c_str());
  std::fflush(options_.out);
}

void ConsoleSink::on_event(const JobEvent& e) {
  last_time_ = std::max(last_time_, e.time);
  std::string line;
  switch (e.kind) {
    case EventKind::queued:
    case EventKind::progress:
    case EventKind::resized:
      return;
    case EventKind::started: {
      ++running_;
      std::string cores;
      for (int c : e.cores) cores += (cores.empty() ? "" : ",") + std::to_string(c);
      line = "started  " + e.name + " on core " + cores + (e.attempt > 1 ? " (attempt " + std::to_string(e.attempt) + ")" : "");
      break;
    }
    case EventKind::finished:
    case EventKind::failed:
    case EventKind::cancelled:
    case EventKind::retried: {
      --running_;
      if (e.kind == EventKind::retried) {
        line = "retry    " + e.name + " after: " + e.message;
        break;
      }
      ++done_;
      done_cost_ += e.cost;
      if (e.kind == EventKind::failed) ++failed_;
      char metric[64] = "";
      if (e.data.contains(options_.metric) && e.data[options_.metric].is_number())
        std::snprintf(metric, sizeof(metric), " %s %.4f", options_.metric.c_str(), e.data[options_.metric].get<double>());
      last_ = e.name + " " + std::string(to_string(e.status)) + metric;
      line = std::string(e.kind == EventKind::failed ? "failed   " : "finished ") + e.name + " " +
             std::string(to_string(e.status)) + metric + (e.message.empty() ? "" : ": " + e.message);
      break;
    }
    case EventKind::skipped:
      ++done_;
      ++failed_;
      line = "skipped  " + e.name + ": " + e.message;
      break;
  }
  if (options_.quiet) return;
  if (live_) {
    // Failures are worth a line of their own above the progress line.
    if (e.kind == EventKind::failed || e.kind == EventKind::skipped || e.kind == EventKind::retried)
      std::fprintf(options_.out, "\r\033[K%s\n", line.c_str());
    draw();
  } else {
    std::fprintf(options_.out, "[%d/%d %s] %s\n", done_, total_, format_duration(e.time).c_str(), line.c_str());
    std::fflush(options_.out);
  }
}

void ConsoleSink::on_run_end(const RunSummary& s) {
  if (options_.quiet) return;
  if (live_) std::fprintf(options_.out, "\r\033[K");
  const std::string crashed = s.crashed > 0 ? ", " + std::to_string(s.crashed) + " crashed" : "";
  std::fprintf(options_.out, "packtrain: %d done, %d failed, %d diverged, %d skipped, %d cancelled%s in %s%s\n", s.done,
               s.failed, s.diverged, s.skipped, s.cancelled, crashed.c_str(), format_duration(s.makespan_s).c_str(),
               s.preempted     ? " (preempted: --resume goes on from each job's checkpoint)"
               : s.interrupted ? " (interrupted: --resume finishes the rest)"
                               : "");
  if (s.crashed > 0) {
    // By name: the jobs --resume will never run again (DESIGN.md decision 13).
    std::string names;
    for (const auto& r : s.jobs) {
      if (r.status != JobStatus::crashed) continue;
      const auto signal = r.metrics.is_object() && r.metrics.contains("signal") && r.metrics["signal"].is_string()
                              ? " (" + r.metrics["signal"].get<std::string>() + ")"
                              : std::string();
      names += (names.empty() ? "" : ", ") + r.name + signal;
    }
    std::fprintf(options_.out, "packtrain: crashed twice, not run again: %s\n", names.c_str());
  }
  std::fflush(options_.out);
}

}  // namespace packtrain
