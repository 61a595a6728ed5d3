#pragma once
// The real placement policy in virtual time (DESIGN.md decision 11;
// `packtrain simulate`): the runner's JobGraph, ResourceLedger and place()
// on every simulated node, driven by a discrete-event clock instead of
// threads, and between nodes the work-sharing protocol's decisions
// (distributed/mpi_sharing.hpp): the longest-first round-robin deal, a node
// with idle cores and nothing ready asks a random other node for half of
// its ready jobs, after two empty answers it registers a lifeline that the
// next node with spare ready jobs serves, and the end of a job that others
// wait for reaches the other nodes after the message latency (their
// dependents wait for it; it re-arms their asking). Unlike the real
// protocol, the end of a job nobody waits for is not sent (it changes no
// decision: it makes nothing ready), and registering a lifeline takes no
// time: a simulation of 100,000 jobs on 100 nodes stays fast.
//
// Elastic jobs (Job::max_cores: Hogwild, growing replicas) are lent idle
// cores and asked to give them back as place() decides; a lent core adds
// `elastic_efficiency` of a core's speed to the job (its measured scaling),
// and a core asked back returns at once. With GPU slots on the nodes, each
// ready job goes where it is expected to finish first, on its CPU cores or
// in a slot (place_mixed, DESIGN.md decision 12; no lending then). Not
// modelled: retries.
//
//   std::vector<SimJob> jobs = {{.name = "a", .cost = 2, .seconds = 2}, {.name = "b", .cost = 1, .seconds = 1}};
//   auto result = simulate(jobs, SimOptions{.nodes = 1, .cores = 2});
//   result.makespan;  // 2
//
// Deterministic: the same jobs and options give the same result (the
// victims are drawn from a generator seeded by SimOptions::seed).
#include <cstdint>
#include <string>
#include <vector>

namespace packtrain {

struct SimJob {
  std::string id;            // for the trace (Job::id())
  std::string name;
  std::vector<int> after;    // indices of the jobs it waits for
  double cost = 1.0;         // the policy's estimate (Job::cost): longest first
  double seconds = 1.0;      // how long it runs on its cores (the prediction)
  int cores = 1;
  std::uint64_t memory_mb = 0;
  double gpu_seconds = 0;           // in one GPU slot (0: CPU only)
  int max_cores = 0;                // elastic: up to this many with lent cores (0: just `cores`)
  double elastic_efficiency = 1.0;  // a lent core's share of a core's speed (1: perfect scaling)
};

struct SimOptions {
  int nodes = 1;
  int cores = 1;                   // per node
  std::uint64_t memory_mb = 0;     // per node; 0: as much as the jobs ask
  int gpu_slots = 0;               // per node: GPUs x jobs per GPU
  double latency_s = 5e-6;         // one message between nodes
  bool steal = true;               // false: each node runs its deal alone (--shard-like)
  std::uint64_t seed = 1;
};

// One job's run: on `node`, workers `cores`, from `start` to `end` (seconds);
// for an elastic job, also each core lent to it, as an attempt of its own
// with `lent` true.
struct SimAttempt {
  int job = 0;
  int node = 0;
  std::vector<int> cores;
  double start = 0;
  double end = 0;
  bool lent = false;
  int gpu_slot = -1;  // in this GPU slot of the node (cores empty), or -1
};

struct SimResult {
  double makespan = 0;
  double job_seconds = 0;                  // the jobs' own times, summed
  double core_seconds = 0;                 // the cores' busy time (their own and lent), summed
  std::vector<SimAttempt> attempts;        // in start order
  std::vector<double> node_busy;           // per node: core-seconds busy
  std::vector<double> node_gpu_busy;       // per node: GPU-slot-seconds busy
  int gpu_jobs = 0;                        // jobs placed in a GPU slot
  int steal_requests = 0;
  int steals = 0;                          // requests answered with jobs
  int lifeline_gifts = 0;
  int jobs_moved = 0;
  std::int64_t events = 0;
  // ideal / makespan: the jobs' core-seconds over every core for the makespan.
  double efficiency(const SimOptions& o) const {
    return makespan > 0 ? core_seconds / (makespan * o.nodes * o.cores) : 1.0;
  }
};

// Throws packtrain::Error for options or jobs it cannot simulate (no node or
// core, a job wider than a node, an unknown or cyclic dependency, a
// negative time).
SimResult simulate(const std::vector<SimJob>& jobs, const SimOptions& options);

}  // namespace packtrain
