#include <packtrain/scheduler/job_runner.hpp>

#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/thread_budget.hpp>

#include <algorithm>
#include <functional>

namespace packtrain {

struct JobRunner::State {
  JobRecord record;
  int waiting_on = 0;             // dependencies not yet done
  std::vector<int> dependents;
  bool final = false;             // status will not change again in this run
  bool owned = true;              // this process runs it (work sharing may move it)
  std::vector<int> workers;       // while running: the executor workers it owns
  std::shared_ptr<Elastic> elastic;  // while running, once it registered a helper
};

// The helper of a running job and the cores lent to it. Shared with the
// lease closures, which may still run after Job::run has returned.
struct JobRunner::Elastic {
  struct Lease {
    std::shared_ptr<CoreLease> lease;
    int worker;
    bool own;                     // one of the job's own cores (kept to the end)
    bool reclaimed = false;       // asked back for a waiting job
  };
  CoreHelper helper;
  std::vector<Lease> leases;      // guarded by the runner's mutex_
  int lent = 0;                   // leases that are not own
  int reclaimed = 0;              // ... of which asked back for a waiting job
  bool closed = false;            // Job::run returned: no new helper calls
  std::string error;              // the first exception of a helper
};

int RunSummary::exit_code() const {
  if (interrupted) return 130;
  return (failed + diverged + skipped + cancelled) > 0 ? 1 : 0;
}

JobRunner::JobRunner(Executor& executor, NodeResources node) : executor_(executor), node_(std::move(node)) {
  PACKTRAIN_CHECK(executor_.worker_count() == node_.core_count(), "one executor worker per node core");
}

JobRunner::~JobRunner() = default;

std::string JobRunner::add(Job job) {
  if (!job.run) throw Error("job '" + job.name + "' has no function to run");
  const std::string id = job.id();
  if (index_.count(id))
    throw Error("job '" + job.name + "' has the same spec (id " + id + ") as job '" + jobs_[index_[id]].name + "'");
  index_[id] = static_cast<int>(jobs_.size());
  jobs_.push_back(std::move(job));
  return id;
}

void JobRunner::validate() const {
  for (const auto& job : jobs_) {
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
    if (job.gpus > node_.gpus)
      throw Error("job '" + job.name + "' needs " + std::to_string(job.gpus) + " GPU(s) but this node has " +
                  std::to_string(node_.gpus));
    if (job.memory_mb > node_.memory_mb)
      throw Error("job '" + job.name + "' needs " + std::to_string(job.memory_mb) + " MiB but this node has " +
                  std::to_string(node_.memory_mb) + " MiB");
    for (const auto& dep : job.after)
      if (!index_.count(dep)) throw Error("job '" + job.name + "' depends on unknown job id " + dep);
  }
  // Cycle check: depth-first search with colours.
  std::vector<int> colour(jobs_.size(), 0);  // 0 new, 1 on the path, 2 done
  std::vector<int> path;
  std::function<void(int)> visit = [&](int j) {
    colour[j] = 1;
    path.push_back(j);
    for (const auto& dep : jobs_[j].after) {
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

void JobRunner::emit(const JobEvent& event) {
  std::lock_guard lock(events_mutex_);
  for (auto* sink : options_->sinks) sink->on_event(event);
}

void JobRunner::request_stop() {
  stop_.store(true);
  std::lock_guard lock(mutex_);
  finished_cv_.notify_all();
}

RunSummary JobRunner::run(const RunOptions& options) {
  validate();
  // Everything below is under mutex_: a work-sharing thread may call
  // give_away()/take()/ended_elsewhere() at any moment, even before this
  // run has set up its state or after it has ended.
  std::unique_lock lock(mutex_);
  options_ = &options;
  start_time_ = unix_now();
  summary_ = RunSummary{};
  state_.assign(jobs_.size(), State{});
  ready_.clear();
  worker_busy_.assign(executor_.worker_count(), false);
  cores_in_use_ = gpus_in_use_ = running_ = ended_ = 0;
  lent_ = returning_ = 0;
  elastic_running_.clear();
  memory_in_use_ = 0;

  RunStart start_info;
  start_info.total_jobs = static_cast<int>(jobs_.size());
  start_info.cores = node_.cores;
  for (std::size_t j = 0; j < jobs_.size(); ++j) {
    auto& s = state_[j];
    const auto& job = jobs_[j];
    s.record.id = job.id();
    s.record.name = job.name;
    s.record.spec = job.spec;
    s.record.rank = options.rank;
    if (options.journal && options.resume) {
      if (auto prior = options.journal->find(s.record.id); prior && prior->status == JobStatus::done) {
        s.record = *prior;
        s.final = true;
        ++summary_.resumed;
        ++ended_;
        continue;
      }
    }
    if (std::find(options.already_done.begin(), options.already_done.end(), s.record.id) !=
        options.already_done.end()) {
      s.record.status = JobStatus::done;
      s.final = true;
      ++summary_.resumed;
      ++ended_;
      continue;
    }
    if (options.sharing) s.owned = options.sharing->starts_with(static_cast<int>(j));
    start_info.total_cost += job.cost;
    if (options.journal) options.journal->add_queued(s.record.id, job.name, job.spec);
  }
  start_info.already_done = summary_.resumed;
  {
    std::lock_guard events(events_mutex_);
    for (auto* sink : options.sinks) sink->on_run_start(start_info);
  }

  for (std::size_t j = 0; j < jobs_.size(); ++j) {
    for (const auto& dep : jobs_[j].after) {
      const int d = index_.at(dep);
      state_[d].dependents.push_back(static_cast<int>(j));
      if (state_[d].record.status != JobStatus::done) ++state_[j].waiting_on;
    }
  }
  for (std::size_t j = 0; j < jobs_.size(); ++j) {
    if (state_[j].final) continue;
    emit({.kind = EventKind::queued, .job_id = state_[j].record.id, .name = jobs_[j].name, .time = now(),
          .rank = options.rank});
    if (state_[j].waiting_on == 0 && state_[j].owned) ready_.emplace(jobs_[j].cost, static_cast<int>(j));
  }
  // Ends reported before run() began, applied once ready_ is filled: what
  // they release is queued by release_dependents, and only there.
  for (const auto& [j, record] : early_ended_) apply_remote_end(j, record);
  early_ended_.clear();
  if (options.sharing && !ready_.empty()) options.sharing->work_available();
  dispatch();
  finished_cv_.wait(lock, [&] {
    return ended_ == static_cast<int>(jobs_.size()) || (stop_.load() && running_ == 0);
  });
  // Stopped with work undone: jobs never started, or jobs that stopped
  // early (cancelled) when asked to.
  summary_.interrupted = stop_.load() && (ended_ < static_cast<int>(jobs_.size()) || summary_.cancelled > 0);
  summary_.makespan_s = now();
  for (const auto& s : state_) summary_.jobs.push_back(s.record);
  RunSummary summary = summary_;
  options_ = nullptr;
  early_ended_.clear();
  lock.unlock();
  {
    std::lock_guard events(events_mutex_);
    for (auto* sink : options.sinks) sink->on_run_end(summary);
  }
  return summary;
}

void JobRunner::dispatch() {
  if (stop_.load()) return;
  struct IdleCheck {
    JobRunner& r;
    ~IdleCheck() {
      if (r.options_ && r.options_->sharing && r.ended_ < static_cast<int>(r.jobs_.size()) &&
          r.cores_in_use_ - r.lent_ < r.node_.core_count() && r.ready_.empty())
        r.options_->sharing->idle();
    }
  } idle_check{*this};
  for (auto it = ready_.begin(); it != ready_.end();) {
    const int j = it->second;
    const auto& job = jobs_[j];
    const int free_cores = node_.core_count() - cores_in_use_;
    if (cores_in_use_ == node_.core_count()) break;
    const bool fits = job.cores <= free_cores && job.gpus <= node_.gpus - gpus_in_use_ &&
                      job.memory_mb <= node_.memory_mb - memory_in_use_;
    if (!fits) {
      ++it;  // a shorter job may fit: work-conserving
      continue;
    }
    std::vector<int> workers;
    for (int w = 0; w < executor_.worker_count() && static_cast<int>(workers.size()) < job.cores; ++w)
      if (!worker_busy_[w]) workers.push_back(w);
    it = ready_.erase(it);
    start(j, std::move(workers));
  }
  rebalance();
}

void JobRunner::start(int j, std::vector<int> workers) {
  const auto& job = jobs_[j];
  auto& s = state_[j];
  PACKTRAIN_CHECK(s.record.status == JobStatus::queued && !s.final, "start: job " + job.name + " is not queued");
  s.record.status = JobStatus::running;
  ++s.record.attempts;
  for (int w : workers) worker_busy_[w] = true;
  s.workers = workers;
  cores_in_use_ += job.cores;
  gpus_in_use_ += job.gpus;
  memory_in_use_ += job.memory_mb;
  ++running_;
  summary_.peak_cores_in_use = std::max(summary_.peak_cores_in_use, cores_in_use_);
  for (std::size_t i = 1; i < workers.size(); ++i) executor_.set_reserved(workers[i], true);
  const int first = workers.front();
  executor_.submit_to(first, [this, j, workers = std::move(workers)] { execute(j, workers); });
}

void JobRunner::execute(int j, const std::vector<int>& workers) {
  const auto& job = jobs_[j];
  std::vector<int> cores;
  for (int w : workers) cores.push_back(executor_.cores()[w]);
  int attempt;
  std::string id;
  {
    std::lock_guard lock(mutex_);
    auto& s = state_[j];
    attempt = s.record.attempts;
    id = s.record.id;
    s.record.cores = cores;
    s.record.started_at = unix_now();
    s.record.ended_at = 0;
    if (options_->journal) options_->journal->mark_started(id, attempt, s.record.started_at, cores, options_->rank);
  }
  emit({.kind = EventKind::started, .job_id = id, .name = job.name, .time = now(), .cores = cores,
        .attempt = attempt, .rank = options_->rank, .status = JobStatus::running, .cost = job.cost});

  if (options_->pin_threads) apply_thread_budget(cores);
  if (options_->thread_budget) options_->thread_budget(static_cast<int>(cores.size()));

  JobContext ctx(id, derive_seed(id, options_->base_seed), attempt, cores, options_->rank, &stop_,
                 [this, id, name = job.name, attempt](const nlohmann::json& progress) {
                   emit({.kind = EventKind::progress, .job_id = id, .name = name, .time = now(), .attempt = attempt,
                         .rank = options_->rank, .status = JobStatus::running, .data = progress});
                 });
  ctx.set_elastic(job.max_cores, [this, j](CoreHelper helper) { register_helper(j, std::move(helper)); });
  JobOutcome outcome;
  JobStatus status;
  try {
    outcome = job.run(ctx);
    status = outcome.status;
    if (status != JobStatus::done && status != JobStatus::diverged && status != JobStatus::cancelled)
      throw Error("a job may end done, diverged or cancelled, not " + std::string(to_string(status)));
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
  // Back to this worker's own core and one thread.
  if (options_->pin_threads) apply_thread_budget({executor_.cores()[workers.front()]});
  if (options_->thread_budget) options_->thread_budget(1);
  complete(j, workers, status, std::move(outcome));
}

void JobRunner::complete(int j, const std::vector<int>& workers, JobStatus status, JobOutcome outcome) {
  const auto& job = jobs_[j];
  // Events are emitted under mutex_ so that run() cannot return (and its
  // sinks go away) before the last job's events are out.
  std::lock_guard lock(mutex_);
  auto& s = state_[j];
  s.record.ended_at = unix_now();
  s.record.metrics = outcome.metrics;
  s.record.message = outcome.message;
  const bool retry = status == JobStatus::failed && s.record.attempts <= job.retries && !stop_.load();
  JobEvent ev{.job_id = s.record.id, .name = job.name, .time = now(), .cores = s.record.cores,
              .attempt = s.record.attempts, .rank = options_->rank, .status = status, .data = outcome.metrics,
              .message = outcome.message, .cost = job.cost};
  if (retry) {
    ++summary_.retried;
    s.record.status = JobStatus::queued;
    ev.kind = EventKind::retried;
    ready_.emplace(job.cost, j);
    if (options_->sharing) options_->sharing->work_available();
  } else {
    s.record.status = status;
    s.final = true;
    ++ended_;
    summary_.job_seconds += s.record.seconds();
    switch (status) {
      case JobStatus::done: ++summary_.done; ev.kind = EventKind::finished; break;
      case JobStatus::diverged: ++summary_.diverged; ev.kind = EventKind::finished; break;
      case JobStatus::cancelled: ++summary_.cancelled; ev.kind = EventKind::cancelled; break;
      default: ++summary_.failed; ev.kind = EventKind::failed; break;
    }
  }
  if (options_->journal)
    options_->journal->mark_ended(s.record.id, s.record.status, s.record.attempts, s.record.ended_at, outcome.metrics,
                                  outcome.message);
  emit(ev);
  if (!retry) {
    if (status == JobStatus::done) {
      release_dependents(j);
    } else {
      skip_dependents(j);  // failed, diverged or cancelled: dependents cannot run (--resume reruns them)
    }
    if (options_->sharing) options_->sharing->ended(j, s.record);
  }
  for (std::size_t i = 1; i < workers.size(); ++i) executor_.set_reserved(workers[i], false);
  for (int w : workers) worker_busy_[w] = false;
  s.workers.clear();
  cores_in_use_ -= job.cores;
  gpus_in_use_ -= job.gpus;
  memory_in_use_ -= job.memory_mb;
  --running_;
  dispatch();
  finished_cv_.notify_all();
}

void JobRunner::release_dependents(int j) {
  bool released = false;
  for (int d : state_[j].dependents) {
    if (--state_[d].waiting_on == 0 && !state_[d].final && state_[d].owned) {
      ready_.emplace(jobs_[d].cost, d);
      released = true;
    }
  }
  if (released && options_->sharing) options_->sharing->work_available();
}

std::vector<int> JobRunner::give_away() {
  std::lock_guard lock(mutex_);
  std::vector<int> given;
  if (!options_ || stop_.load()) return given;
  // Every other ready job in cost order: both sides keep a mix of long and short.
  bool give = false;
  for (auto it = ready_.begin(); it != ready_.end();) {
    if (give) {
      given.push_back(it->second);
      state_[it->second].owned = false;
      it = ready_.erase(it);
    } else {
      ++it;
    }
    give = !give;
  }
  return given;
}

void JobRunner::take(const std::vector<int>& jobs) {
  std::lock_guard lock(mutex_);
  // Jobs handed over after this run ended or stopped are dropped: the run
  // is over (a stopped run's unstarted jobs are --resume's business).
  if (!options_ || stop_.load()) return;
  for (int j : jobs) {
    PACKTRAIN_CHECK(j >= 0 && j < static_cast<int>(jobs_.size()), "take: no such job");
    auto& s = state_[j];
    s.owned = true;
    if (!s.final && s.waiting_on == 0 && s.record.status == JobStatus::queued) ready_.emplace(jobs_[j].cost, j);
  }
  if (options_->sharing && !ready_.empty()) options_->sharing->work_available();
  dispatch();
}

void JobRunner::ended_elsewhere(int j, const JobRecord& record) {
  std::lock_guard lock(mutex_);
  PACKTRAIN_CHECK(j >= 0 && j < static_cast<int>(jobs_.size()), "ended_elsewhere: no such job");
  if (!options_) {
    // Another process got there before this one's run() began: keep it for run().
    early_ended_.emplace_back(j, record);
    return;
  }
  apply_remote_end(j, record);
  dispatch();
  finished_cv_.notify_all();
}

void JobRunner::apply_remote_end(int j, const JobRecord& record) {
  auto& s = state_[j];
  if (s.final) return;
  s.record = record;
  s.final = true;
  s.owned = false;
  ++ended_;
  switch (record.status) {
    case JobStatus::done: ++summary_.done; break;
    case JobStatus::diverged: ++summary_.diverged; break;
    case JobStatus::cancelled: ++summary_.cancelled; break;
    case JobStatus::skipped: ++summary_.skipped; break;
    default: ++summary_.failed; break;
  }
  summary_.job_seconds += record.seconds();
  if (options_->journal) options_->journal->put(record);
  emit({.kind = record.status == JobStatus::done || record.status == JobStatus::diverged ? EventKind::finished
                                                                                        : EventKind::failed,
        .job_id = record.id, .name = record.name, .time = now(), .cores = record.cores,
        .attempt = record.attempts, .rank = record.rank, .status = record.status, .data = record.metrics,
        .message = record.message, .cost = jobs_[j].cost});
  if (record.status == JobStatus::done) {
    release_dependents(j);
  } else {
    skip_dependents(j);
  }
}

int JobRunner::ready_count() {
  std::lock_guard lock(mutex_);
  return options_ ? static_cast<int>(ready_.size()) : 0;
}

bool JobRunner::running() {
  std::lock_guard lock(mutex_);
  return options_ != nullptr;
}

void JobRunner::skip_dependents(int j) {
  for (int d : state_[j].dependents) {
    auto& s = state_[d];
    if (s.final) continue;
    s.final = true;
    s.record.status = JobStatus::skipped;
    s.record.message = "dependency " + jobs_[j].name + " " + std::string(to_string(state_[j].record.status));
    ++ended_;
    ++summary_.skipped;
    if (options_->journal)
      options_->journal->mark_ended(s.record.id, JobStatus::skipped, 0, unix_now(), nlohmann::json::object(),
                                    s.record.message);
    emit({.kind = EventKind::skipped, .job_id = s.record.id, .name = jobs_[d].name, .time = now(),
          .rank = options_->rank, .status = JobStatus::skipped, .message = s.record.message});
    skip_dependents(d);
  }
}

void JobRunner::register_helper(int j, CoreHelper helper) {
  if (!helper) throw Error("lend_cores_to: no helper function");
  std::lock_guard lock(mutex_);
  auto& s = state_[j];
  if (s.elastic) throw Error("job '" + jobs_[j].name + "' called lend_cores_to twice");
  s.elastic = std::make_shared<Elastic>();
  s.elastic->helper = std::move(helper);
  for (std::size_t i = 1; i < s.workers.size(); ++i) lend(j, s.workers[i], true);
  if (jobs_[j].max_cores > jobs_[j].cores) {
    elastic_running_.push_back(j);
    dispatch();
  }
}

void JobRunner::lend(int j, int worker, bool own) {
  const auto elastic = state_[j].elastic;
  auto lease = std::make_shared<CoreLease>(executor_.cores()[worker]);
  elastic->leases.push_back({lease, worker, own});
  if (!own) {
    worker_busy_[worker] = true;
    ++cores_in_use_;
    ++lent_;
    ++elastic->lent;
    summary_.peak_cores_in_use = std::max(summary_.peak_cores_in_use, cores_in_use_);
    emit_resized(j, *elastic);
  }
  executor_.submit_to(worker, [this, j, elastic, lease, worker, own] { run_lease(j, elastic, lease, worker, own); });
  // A reserved worker runs nothing: release it only now that the lease is in its inbox,
  // which it reads before looking for tasks.
  if (own) executor_.set_reserved(worker, false);
}

void JobRunner::run_lease(int j, const std::shared_ptr<Elastic>& elastic, const std::shared_ptr<CoreLease>& lease,
                          int worker, bool own) {
  CoreHelper helper;
  {
    std::lock_guard lock(mutex_);
    if (!elastic->closed && !lease->should_return()) helper = elastic->helper;
  }
  if (helper) {
    if (options_->pin_threads) apply_thread_budget({lease->core()});
    if (options_->thread_budget) options_->thread_budget(1);
    std::string error;
    try {
      helper(*lease);
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "unknown exception";
    }
    if (!error.empty()) {
      std::lock_guard lock(mutex_);
      if (elastic->error.empty()) elastic->error = error;
    }
  }
  std::lock_guard lock(mutex_);
  auto it = std::find_if(elastic->leases.begin(), elastic->leases.end(),
                         [&](const Elastic::Lease& l) { return l.lease == lease; });
  PACKTRAIN_CHECK(it != elastic->leases.end(), "run_lease: unknown lease");
  const bool reclaimed = it->reclaimed;
  elastic->leases.erase(it);
  if (own) {
    executor_.set_reserved(worker, true);  // the job's own core again, until complete() frees it
  } else {
    worker_busy_[worker] = false;
    --cores_in_use_;
    --lent_;
    --elastic->lent;
    if (reclaimed) {
      --returning_;
      --elastic->reclaimed;
    }
    emit_resized(j, *elastic);
  }
  leases_cv_.notify_all();
  dispatch();
}

std::string JobRunner::close_leases(int j) {
  std::unique_lock lock(mutex_);
  const auto elastic = state_[j].elastic;
  if (!elastic) return {};
  elastic->closed = true;
  for (auto& l : elastic->leases) l.lease->ask_to_return();
  elastic_running_.erase(std::remove(elastic_running_.begin(), elastic_running_.end(), j), elastic_running_.end());
  leases_cv_.wait(lock, [&] { return elastic->leases.empty(); });
  state_[j].elastic.reset();
  return elastic->error;
}

void JobRunner::rebalance() {
  if (elastic_running_.empty()) return;
  const int free = node_.core_count() - cores_in_use_;
  // The longest ready job that could start with the lent cores back takes
  // them back; nothing is lent while it waits.
  for (const auto& [cost, j] : ready_) {
    const auto& job = jobs_[j];
    if (job.gpus > node_.gpus - gpus_in_use_ || job.memory_mb > node_.memory_mb - memory_in_use_) continue;
    if (job.cores > free + lent_) continue;
    for (int need = job.cores - free - returning_; need > 0; --need) {
      // The newest lease of the job with the most lent cores not yet asked back.
      Elastic* from = nullptr;
      for (int e : elastic_running_) {
        auto& el = *state_[e].elastic;
        if (el.lent - el.reclaimed > 0 && (!from || el.lent - el.reclaimed > from->lent - from->reclaimed)) from = &el;
      }
      if (!from) break;
      auto it = std::find_if(from->leases.rbegin(), from->leases.rend(), [](auto& l) { return !l.own && !l.reclaimed; });
      it->reclaimed = true;
      it->lease->ask_to_return();
      ++from->reclaimed;
      ++returning_;
    }
    return;
  }
  // No ready job can use the free cores: lend each to the elastic job with
  // the fewest cores below its maximum.
  for (int w = 0; w < executor_.worker_count(); ++w) {
    if (worker_busy_[w]) continue;
    int best = -1;
    int fewest = 0;
    for (int e : elastic_running_) {
      const int has = jobs_[e].cores + state_[e].elastic->lent;
      if (has < jobs_[e].max_cores && (best < 0 || has < fewest)) {
        best = e;
        fewest = has;
      }
    }
    if (best < 0) break;
    lend(best, w, false);
  }
}

void JobRunner::emit_resized(int j, const Elastic& elastic) {
  const auto& s = state_[j];
  std::vector<int> cores = s.record.cores;
  for (const auto& l : elastic.leases)
    if (!l.own) cores.push_back(l.lease->core());
  const auto n = cores.size();
  emit({.kind = EventKind::resized, .job_id = s.record.id, .name = jobs_[j].name, .time = now(),
        .cores = std::move(cores), .attempt = s.record.attempts, .rank = options_->rank,
        .status = JobStatus::running, .data = {{"cores", n}}, .cost = jobs_[j].cost});
}

}  // namespace packtrain
