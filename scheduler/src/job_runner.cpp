#include <packtrain/scheduler/job_runner.hpp>

#include <packtrain/scheduler/crash_report.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/placement.hpp>
#include <packtrain/scheduler/thread_budget.hpp>

#include "event_queue.hpp"

#include <cmath>
#include <cstdio>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>

namespace packtrain {

// The helper of a running job and the cores it runs on (its own cores
// beyond the first, and cores lent to it). Lives in helpers_ until every
// lease has ended: the lease closures may run after Job::run has returned.
struct JobRunner::Helpers {
  struct Lease {
    std::shared_ptr<CoreLease> lease;
    int worker;
    bool own;                     // one of the job's own cores (kept to the end)
  };
  CoreHelper helper;
  std::vector<Lease> leases;
  bool closed = false;            // Job::run returned: no new helper calls
  std::string error;              // the first exception of a helper
};

int RunSummary::exit_code() const {
  if (!journal_error.empty()) return 1;
  if (interrupted) return preempted ? 143 : 130;
  return (failed + diverged + skipped + cancelled + crashed) > 0 ? 1 : 0;
}

JobRunner::JobRunner(Executor& executor, NodeResources node)
    : executor_(executor), node_(std::move(node)), events_(std::make_unique<EventQueue>()) {
  PACKTRAIN_CHECK(executor_.worker_count() == node_.core_count(), "one executor worker per node core");
}

JobRunner::~JobRunner() = default;

std::string JobRunner::add(Job job) {
  {
    MutexLock lock(mutex_);
    PACKTRAIN_CHECK(!active_, "JobRunner::add while the run goes (a job's Job::then adds jobs then)");
  }
  if (!job.run) throw Error("job '" + job.name + "' has no function to run");
  const std::string id = job.id();
  if (index_.count(id))
    throw Error("job '" + job.name + "' has the same spec (id " + id + ") as job '" + jobs_[index_[id]].name + "'");
  index_[id] = static_cast<int>(jobs_.size());
  jobs_.push_back(std::move(job));
  return id;
}

void JobRunner::check_fits(const Job& job) const {
  if (!job.run) throw Error("job '" + job.name + "' has no function to run");
  if (job.cores < 1) throw Error("job '" + job.name + "' asks for " + std::to_string(job.cores) + " cores");
  if (job.max_cores != 0 && job.max_cores < job.cores)
    throw Error("job '" + job.name + "' asks for at most " + std::to_string(job.max_cores) + " cores but at least " +
                std::to_string(job.cores));
  if (job.max_cores > node_.core_count())
    throw Error("job '" + job.name + "' asks for up to " + std::to_string(job.max_cores) +
                " cores but this node has " + std::to_string(node_.core_count()) + " usable");
  if (job.cores > node_.core_count())
    throw Error("job '" + job.name + "' needs " + std::to_string(job.cores) + " cores but this node has " +
                std::to_string(node_.core_count()) + " usable");
  if (job.gpus < 0 || job.gpus > 1)
    throw Error("job '" + job.name + "' asks for " + std::to_string(job.gpus) + " GPU slots (a job takes 0 or 1)");
  if (job.gpus > node_.gpu_count())
    throw Error("job '" + job.name + "' needs " + std::to_string(job.gpus) + " GPU(s) but this node has " +
                std::to_string(node_.gpu_count()));
  if (job.gpus > 0 && job.max_cores != 0)
    throw Error("job '" + job.name + "' is elastic and asks for a GPU slot: a job in a slot has fixed cores");
  if (job.gpus > 0 && job.gpu_memory_mb > 0) {
    std::uint64_t most = 0;
    bool accounted = true;
    for (const auto& g : node_.gpus) {
      most = std::max(most, g.memory_mb);
      accounted = accounted && g.memory_mb > 0;
    }
    if (accounted && job.gpu_memory_mb > most)
      throw Error("job '" + job.name + "' needs " + std::to_string(job.gpu_memory_mb) +
                  " MiB of GPU memory but this node's GPUs have at most " + std::to_string(most) + " MiB");
  }
  if (job.memory_mb > node_.memory_mb)
    throw Error("job '" + job.name + "' needs " + std::to_string(job.memory_mb) + " MiB but this node has " +
                std::to_string(node_.memory_mb) + " MiB");
}

void JobRunner::validate() const {
  for (const auto& job : jobs_) {
    check_fits(job);
    for (const auto& dep : job.after)
      if (!index_.count(dep)) throw Error("job '" + job.name + "' depends on unknown job id " + dep);
    for (const auto& f : job.follows)
      if (!index_.count(f)) throw Error("job '" + job.name + "' follows unknown job id " + f);
  }
  // Cycle check: depth-first search with colours.
  std::vector<int> colour(jobs_.size(), 0);  // 0 new, 1 on the path, 2 done
  std::vector<int> path;
  std::function<void(int)> visit = [&](int j) {
    colour[j] = 1;
    path.push_back(j);
    std::vector<std::string> before = jobs_[j].after;  // what it waits for: dependencies and jobs followed
    before.insert(before.end(), jobs_[j].follows.begin(), jobs_[j].follows.end());
    for (const auto& dep : before) {
      const int d = index_.at(dep);
      if (colour[d] == 1) {
        std::string cycle;
        auto from = std::find(path.begin(), path.end(), d);
        for (auto it = from; it != path.end(); ++it) cycle += jobs_[*it].name + " -> ";
        throw Error("dependency cycle: " + cycle + jobs_[d].name);
      }
      if (colour[d] == 0) visit(d);
    }
    path.pop_back();
    colour[j] = 2;
  };
  for (std::size_t j = 0; j < jobs_.size(); ++j)
    if (colour[j] == 0) visit(static_cast<int>(j));
}

double JobRunner::now() const { return unix_now() - start_time_; }

void JobRunner::emit(JobEvent event) {
  events_->push([sinks = &options_->sinks, event = std::move(event)] {
    for (auto* sink : *sinks) sink->on_event(event);
  });
}

void JobRunner::write_journal(std::function<void(Journal&)> write) {
  auto* journal = options_->journal;
  if (!journal) return;
  events_->push([this, journal, write = std::move(write)] {
    if (!journal_error_.empty()) return;  // the journal keeps what it has; nothing half-written after
    try {
      write(*journal);
    } catch (const std::exception& e) {
      // A full disk or an I/O error: place nothing more whose result could
      // not be kept, and stop the running jobs (Ctrl-C's path).
      journal_error_ = e.what();
      request_stop();
    }
  });
}

void JobRunner::request_preempt() {
  // Release: a job that sees the stop and then reads the flag sees it set.
  preempt_.store(true, std::memory_order_release);
  request_stop();
}

void JobRunner::request_stop() {
  stop_.request_stop();  // the jobs' stop callbacks run here, before the lock
  MutexLock lock(mutex_);
  if (active_) finish_if_over();
}

void JobRunner::finish_if_over() {
  if (over_) return;
  if (graph_.all_ended() || (stop_.stop_requested() && graph_.running() == 0)) {
    over_ = true;
    events_->close();
  }
}

RunSummary JobRunner::run(const RunOptions& options) {
  validate();
  for (const auto& job : jobs_)
    if (job.then && (options.sharing || !options.already_done.empty() || options.rank != 0))
      throw Error("job '" + job.name + "' adds jobs as it ends (Job::then), which the other processes sharing the "
                  "run's jobs could not know");
  if (options.journal && options.resume) add_again_what_then_added(*options.journal);
  const int n = static_cast<int>(jobs_.size());
  // Resume: journal reads, before the lock (a work-sharing thread may call
  // give_away()/take()/ended_elsewhere() at any moment).
  std::vector<JobRecord> records(n);
  std::vector<JobGraph::Node> nodes(n);
  for (int j = 0; j < n; ++j) {
    auto& r = records[j];
    const auto& job = jobs_[j];
    r.id = job.id();
    r.name = job.name;
    r.spec = job.spec;
    r.rank = options.rank;
    if (options.journal && options.resume) {
      if (auto prior = options.journal->find(r.id); prior && prior->status == JobStatus::done) {
        r = *prior;
        nodes[j].done_before = true;
      } else if (prior && prior->status == JobStatus::crashed) {
        r = *prior;  // its signal and crashes stay recorded
        r.name = job.name;
        r.spec = job.spec;
        nodes[j].crashed_before = true;
      } else if (prior) {
        r.attempts = prior->attempts;  // cancelled, failed or killed while running: numbering goes on
      }
    }
    if (std::find(options.already_done.begin(), options.already_done.end(), r.id) != options.already_done.end()) {
      r.status = JobStatus::done;
      nodes[j].done_before = true;
    }
    for (const auto& dep : job.after) nodes[j].after.push_back(index_.at(dep));
    for (const auto& f : job.follows) nodes[j].follows.push_back(index_.at(f));
    nodes[j].pinned = !job.gang_ranks.empty();
    nodes[j].cost = job.cost;
    nodes[j].retries = job.retries;
  }

  options_ = &options;
  start_time_ = unix_now();
  events_->open();
  {
    MutexLock lock(mutex_);
    RunStart start_info;
    start_info.total_jobs = n;
    start_info.cores = node_.cores;
    summary_ = RunSummary{};
    for (int j = 0; j < n; ++j) {
      if (nodes[j].done_before) {
        ++summary_.resumed;
        continue;
      }
      write_journal([id = records[j].id, name = jobs_[j].name, spec = jobs_[j].spec](Journal& journal) {
        journal.add_queued(id, name, spec);  // a crashed job's row too: it keeps its status, gets its spec
      });
      if (nodes[j].crashed_before) {
        ++summary_.crashed;
        continue;
      }
      if (options.sharing) nodes[j].owned = options.sharing->starts_with(j);
      start_info.total_cost += jobs_[j].cost;
    }
    start_info.already_done = summary_.resumed;
    start_info.already_crashed = summary_.crashed;
    events_->push([sinks = &options.sinks, start_info] {
      for (auto* sink : *sinks) sink->on_run_start(start_info);
    });
    for (int j = 0; j < n; ++j)
      if (!nodes[j].done_before && !nodes[j].crashed_before)
        emit({.kind = EventKind::queued, .job_id = records[j].id, .name = jobs_[j].name, .time = now(),
              .rank = options.rank});

    earlier_attempts_.assign(n, 0);
    for (int j = 0; j < n; ++j)
      if (!nodes[j].done_before) earlier_attempts_[j] = records[j].attempts;
    records_ = std::move(records);
    graph_ = JobGraph(std::move(nodes));
    // The dependents of jobs that crashed before never run: record them skipped.
    if (!graph_.skipped_at_start().empty()) {
      JobGraph::Ended at_start;
      at_start.skipped = graph_.skipped_at_start();
      record_ended(at_start);
    }
    ledger_ = ResourceLedger(node_.core_count(), node_.gpus, node_.memory_mb);
    helpers_.clear();
    moved_to_cpu_.clear();
    gpu_slots_at_start_.clear();
    active_ = true;
    over_ = false;
    // Ends reported before run() began, applied once the graph is built.
    for (const auto& [j, record] : early_ended_) apply_remote_end(j, record);
    early_ended_.clear();
    if (options.sharing && graph_.ready_count() > 0) options.sharing->work_available();
    dispatch();
    finish_if_over();
  }

  // This thread delivers what the run tells the journal and the sinks,
  // until the run's last event.
  journal_error_.clear();
  const std::exception_ptr delivery_error = events_->deliver_until_closed();

  RunSummary summary;
  {
    MutexLock lock(mutex_);
    // Stopped with work undone: jobs never started, or jobs that stopped
    // early (cancelled) when asked to.
    summary_.interrupted = stop_.stop_requested() && (!graph_.all_ended() || summary_.cancelled > 0);
    summary_.preempted = summary_.interrupted && preempt_.load(std::memory_order_acquire);
    summary_.journal_error = journal_error_;
    summary_.makespan_s = now();
    summary_.peak_cores_in_use = ledger_.peak_cores_in_use();
    summary_.jobs = records_;
    summary = summary_;
    active_ = false;
    early_ended_.clear();
  }
  for (auto* sink : options.sinks) sink->on_run_end(summary);
  options_ = nullptr;
  if (delivery_error) std::rethrow_exception(delivery_error);
  return summary;
}

void JobRunner::dispatch() {
  if (stop_.stop_requested()) return;
  // Nothing to decide while every core is held and none is lent.
  if (ledger_.free_cores() > 0 || ledger_.lent() > 0) {
    std::vector<ReadyJob> ready;
    for (int j : graph_.ready()) {
      const auto& job = jobs_[j];
      ready.push_back({.job = j, .demand = demand_of(j), .cost = job.cost});
    }
    for (auto& decision : place(ledger_, ready)) {
      switch (decision.kind) {
        case Decision::Kind::start:
          start(decision.job, std::move(decision.workers), decision.gpu);
          break;
        case Decision::Kind::lend:
          lend(decision.job, decision.workers.front(), false);
          break;
        case Decision::Kind::ask_back: {
          const int worker = decision.workers.front();
          ledger_.ask_back(worker);
          // Runs the helper's wake callbacks (CoreLease::return_token) here,
          // under the lock: they only notify a condition.
          for (auto& l : helpers_.at(decision.job).leases)
            if (l.worker == worker && !l.own) l.lease->ask_to_return();
          break;
        }
      }
    }
  }
  const int busy = ledger_.cores_in_use() - ledger_.lent();  // lent cores are spare for work sharing
  if (options_->sharing && !graph_.all_ended() && busy < node_.core_count() && graph_.ready_count() == 0)
    options_->sharing->idle();
}

Demand JobRunner::demand_of(int j) const {
  const auto& job = jobs_[j];
  const bool gpu = job.gpus > 0 && !moved_to_cpu_.count(j);
  return {.cores = job.cores, .gpus = gpu ? job.gpus : 0, .memory_mb = job.memory_mb,
          .gpu_memory_mb = gpu ? job.gpu_memory_mb : 0};
}

void JobRunner::start(int j, std::vector<int> workers, int gpu) {
  const auto& job = jobs_[j];
  const int attempt = earlier_attempts_[j] + graph_.start(j);
  ledger_.hold(j, workers, demand_of(j), gpu);
  std::pair<int, int> seat{-1, -1};
  if (const auto s = ledger_.seat_of(j); s.gpu >= 0) {
    seat = {node_.gpus[s.gpu].index, s.slot};
    gpu_slots_at_start_[j] = ledger_.gpu_slots(s.gpu);
  }
  std::vector<int> cores;
  for (int w : workers) cores.push_back(executor_.cores()[w]);
  auto& r = records_[j];
  r.status = JobStatus::running;
  r.attempts = attempt;
  r.cores = cores;
  r.started_at = unix_now();
  r.ended_at = 0;
  write_journal([id = r.id, attempt, at = r.started_at, cores, rank = options_->rank](Journal& journal) {
    journal.mark_started(id, attempt, at, cores, rank);
  });
  emit({.kind = EventKind::started, .job_id = r.id, .name = job.name, .time = now(), .cores = cores,
        .attempt = attempt, .rank = options_->rank, .status = JobStatus::running, .cost = job.cost});
  for (std::size_t i = 1; i < workers.size(); ++i) executor_.set_reserved(workers[i], true);
  const int first = workers.front();
  std::vector<JobRecord> dependencies;
  for (const auto* ids : {&job.after, &job.follows})
    for (const auto& id : *ids) dependencies.push_back(records_[index_.at(id)]);
  executor_.submit_to(first, [this, &job, j, attempt, workers = std::move(workers), seat,
                              dependencies = std::move(dependencies)]() mutable {
    execute(job, j, attempt, workers, seat, std::move(dependencies));
  });
}

void JobRunner::execute(const Job& job, int j, int attempt, const std::vector<int>& workers,
                        std::pair<int, int> seat, std::vector<JobRecord> dependencies) {
  const std::string id = job.id();
  std::vector<int> cores;
  for (int w : workers) cores.push_back(executor_.cores()[w]);
  if (options_->pin_threads) apply_thread_budget(cores);
  if (options_->thread_budget) options_->thread_budget(static_cast<int>(cores.size()));

  JobContext ctx(id, derive_seed(id, options_->base_seed), attempt, cores, options_->rank, stop_.get_token(),
                 [this, id, name = job.name, attempt](const nlohmann::json& progress) {
                   emit({.kind = EventKind::progress, .job_id = id, .name = name, .time = now(), .attempt = attempt,
                         .rank = options_->rank, .status = JobStatus::running, .data = progress});
                 });
  ctx.set_preempt_flag(&preempt_);
  ctx.set_gpu(seat.first, seat.second);
  ctx.set_dependencies(std::move(dependencies));
  ctx.set_elastic(job.max_cores, [this, j](CoreHelper helper) { register_helper(j, std::move(helper)); });
  // The job's memory, charged by the allocations of its threads (job_memory.hpp).
  auto memory = std::make_shared<JobMemory>(job.memory_mb * (std::uint64_t{1} << 20));
  {
    MutexLock lock(mutex_);
    job_memory_[j] = memory;
  }
  JobOutcome outcome;
  JobStatus status;
  bool out_of_gpu_memory = false;
  try {
    const RunningJobMark mark(id);  // a crash on this thread names this job
    const JobMemoryScope charged(memory);
    outcome = job.run(ctx);
    status = outcome.status;
    if (status != JobStatus::done && status != JobStatus::diverged && status != JobStatus::cancelled)
      throw Error("a job may end done, diverged or cancelled, not " + std::string(to_string(status)));
  } catch (const GpuOutOfMemory& e) {
    status = JobStatus::failed;
    out_of_gpu_memory = seat.first >= 0;
    outcome.message = e.what();
    outcome.message = outcome.message.substr(0, outcome.message.find('\n'));
  } catch (const std::exception& e) {
    status = JobStatus::failed;
    outcome.message = e.what();
    outcome.message = outcome.message.substr(0, outcome.message.find('\n'));
  } catch (...) {
    status = JobStatus::failed;
    outcome.message = "unknown exception";
  }
  if (const std::string error = close_leases(j); !error.empty() && status != JobStatus::failed) {
    status = JobStatus::failed;
    outcome.message = "a helper thread failed: " + error.substr(0, error.find('\n'));
  }
  {
    MutexLock lock(mutex_);
    job_memory_.erase(j);
  }
  constexpr double kMiB = 1024.0 * 1024.0;
  if (status == JobStatus::failed && memory->refused() > 0 &&
      outcome.message.find("over memory") != std::string::npos) {
    // One line, whatever the refused allocation's exception became on its way out.
    char text[200];
    std::snprintf(text, sizeof text,
                  "over memory: the job held up to %.1f MiB of its %llu MiB budget and asked for %.1f MiB more",
                  static_cast<double>(memory->peak()) / kMiB, static_cast<unsigned long long>(job.memory_mb),
                  static_cast<double>(memory->refused()) / kMiB);
    outcome.message = text;
  }
  if (memory->peak() > 0 && outcome.metrics.is_object())
    outcome.metrics["peak_memory_mb"] = std::round(static_cast<double>(memory->peak()) / kMiB * 10.0) / 10.0;
  // Back to this worker's own core and one thread.
  if (options_->pin_threads) apply_thread_budget({executor_.cores()[workers.front()]});
  if (options_->thread_budget) options_->thread_budget(1);
  bool may_retry = true;
  if (status == JobStatus::done && job.then) {
    // The jobs it adds, before its end is recorded: the run goes on for them.
    JobRecord record;
    {
      MutexLock lock(mutex_);
      record = records_[j];
    }
    record.status = JobStatus::done;
    record.ended_at = unix_now();
    record.metrics = outcome.metrics;
    record.message = outcome.message;
    record.artifacts = outcome.artifacts;
    std::string error;
    try {
      const RunningJobMark mark(id);  // a crash in it names this job
      auto more = job.then(record);
      // Their journal rows (a resumed run's), read outside the lock.
      auto priors = journal_rows(more);
      MutexLock lock(mutex_);
      append(std::move(more), std::move(priors));
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "unknown exception";
    }
    if (!error.empty()) {
      status = JobStatus::failed;
      outcome.message = "the jobs after it cannot be made: " + error.substr(0, error.find('\n'));
      may_retry = false;  // training it again would not make them
    }
  }
  complete(j, status, std::move(outcome), may_retry, out_of_gpu_memory);
}

void JobRunner::check_more(const std::vector<Job>& more) const {
  std::map<std::string, int> local;
  for (std::size_t k = 0; k < more.size(); ++k) {
    const auto& job = more[k];
    check_fits(job);
    const auto id = job.id();
    if (index_.count(id) || local.count(id))
      throw Error("job '" + job.name + "' has the same spec (id " + id + ") as a job of the run");
    local[id] = static_cast<int>(k);
  }
  std::vector<int> colour(more.size(), 0);  // among the new jobs only: the others never wait for them
  std::function<void(int)> visit = [&](int k) {
    colour[k] = 1;
    for (const auto* ids : {&more[k].after, &more[k].follows})
      for (const auto& dep : *ids) {
        if (const auto it = local.find(dep); it != local.end()) {
          if (colour[it->second] == 1) throw Error("dependency cycle through job '" + more[k].name + "'");
          if (colour[it->second] == 0) visit(it->second);
        } else if (!index_.count(dep)) {
          throw Error("job '" + more[k].name + "' waits for unknown job id " + dep);
        }
      }
    colour[k] = 2;
  };
  for (std::size_t k = 0; k < more.size(); ++k)
    if (colour[k] == 0) visit(static_cast<int>(k));
}

std::vector<std::optional<JobRecord>> JobRunner::journal_rows(const std::vector<Job>& more) const {
  std::vector<std::optional<JobRecord>> rows(more.size());
  if (options_->journal && options_->resume)
    for (std::size_t k = 0; k < more.size(); ++k) rows[k] = options_->journal->find(more[k].id());
  return rows;
}

void JobRunner::add_again_what_then_added(const Journal& journal) {
  // In the order they ended (a job's may depend on what an earlier one
  // added); the list grows as it goes.
  const auto n = jobs_.size();
  std::map<std::size_t, JobRecord> done;  // jobs with `then`, done before, not yet asked
  std::set<std::size_t> looked;
  try {
    while (true) {
      for (std::size_t j = 0; j < jobs_.size(); ++j)
        if (jobs_[j].then && looked.insert(j).second)
          if (auto prior = journal.find(jobs_[j].id()); prior && prior->status == JobStatus::done) done[j] = *prior;
      if (done.empty()) break;
      auto first = done.begin();
      for (auto it = done.begin(); it != done.end(); ++it)
        if (it->second.ended_at < first->second.ended_at) first = it;
      const auto j = first->first;
      const auto record = first->second;
      done.erase(first);
      try {
        auto more = jobs_[j].then(record);
        check_more(more);
        for (auto& job : more) {
          index_[job.id()] = static_cast<int>(jobs_.size());
          jobs_.push_back(std::move(job));
        }
      } catch (const std::exception& e) {
        throw Error("resuming: the jobs after " + jobs_[j].name + " cannot be made again: " + e.what());
      }
    }
  } catch (...) {
    // As it was: nothing half-added.
    while (jobs_.size() > n) {
      index_.erase(jobs_.back().id());
      jobs_.pop_back();
    }
    throw;
  }
}

void JobRunner::append(std::vector<Job> more, std::vector<std::optional<JobRecord>> priors) {
  if (more.empty()) return;
  check_more(more);  // again, under the lock: nothing is added unless every job can run
  const int first = static_cast<int>(jobs_.size());
  for (auto& job : more) {
    index_[job.id()] = static_cast<int>(jobs_.size());
    jobs_.push_back(std::move(job));
  }
  std::vector<JobGraph::Node> nodes;
  RunStart added;
  for (int j = first; j < static_cast<int>(jobs_.size()); ++j) {
    const auto& job = jobs_[j];
    JobRecord r;
    r.id = job.id();
    r.name = job.name;
    r.spec = job.spec;
    r.rank = options_->rank;
    JobGraph::Node node;
    {
      // A job the journal holds (the run was resumed): as run() treats its own.
      auto& prior = priors[static_cast<std::size_t>(j - first)];
      if (prior && prior->status == JobStatus::done) {
        r = *prior;
        node.done_before = true;
      } else if (prior && prior->status == JobStatus::crashed) {
        r = *prior;
        r.name = job.name;
        r.spec = job.spec;
        node.crashed_before = true;
      } else if (prior) {
        r.attempts = prior->attempts;
      }
    }
    for (const auto& dep : job.after) node.after.push_back(index_.at(dep));
    for (const auto& f : job.follows) node.follows.push_back(index_.at(f));
    node.cost = job.cost;
    node.retries = job.retries;
    ++added.total_jobs;
    if (node.done_before) {
      ++added.already_done;
      ++summary_.resumed;
    } else {
      write_journal([id = r.id, name = job.name, spec = job.spec](Journal& journal) {
        journal.add_queued(id, name, spec);
      });
      if (node.crashed_before) {
        ++added.already_crashed;
        ++summary_.crashed;
      } else {
        added.total_cost += job.cost;
      }
    }
    earlier_attempts_.push_back(node.done_before ? 0 : r.attempts);
    records_.push_back(std::move(r));
    nodes.push_back(std::move(node));
  }
  const auto ended = graph_.add(std::move(nodes));
  events_->push([sinks = &options_->sinks, added] {
    for (auto* sink : *sinks) sink->on_jobs_added(added);
  });
  for (int j = first; j < static_cast<int>(jobs_.size()); ++j)
    if (records_[j].status != JobStatus::done && records_[j].status != JobStatus::crashed)
      emit({.kind = EventKind::queued, .job_id = records_[j].id, .name = jobs_[j].name, .time = now(),
            .rank = options_->rank});
  record_ended(ended);
}

void JobRunner::complete(int j, JobStatus status, JobOutcome outcome, bool may_retry, bool out_of_gpu_memory) {
  MutexLock lock(mutex_);
  const auto& job = jobs_[j];
  auto& r = records_[j];
  r.ended_at = unix_now();
  const bool retry = may_retry && !stop_.stop_requested();  // read once: a stop may come while this runs
  int slots_at_start = 0;
  if (const auto it = gpu_slots_at_start_.find(j); it != gpu_slots_at_start_.end()) {
    slots_at_start = it->second;
    gpu_slots_at_start_.erase(it);
  }
  if (out_of_gpu_memory && retry) {
    // Not a failure of the job while a slot fewer (or its cores) can help.
    const auto seat = ledger_.seat_of(j);
    const auto& gpu = node_.gpus[seat.gpu];
    std::string then;
    // Another job's out-of-memory took a slot since this one started (one slot a wave), or
    // it shared the GPU, which now takes a job fewer: fewer jobs beside it may leave it room.
    if (ledger_.gpu_slots(seat.gpu) < slots_at_start ||
        (ledger_.gpu_jobs(seat.gpu) > 1 && ledger_.retire_slot(seat.gpu))) {
      then = "retried with " + std::to_string(ledger_.gpu_slots(seat.gpu)) + " slot(s) on GPU " +
             std::to_string(gpu.index);
    } else if (job.cpu_fallback) {
      // Alone on its GPU, or on its last slot: a slot fewer cannot help.
      moved_to_cpu_.insert(j);
      then = "retried on its CPU cores";
    }
    if (!then.empty()) {
      graph_.grant_retry(j);
      ++summary_.gpu_out_of_memory;
      outcome.message = "out of memory on GPU " + std::to_string(gpu.index) + " (slot " + std::to_string(seat.slot) +
                        "): " + then + (outcome.message.empty() ? "" : "; " + outcome.message);
    }
  }
  r.metrics = outcome.metrics;
  r.message = outcome.message;
  r.artifacts = outcome.artifacts;
  const auto ended = graph_.end(j, status, retry);
  JobEvent ev{.job_id = r.id, .name = job.name, .time = now(), .cores = r.cores, .attempt = r.attempts,
              .rank = options_->rank, .status = status, .data = outcome.metrics, .message = outcome.message,
              .cost = job.cost};
  if (ended.retried) {
    ++summary_.retried;
    r.status = JobStatus::queued;
    ev.kind = EventKind::retried;
  } else {
    r.status = status;
    summary_.job_seconds += r.seconds();
    switch (status) {
      case JobStatus::done: ++summary_.done; ev.kind = EventKind::finished; break;
      case JobStatus::diverged: ++summary_.diverged; ev.kind = EventKind::finished; break;
      case JobStatus::cancelled: ++summary_.cancelled; ev.kind = EventKind::cancelled; break;
      default: ++summary_.failed; ev.kind = EventKind::failed; break;
    }
  }
  write_journal([id = r.id, status = r.status, attempts = r.attempts, at = r.ended_at, metrics = outcome.metrics,
                 message = outcome.message, artifacts = r.artifacts](Journal& journal) {
    journal.mark_ended(id, status, attempts, at, metrics, message, artifacts);
  });
  emit(std::move(ev));
  record_ended(ended);
  if (!ended.retried && options_->sharing) options_->sharing->ended(j, r);
  const auto& workers = ledger_.workers_of(j);
  for (std::size_t i = 1; i < workers.size(); ++i) executor_.set_reserved(workers[i], false);
  ledger_.release(j);
  dispatch();
  finish_if_over();
}

// Records what ending a job changed in the graph: skipped dependents, and
// the released ones for work sharing.
void JobRunner::record_ended(const JobGraph::Ended& ended) {
  if (ended.retried || !ended.released.empty())
    if (options_->sharing) options_->sharing->work_available();
  for (const auto& [d, because] : ended.skipped) {
    auto& r = records_[d];
    r.status = JobStatus::skipped;
    r.message = "dependency " + jobs_[because].name + " " + std::string(to_string(graph_.status(because)));
    ++summary_.skipped;
    write_journal([id = r.id, at = unix_now(), message = r.message](Journal& journal) {
      journal.mark_ended(id, JobStatus::skipped, 0, at, nlohmann::json::object(), message);
    });
    emit({.kind = EventKind::skipped, .job_id = r.id, .name = jobs_[d].name, .time = now(), .rank = options_->rank,
          .status = JobStatus::skipped, .message = r.message});
  }
}

std::vector<int> JobRunner::give_away() {
  MutexLock lock(mutex_);
  if (!active_ || over_ || stop_.stop_requested()) return {};
  return graph_.give_away();
}

void JobRunner::take(const std::vector<int>& jobs) {
  MutexLock lock(mutex_);
  // Jobs handed over after this run ended or stopped are dropped: the run
  // is over (a stopped run's unstarted jobs are --resume's business).
  if (!active_ || over_ || stop_.stop_requested()) return;
  for (int j : jobs) PACKTRAIN_CHECK(j >= 0 && j < static_cast<int>(jobs_.size()), "take: no such job");
  graph_.take(jobs);
  if (options_->sharing && graph_.ready_count() > 0) options_->sharing->work_available();
  dispatch();
}

void JobRunner::ended_elsewhere(int j, const JobRecord& record) {
  MutexLock lock(mutex_);
  if (j < 0 || j >= static_cast<int>(jobs_.size())) {
    ++summary_.ignored_remote_ends;
    return;
  }
  if (!active_) {
    // Another process got there before this one's run() began: keep it for run().
    early_ended_.emplace_back(j, record);
    return;
  }
  if (over_) return;  // the run's end is reported already
  apply_remote_end(j, record);
  dispatch();
  finish_if_over();
}

void JobRunner::apply_remote_end(int j, const JobRecord& record) {
  const auto ended = graph_.end_elsewhere(j, record.status);
  if (!ended) {
    ++summary_.ignored_remote_ends;
    return;
  }
  records_[j] = record;
  switch (record.status) {
    case JobStatus::done: ++summary_.done; break;
    case JobStatus::diverged: ++summary_.diverged; break;
    case JobStatus::cancelled: ++summary_.cancelled; break;
    case JobStatus::skipped: ++summary_.skipped; break;
    case JobStatus::crashed: ++summary_.crashed; break;
    default: ++summary_.failed; break;
  }
  summary_.job_seconds += record.seconds();
  write_journal([record](Journal& journal) { journal.put(record); });
  emit({.kind = record.status == JobStatus::done || record.status == JobStatus::diverged ? EventKind::finished
                                                                                        : EventKind::failed,
        .job_id = record.id, .name = record.name, .time = now(), .cores = record.cores,
        .attempt = record.attempts, .rank = record.rank, .status = record.status, .data = record.metrics,
        .message = record.message, .cost = jobs_[j].cost});
  record_ended(*ended);
}

int JobRunner::ready_count() {
  MutexLock lock(mutex_);
  return active_ ? graph_.ready_count() : 0;
}

bool JobRunner::running() {
  MutexLock lock(mutex_);
  return active_;
}

void JobRunner::register_helper(int j, CoreHelper helper) {
  if (!helper) throw Error("lend_cores_to: no helper function");
  MutexLock lock(mutex_);
  if (helpers_.count(j)) throw Error("job '" + jobs_[j].name + "' called lend_cores_to twice");
  helpers_[j].helper = std::move(helper);
  const auto workers = ledger_.workers_of(j);
  for (std::size_t i = 1; i < workers.size(); ++i) lend(j, workers[i], true);
  if (jobs_[j].max_cores > jobs_[j].cores) {
    ledger_.open_elastic(j, jobs_[j].cores, jobs_[j].max_cores);
    dispatch();
  }
}

void JobRunner::lend(int j, int worker, bool own) {
  auto lease = std::make_shared<CoreLease>(executor_.cores()[worker]);
  helpers_.at(j).leases.push_back({lease, worker, own});
  if (!own) {
    ledger_.lend(worker, j);
    emit_resized(j);
  }
  executor_.submit_to(worker, [this, j, lease, worker, own] { run_lease(j, lease, worker, own); });
  // A reserved worker runs nothing: release it only now that the lease is in its inbox,
  // which it reads before looking for tasks.
  if (own) executor_.set_reserved(worker, false);
}

void JobRunner::run_lease(int j, const std::shared_ptr<CoreLease>& lease, int worker, bool own) {
  CoreHelper helper;
  std::string id;
  std::shared_ptr<JobMemory> memory;
  {
    MutexLock lock(mutex_);
    const auto& h = helpers_.at(j);
    if (!h.closed && !lease->should_return()) helper = h.helper;
    id = records_[j].id;
    if (const auto it = job_memory_.find(j); it != job_memory_.end()) memory = it->second;
  }
  std::string error;
  bool returned_unasked = false;
  if (helper) {
    if (options_->pin_threads) apply_thread_budget({lease->core()});
    if (options_->thread_budget) options_->thread_budget(1);
    try {
      const RunningJobMark mark(id);  // a crash on a lent core names the job too
      const JobMemoryScope charged(memory);  // the job's allocations, on its lent core too
      helper(*lease);
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "unknown exception";
    }
    returned_unasked = !lease->should_return();
  }
  MutexLock lock(mutex_);
  auto& h = helpers_.at(j);
  if (!error.empty() && h.error.empty()) h.error = error;
  const auto it = std::find_if(h.leases.begin(), h.leases.end(), [&](const Helpers::Lease& l) { return l.lease == lease; });
  PACKTRAIN_CHECK(it != h.leases.end(), "run_lease: unknown lease");
  h.leases.erase(it);
  if (own) {
    executor_.set_reserved(worker, true);  // the job's own core again, until complete() frees it
  } else {
    ledger_.end_lease(worker);
    // A helper that returns by itself has no use for more cores: lending it
    // the same idle core again would only loop (helper, return, lend, ...).
    if (returned_unasked) ledger_.stop_lending(j);
    emit_resized(j);
  }
  lease_ended_.notify_all();
  dispatch();
}

std::string JobRunner::close_leases(int j) {
  MutexLock lock(mutex_);
  const auto it = helpers_.find(j);
  if (it == helpers_.end()) return {};
  auto& h = it->second;
  h.closed = true;
  for (auto& l : h.leases) l.lease->ask_to_return();
  ledger_.close_elastic(j);
  while (!h.leases.empty()) lease_ended_.wait(mutex_);
  std::string error = std::move(h.error);
  helpers_.erase(it);
  return error;
}

void JobRunner::emit_resized(int j) {
  const auto& r = records_[j];
  std::vector<int> cores = r.cores;
  for (const auto& l : helpers_.at(j).leases)
    if (!l.own) cores.push_back(l.lease->core());
  const auto n = cores.size();
  emit({.kind = EventKind::resized, .job_id = r.id, .name = jobs_[j].name, .time = now(), .cores = std::move(cores),
        .attempt = r.attempts, .rank = options_->rank, .status = JobStatus::running, .data = {{"cores", n}},
        .cost = jobs_[j].cost});
}

}  // namespace packtrain
