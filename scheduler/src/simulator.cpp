#include <packtrain/scheduler/simulator.hpp>

#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/job_graph.hpp>
#include <packtrain/scheduler/placement.hpp>
#include <packtrain/scheduler/resource_ledger.hpp>

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <numeric>
#include <queue>
#include <random>
#include <set>

namespace packtrain {

namespace {

enum class EventKind { job_end, end_notice, steal_request, steal_reply, gift };

struct Event {
  double time = 0;
  std::int64_t order = 0;  // ties: in the order they were made
  EventKind kind = EventKind::job_end;
  int node = 0;            // where it happens
  int from = 0;            // the sender (messages)
  int job = -1;            // job_end, end_notice
  std::vector<int> jobs;   // steal_reply, gift
  bool operator>(const Event& o) const { return time > o.time || (time == o.time && order > o.order); }
};

void check(const std::vector<SimJob>& jobs, const SimOptions& o) {
  if (o.nodes < 1) throw Error("simulate: at least 1 node, not " + std::to_string(o.nodes));
  if (o.cores < 1) throw Error("simulate: at least 1 core a node, not " + std::to_string(o.cores));
  if (!(o.latency_s >= 0)) throw Error("simulate: a negative message latency");
  if (o.gpu_slots < 0) throw Error("simulate: a negative number of GPU slots");
  const int n = static_cast<int>(jobs.size());
  std::vector<int> waiting(static_cast<std::size_t>(n), 0);
  std::vector<std::vector<int>> dependents(static_cast<std::size_t>(n));
  for (int j = 0; j < n; ++j) {
    const auto& job = jobs[static_cast<std::size_t>(j)];
    if (job.cores < 1 || job.cores > o.cores)
      throw Error("simulate: " + job.name + " needs " + std::to_string(job.cores) + " cores; a node has " +
                  std::to_string(o.cores));
    if (o.memory_mb > 0 && job.memory_mb > o.memory_mb)
      throw Error("simulate: " + job.name + " needs " + std::to_string(job.memory_mb) + " MB; a node has " +
                  std::to_string(o.memory_mb));
    if (!(job.seconds >= 0) || !std::isfinite(job.seconds) || !(job.gpu_seconds >= 0) || !std::isfinite(job.gpu_seconds))
      throw Error("simulate: " + job.name + " has no valid duration");
    for (int d : job.after) {
      if (d < 0 || d >= n || d == j) throw Error("simulate: " + job.name + " waits for an unknown job");
      ++waiting[static_cast<std::size_t>(j)];
      dependents[static_cast<std::size_t>(d)].push_back(j);
    }
  }
  // Kahn: every job must be reachable from the ones that wait for nothing.
  std::vector<int> ready;
  for (int j = 0; j < n; ++j)
    if (waiting[static_cast<std::size_t>(j)] == 0) ready.push_back(j);
  int seen = 0;
  while (!ready.empty()) {
    const int j = ready.back();
    ready.pop_back();
    ++seen;
    for (int d : dependents[static_cast<std::size_t>(j)])
      if (--waiting[static_cast<std::size_t>(d)] == 0) ready.push_back(d);
  }
  if (seen != n) throw Error("simulate: the jobs' dependencies have a cycle");
}

// One simulated node: the runner's bookkeeping and the sharing's state.
struct Node {
  JobGraph graph;
  ResourceLedger ledger;
  bool asking = false;          // a steal request is out
  int empty_answers = 0;
  bool lifeline_out = false;    // registered with the others
  std::deque<int> lifelines;    // thieves waiting for work from here
  std::set<int> running;        // jobs running here
};

class Simulation {
 public:
  Simulation(const std::vector<SimJob>& jobs, const SimOptions& o) : jobs_(jobs), o_(o), rng_(o.seed) {
    const int n = static_cast<int>(jobs.size());
    // The deal: longest first, round-robin over the nodes (MpiWorkSharing's).
    std::vector<int> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return jobs[static_cast<std::size_t>(a)].cost > jobs[static_cast<std::size_t>(b)].cost;
    });
    std::vector<int> owner(static_cast<std::size_t>(n));
    for (std::size_t p = 0; p < order.size(); ++p) owner[static_cast<std::size_t>(order[p])] = static_cast<int>(p % o.nodes);
    const std::uint64_t memory = o.memory_mb > 0 ? o.memory_mb : std::numeric_limits<std::uint64_t>::max() / 2;
    mixed_ = o.gpu_slots > 0 && std::any_of(jobs.begin(), jobs.end(), [](const SimJob& j) { return j.gpu_seconds > 0; });
    for (int k = 0; k < o.nodes; ++k) {
      std::vector<JobGraph::Node> graph;
      graph.reserve(jobs.size());
      for (int j = 0; j < n; ++j)
        graph.push_back({.after = jobs[static_cast<std::size_t>(j)].after, .cost = jobs[static_cast<std::size_t>(j)].cost,
                         .owned = owner[static_cast<std::size_t>(j)] == k});
      nodes_.push_back(Node{.graph = JobGraph(std::move(graph)), .ledger = ResourceLedger(o.cores, o.gpu_slots, memory)});
    }
    result_.node_busy.assign(static_cast<std::size_t>(o.nodes), 0.0);
    result_.node_gpu_busy.assign(static_cast<std::size_t>(o.nodes), 0.0);
    all_single_ = std::all_of(jobs.begin(), jobs.end(),
                              [](const SimJob& j) { return j.cores == 1 && j.memory_mb == 0 && j.max_cores <= 1; });
    running_.resize(jobs.size());
    has_dependents_.assign(jobs.size(), false);
    for (const auto& job : jobs)
      for (int d : job.after) has_dependents_[static_cast<std::size_t>(d)] = true;
  }

