#pragma once
// The placement policy: which ready job goes on which cores, which idle core
// is lent to an elastic job, which lent core is asked back (DESIGN.md
// decisions 3 and 11).
//
// A pure function of the ledger, the ready jobs and their estimates: no
// clock, no sleep, no I/O, no calls out. The runner (or a simulator driving
// it in virtual time) carries out the decisions, in order, and records them
// in the ledger; nothing is decided twice, because every call starts from
// the ledger as it is.
//
// The rules:
//  - Longest first, work-conserving: ready jobs are taken longest first
//    (ties: lower index), and every one that fits (free whole cores, a GPU
//    slot with its memory, memory) starts, on the lowest free workers and in
//    a slot of the GPU pick_gpu chooses; a job that does not fit
//    lets a shorter one behind it start. An idle core never waits while a
//    job that fits is ready.
//  - Asking back: when the longest job that still waits would fit with the
//    cores lent to elastic jobs, enough leases are asked back for it (those
//    asked back already count), the newest lease of the elastic job with the
//    most lent cores first; nothing is lent while it waits.
//  - Lending: otherwise each free core is lent to the elastic job with the
//    fewest cores below its maximum (ties: the one that registered first).
//
//   std::vector<ReadyJob> ready = {{.job = 3, .demand = {.cores = 2}, .cost = 9}};
//   for (const auto& d : place(ledger, ready))
//     if (d.kind == Decision::Kind::start) ledger.hold(d.job, d.workers, ...);
#include <packtrain/scheduler/resource_ledger.hpp>

#include <limits>
#include <vector>

namespace packtrain {

struct ReadyJob {
  int job = 0;
  Demand demand;
  double cost = 1.0;  // the job's estimate: longest first
};

struct Decision {
  enum class Kind {
    start,     // start `job` on `workers` (the first runs it)
    lend,      // lend the core of `workers[0]` to elastic job `job`
    ask_back,  // ask elastic job `job` to give back the core of `workers[0]`
  };
  Kind kind = Kind::start;
  int job = 0;
  std::vector<int> workers;
  int gpu = -1;  // start: the GPU (ledger index) of its slot, when it asks for one

  bool operator==(const Decision&) const = default;
};

// `ready`: the ready jobs, in any order.
std::vector<Decision> place(const ResourceLedger& ledger, const std::vector<ReadyJob>& ready);

// Mixed CPU/GPU placement (DESIGN.md decision 12): a job that can run on
// its CPU cores or in one GPU slot (a ledger GPU) goes where it is expected
// to finish first. Jobs are taken longest first (cost); for each, the
// expected finish is its seconds there if that place is free now, else the
// forecast wait for the next such place plus its seconds there. The best
// place free now: it starts there. The best place not free: it waits for
// it (and that place's forecast grows by its seconds, so the next job
// counts it), while shorter jobs may take what is free. Elastic lending is
// not part of it.
struct ReadyChoice {
  int job = 0;
  double cost = 1.0;
  Demand cpu;                // its cores (and memory) on the CPU
  double cpu_seconds = 0;    // expected on `cpu`; <= 0: it cannot run on the CPU
  double gpu_seconds = 0;    // expected in one GPU slot; <= 0: it cannot run on a GPU
  std::uint64_t gpu_memory_mb = 0;  // of the slot's GPU
};
// Seconds from now until the next busy core (slot) is expected to free:
// the running jobs' expected ends; infinite when none is busy. A job
// started in this placement counts too (it frees its place after its seconds).
struct Forecast {
  double core_free_in = std::numeric_limits<double>::infinity();
  double gpu_slot_free_in = std::numeric_limits<double>::infinity();
};
struct MixedDecision {
  int job = 0;
  bool gpu = false;          // in a GPU slot (Demand{.cores = 0, .gpus = 1}), else on `workers`
  std::vector<int> workers;  // the CPU cores, lowest free first
  int device = -1;           // the GPU (ledger index) of its slot
  bool operator==(const MixedDecision&) const = default;
};
std::vector<MixedDecision> place_mixed(const ResourceLedger& ledger, const std::vector<ReadyChoice>& ready,
                                       Forecast forecast);

}  // namespace packtrain
