#pragma once
// Who holds what on a node: each worker's core (free, a job's, or lent to
// an elastic job), GPU slots and memory, and the leases of lent cores.
//
// Cores are known by their worker index (0..cores-1), as the executor
// numbers them. A job holds whole cores, GPUs and memory from the moment it
// is placed until its end; an elastic job (Job::max_cores) may also hold
// lent cores, one lease each, which can be asked back. Lent cores count as
// in use (never more running threads than cores).
//
// Pure bookkeeping: no clock, no threads, no calls out. The runner (or a
// simulator) records here what it carried out; the placement policy reads
// it. Not thread-safe: the runner holds its lock around every call.
//
//   ResourceLedger ledger(4, /*gpus=*/0, /*memory_mb=*/8192);
//   ledger.hold(7, {0, 1}, {.cores = 2});
//   ledger.free_cores();           // 2
//   ledger.release(7);
#include <cstdint>
#include <map>
#include <vector>

namespace packtrain {

// What a job needs to start.
struct Demand {
  int cores = 1;
  int gpus = 0;
  std::uint64_t memory_mb = 0;
};

class ResourceLedger {
 public:
  // A running elastic job that has registered its helper.
  struct Elastic {
    int job = 0;
    int cores = 0;          // its own cores (Job::cores)
    int max_cores = 0;      // the most it may have with lent ones
    int lent = 0;           // cores lent to it now
    int asked_back = 0;     // ... of which asked back
  };
  // A core lent to an elastic job.
  struct Lease {
    int worker = 0;
    int job = 0;
    bool asked_back = false;
  };

  ResourceLedger() = default;
  ResourceLedger(int cores, int gpus, std::uint64_t memory_mb);

  int cores() const { return static_cast<int>(owner_.size()); }
  int free_cores() const { return cores() - cores_in_use_; }
  int free_gpus() const { return gpus_ - gpus_in_use_; }
  std::uint64_t free_memory_mb() const { return memory_mb_ - memory_in_use_; }
  int cores_in_use() const { return cores_in_use_; }   // held by jobs or lent
  int peak_cores_in_use() const { return peak_cores_in_use_; }
  bool is_free(int worker) const { return owner_[worker] == kFree; }
  bool fits(const Demand& demand) const {
    return demand.cores <= free_cores() && demand.gpus <= free_gpus() && demand.memory_mb <= free_memory_mb();
  }

  // A job takes `workers` (free; the first runs it) and its GPUs and memory.
  void hold(int job, const std::vector<int>& workers, const Demand& demand);
  // The workers a job holds (not its lent cores), the first running it.
  const std::vector<int>& workers_of(int job) const;
  // The job ended: its workers, GPUs and memory are free again.
  void release(int job);

  // Elastic jobs, in the order they registered.
  void open_elastic(int job, int cores, int max_cores);
  // The job is ending: it gets no more cores, and its leases count as asked back.
  void close_elastic(int job);
  // The job wants no more cores (a helper of it returned without being asked
  // back); the cores lent to it now stay until their helpers return.
  void stop_lending(int job);
  const std::vector<Elastic>& elastic() const { return elastic_; }

  void lend(int worker, int job);
  void ask_back(int worker);
  void end_lease(int worker);
  const std::vector<Lease>& leases() const { return leases_; }  // oldest first
  int lent() const { return static_cast<int>(leases_.size()); }
  int asked_back() const { return asked_back_; }

 private:
  static constexpr int kFree = -1;
  struct Held {
    std::vector<int> workers;
    Demand demand;
  };
  Elastic* find_elastic(int job);
  void use_cores(int n);

  std::vector<int> owner_;      // per worker: the job holding it or lent it, or kFree
  int gpus_ = 0;
  std::uint64_t memory_mb_ = 0;
  int cores_in_use_ = 0, gpus_in_use_ = 0, peak_cores_in_use_ = 0;
  std::uint64_t memory_in_use_ = 0;
  std::map<int, Held> held_;
  std::vector<Elastic> elastic_;
  std::vector<Lease> leases_;
  int asked_back_ = 0;
};

}  // namespace packtrain