  SimResult run() {
    for (int k = 0; k < o_.nodes; ++k) dispatch(k);
    while (!events_.empty()) {
      Event e = events_.top();
      events_.pop();
      now_ = e.time;
      ++result_.events;
      handle(e);
    }
    if (ended_ != static_cast<int>(jobs_.size())) throw Error("simulate: jobs were left unrun (a bug in the simulation)");
    return std::move(result_);
  }

 private:
  void push(Event e) {
    e.order = next_order_++;
    events_.push(std::move(e));
  }
  void message(EventKind kind, int from, int to, int job = -1, std::vector<int> jobs = {}) {
    push(Event{.time = now_ + o_.latency_s, .kind = kind, .node = to, .from = from, .job = job, .jobs = std::move(jobs)});
  }

  void handle(const Event& e) {
    auto& node = nodes_[static_cast<std::size_t>(e.node)];
    switch (e.kind) {
      case EventKind::job_end: {
        auto& run = running_[static_cast<std::size_t>(e.job)];
        if (e.order != run.event) return;  // rescheduled since (its cores changed)
        finish(e.node, e.job);
        for (int k = 0; k < o_.nodes; ++k)
          if (k != e.node && has_dependents_[static_cast<std::size_t>(e.job)])
            message(EventKind::end_notice, e.node, k, e.job);
        serve_lifelines(e.node);
        dispatch(e.node);
        return;
      }
      case EventKind::end_notice:
        (void)node.graph.end_elsewhere(e.job, JobStatus::done);
        node.empty_answers = 0;  // work may be ready somewhere now: ask again
        serve_lifelines(e.node);
        dispatch(e.node);
        return;
      case EventKind::steal_request: {
        ++result_.steal_requests;
        std::vector<int> given = node.graph.give_away();
        message(EventKind::steal_reply, e.node, e.from, -1, std::move(given));
        return;
      }
      case EventKind::steal_reply:
      case EventKind::gift: {
        if (e.kind == EventKind::steal_reply) node.asking = false;
        if (!e.jobs.empty()) {
          if (e.kind == EventKind::steal_reply) ++result_.steals;
          else ++result_.lifeline_gifts;
          result_.jobs_moved += static_cast<int>(e.jobs.size());
          node.graph.take(e.jobs);
          node.empty_answers = 0;
          node.lifeline_out = false;
        } else if (e.kind == EventKind::steal_reply) {
          ++node.empty_answers;
        }
        dispatch(e.node);
        return;
      }
    }
  }

  // A node with ready jobs to spare hands half of them to a waiting thief.
  void serve_lifelines(int k) {
    auto& node = nodes_[static_cast<std::size_t>(k)];
    while (!node.lifelines.empty() && node.graph.ready_count() >= 2) {
      const int thief = node.lifelines.front();
      node.lifelines.pop_front();
      message(EventKind::gift, k, thief, -1, node.graph.give_away());
    }
  }

  // A running job's progress: remaining seconds at its own cores' speed,
  // the speed now, since when, and its end event (a new one whenever its
  // cores change).
  struct Running {
    double remaining = 0;
    double speed = 1;
    double since = 0;
    int lent = 0;
    std::int64_t event = -1;
    std::size_t attempt = 0;
    int slot = -1;  // the GPU slot it runs in, or -1
  };

  void schedule_end(int k, int job) {
    auto& run = running_[static_cast<std::size_t>(job)];
    run.event = next_order_;
    push(Event{.time = now_ + run.remaining / run.speed, .kind = EventKind::job_end, .node = k, .job = job});
  }

  // Brings a running job's progress and busy time up to now.
  void advance(int k, int job) {
    auto& run = running_[static_cast<std::size_t>(job)];
    const auto& j = jobs_[static_cast<std::size_t>(job)];
    const double dt = now_ - run.since;
    run.remaining = std::max(0.0, run.remaining - dt * run.speed);
    if (run.slot >= 0) {
      result_.node_gpu_busy[static_cast<std::size_t>(k)] += dt;
    } else {
      const double busy = dt * (j.cores + run.lent);
      result_.core_seconds += busy;
      result_.node_busy[static_cast<std::size_t>(k)] += busy;
    }
    run.since = now_;
  }

  void set_lent(int k, int job, int lent) {
    advance(k, job);
    auto& run = running_[static_cast<std::size_t>(job)];
    const auto& j = jobs_[static_cast<std::size_t>(job)];
    run.lent = lent;
    run.speed = (j.cores + j.elastic_efficiency * lent) / j.cores;
    schedule_end(k, job);
  }

  void finish(int k, int job) {
    auto& node = nodes_[static_cast<std::size_t>(k)];
    advance(k, job);
    auto& run = running_[static_cast<std::size_t>(job)];
    auto& attempt = result_.attempts[run.attempt];
    attempt.end = now_;
    result_.job_seconds += now_ - attempt.start;
    result_.makespan = std::max(result_.makespan, now_);
    if (jobs_[static_cast<std::size_t>(job)].max_cores > 0) {
      node.ledger.close_elastic(job);
      std::vector<int> lent;
      for (const auto& l : node.ledger.leases())
        if (l.job == job) lent.push_back(l.worker);
      for (int w : lent) end_lease(k, w);
    }
    node.ledger.release(job);
    node.running.erase(job);
    (void)node.graph.end(job, JobStatus::done, false);
    ++ended_;
  }

  // DESIGN.md decision 12: each ready job on its cores or in a GPU slot,
  // where it is expected to finish first (place_mixed), from the running
  // jobs' expected ends.
  void dispatch_mixed(int k) {
    auto& node = nodes_[static_cast<std::size_t>(k)];
    if (node.graph.ready_count() == 0) return;
    Forecast forecast;
    for (int j : node.running) {
      const auto& run = running_[static_cast<std::size_t>(j)];
      const double left = std::max(0.0, run.remaining - (now_ - run.since) * run.speed) / run.speed;
      auto& frees = run.slot >= 0 ? forecast.gpu_slot_free_in : forecast.core_free_in;
      frees = std::min(frees, left);
    }
    std::vector<ReadyChoice> ready;
    for (int j : node.graph.ready()) {
      const auto& job = jobs_[static_cast<std::size_t>(j)];
      ready.push_back({.job = j, .cost = job.cost, .cpu = {.cores = job.cores, .memory_mb = job.memory_mb},
                       .cpu_seconds = job.seconds > 0 ? job.seconds : 1e-12, .gpu_seconds = job.gpu_seconds});
    }
    for (const auto& d : place_mixed(node.ledger, ready, forecast)) {
      const auto& job = jobs_[static_cast<std::size_t>(d.job)];
      auto& run = running_[static_cast<std::size_t>(d.job)];
      run = Running{.remaining = d.gpu ? job.gpu_seconds : job.seconds, .speed = 1, .since = now_,
                    .attempt = result_.attempts.size()};
      SimAttempt attempt{.job = d.job, .node = k, .cores = d.workers, .start = now_, .end = now_};
      if (d.gpu) {
        node.ledger.hold(d.job, {}, {.cores = 0, .gpus = 1, .memory_mb = job.memory_mb}, d.device);
        // The ledger's GPUs have one slot each (ResourceLedger(cores, gpu_slots, ...)): a GPU is a slot.
        run.slot = node.ledger.seat_of(d.job).gpu;
        attempt.gpu_slot = run.slot;
        ++result_.gpu_jobs;
      } else {
        node.ledger.hold(d.job, d.workers, {.cores = job.cores, .memory_mb = job.memory_mb});
      }
      (void)node.graph.start(d.job);
      node.running.insert(d.job);
      result_.attempts.push_back(std::move(attempt));
      schedule_end(k, d.job);
    }
  }

  // A lent core goes back: its slice of the trace ends now.
  void end_lease(int k, int worker) {
    auto& node = nodes_[static_cast<std::size_t>(k)];
    const auto key = std::make_pair(k, worker);
    if (const auto it = lent_attempt_.find(key); it != lent_attempt_.end()) {
      result_.attempts[it->second].end = now_;
      lent_attempt_.erase(it);
    }
    node.ledger.end_lease(worker);
  }

  void dispatch(int k) {
    auto& node = nodes_[static_cast<std::size_t>(k)];
    if (mixed_) dispatch_mixed(k);
    // Cores asked back return at once, and an elastic job that started opens
    // for lending (as its helper registers): another round places what
    // waited for those cores, or lends them.
    for (int round = 0; round < 4 && !mixed_; ++round) {
      if (node.ledger.free_cores() == 0 && node.ledger.elastic().empty()) break;
      std::vector<ReadyJob> ready;
      for (int j : node.graph.ready()) {
        const auto& job = jobs_[static_cast<std::size_t>(j)];
        ready.push_back({.job = j, .demand = {.cores = job.cores, .memory_mb = job.memory_mb}, .cost = job.cost});
        // One-core jobs with no memory to fit: the longest free-cores of
        // them are what place() would start (a shortcut for large sweeps).
        if (all_single_ && static_cast<int>(ready.size()) >= node.ledger.free_cores()) break;
      }
      if (ready.empty() && node.ledger.elastic().empty()) break;
      bool again = false;
      for (const auto& d : place(node.ledger, ready)) {
        const auto& job = jobs_[static_cast<std::size_t>(d.job)];
        switch (d.kind) {
          case Decision::Kind::start: {
            node.ledger.hold(d.job, d.workers, {.cores = job.cores, .memory_mb = job.memory_mb});
            (void)node.graph.start(d.job);
            auto& run = running_[static_cast<std::size_t>(d.job)];
            run = Running{.remaining = job.seconds, .speed = 1, .since = now_, .attempt = result_.attempts.size()};
            node.running.insert(d.job);
            result_.attempts.push_back({.job = d.job, .node = k, .cores = d.workers, .start = now_, .end = now_});
            if (job.max_cores > job.cores) {
              node.ledger.open_elastic(d.job, job.cores, job.max_cores);
              again = true;
            }
            schedule_end(k, d.job);
            break;
          }
          case Decision::Kind::lend: {
            node.ledger.lend(d.workers[0], d.job);
            lent_attempt_[{k, d.workers[0]}] = result_.attempts.size();
            result_.attempts.push_back(
                {.job = d.job, .node = k, .cores = d.workers, .start = now_, .end = now_, .lent = true});
            set_lent(k, d.job, running_[static_cast<std::size_t>(d.job)].lent + 1);
            break;
          }
          case Decision::Kind::ask_back: {
            node.ledger.ask_back(d.workers[0]);
            end_lease(k, d.workers[0]);
            set_lent(k, d.job, running_[static_cast<std::size_t>(d.job)].lent - 1);
            again = true;
            break;
          }
        }
      }
      if (!again) break;
    }
    // Idle cores and nothing ready: ask a random other node, or, after two
    // empty answers, wait on lifelines registered with every other node.
    if (!o_.steal || o_.nodes < 2 || node.asking || node.ledger.free_cores() == 0 || node.graph.ready_count() > 0 ||
        ended_ == static_cast<int>(jobs_.size()))
      return;
    if (node.empty_answers >= 2) {
      if (!node.lifeline_out) {
        node.lifeline_out = true;
        for (int v = 0; v < o_.nodes; ++v)
          if (v != k) {
            auto& victim = nodes_[static_cast<std::size_t>(v)];
            if (std::find(victim.lifelines.begin(), victim.lifelines.end(), k) == victim.lifelines.end())
              victim.lifelines.push_back(k);
          }
      }
      return;
    }
    std::uniform_int_distribution<int> pick(0, o_.nodes - 2);
    int victim = pick(rng_);
    if (victim >= k) ++victim;
    node.asking = true;
    message(EventKind::steal_request, k, victim);
  }

  const std::vector<SimJob>& jobs_;
  SimOptions o_;
  std::mt19937_64 rng_;
  std::vector<Node> nodes_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::int64_t next_order_ = 0;
  double now_ = 0;
  int ended_ = 0;
  bool all_single_ = false;
  bool mixed_ = false;
  std::vector<Running> running_;                              // per job
  std::map<std::pair<int, int>, std::size_t> lent_attempt_;   // (node, worker) -> its lent attempt
  std::vector<bool> has_dependents_;
  SimResult result_;
};

}  // namespace

SimResult simulate(const std::vector<SimJob>& jobs, const SimOptions& options) {
  check(jobs, options);
  return Simulation(jobs, options).run();
}

}  // namespace packtrain
