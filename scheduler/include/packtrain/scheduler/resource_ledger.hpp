#pragma once
// Who holds what on a node: each worker's core (free, a job's, or lent to
// an elastic job), GPU slots and their device memory, memory, and the
// leases of lent cores.
//
// Cores are known by their worker index (0..cores-1), as the executor
// numbers them. A job holds whole cores, a GPU slot and memory from the
// moment it is placed until its end; an elastic job (Job::max_cores) may
// also hold lent cores, one lease each, which can be asked back. Lent cores
// count as in use (never more running threads than cores).
//
// GPUs are known by their place in the ledger's list (0..gpu_count()-1).
// Each has a number of slots (jobs at once) and, when accounted, device
// memory: a job's slot takes its Demand::gpu_memory_mb of it. A job goes to
// the GPU with a free slot and the most free memory (ties: the lower one),
// so jobs spread over GPUs. A GPU whose job ran out of memory can give up a
// slot (retire_slot): it takes one job fewer from then on.
//
// Pure bookkeeping: no clock, no threads, no calls out. The runner (or a
// simulator) records here what it carried out; the placement policy reads
// it. Not thread-safe: the runner holds its lock around every call.
//
//   ResourceLedger ledger(4, /*gpus=*/0, /*memory_mb=*/8192);
//   ResourceLedger with_gpu(4, {{.memory_mb = 80000, .slots = 4}}, 8192);
//   ledger.hold(7, {0, 1}, {.cores = 2});
//   ledger.free_cores();           // 2
//   ledger.release(7);
#include <packtrain/scheduler/resources.hpp>

#include <cstdint>
#include <map>
#include <vector>

namespace packtrain {

// What a job needs to start.
struct Demand {
  int cores = 1;
  int gpus = 0;                     // GPU slots: 0 or 1
  std::uint64_t memory_mb = 0;
  std::uint64_t gpu_memory_mb = 0;  // of the slot's GPU (when its memory is accounted)
};

// What a GPU has free: slots and (accounted) memory.
struct GpuFree {
  int slots = 0;
  std::uint64_t memory_mb = 0;
  bool accounted = false;  // memory_mb means something
};
// The GPU (index into `gpus`) a demand for a slot goes to: a free slot and
// enough free memory, the most free memory first (ties: the lower index;
// unaccounted GPUs rank by free slots). -1: none fits, or the demand has
// no GPU.
int pick_gpu(const std::vector<GpuFree>& gpus, const Demand& demand);

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

  // The GPU a job holds a slot of: its place in the ledger's list and its
  // slot number there, the lowest free one: below the GPU's slots when
  // taken, though a job seated before retire_slot may keep a higher one.
  struct Seat {
    int gpu = -1;
    int slot = -1;
  };

  ResourceLedger() = default;
  // `gpus` GPUs of one slot each, memory not accounted (the simulator's slots).
  ResourceLedger(int cores, int gpus, std::uint64_t memory_mb);
  ResourceLedger(int cores, const std::vector<GpuDevice>& gpus, std::uint64_t memory_mb);

  int cores() const { return static_cast<int>(owner_.size()); }
  int free_cores() const { return cores() - cores_in_use_; }
  int gpu_count() const { return static_cast<int>(gpus_.size()); }
  int free_gpus() const;  // free slots, all GPUs together
  int gpu_slots(int gpu) const { return gpus_[gpu].slots; }
  int gpu_jobs(int gpu) const { return gpus_[gpu].in_use; }  // jobs in its slots now (may exceed slots once retired)
  std::uint64_t gpu_memory_in_use_mb(int gpu) const { return gpus_[gpu].memory_in_use; }
  std::vector<GpuFree> gpu_free() const;
  std::uint64_t free_memory_mb() const { return memory_mb_ - memory_in_use_; }
  int cores_in_use() const { return cores_in_use_; }   // held by jobs or lent
  int peak_cores_in_use() const { return peak_cores_in_use_; }
  bool is_free(int worker) const { return owner_[worker] == kFree; }
  bool fits(const Demand& demand) const {
    return demand.cores <= free_cores() && demand.memory_mb <= free_memory_mb() &&
           (demand.gpus == 0 || pick_gpu(gpu_free(), demand) >= 0);
  }

  // A job takes `workers` (free; the first runs it), its memory and, when
  // it asks for a GPU slot, one of `gpu` (-1: pick_gpu's choice).
  void hold(int job, const std::vector<int>& workers, const Demand& demand, int gpu = -1);
  // The workers a job holds (not its lent cores), the first running it.
  const std::vector<int>& workers_of(int job) const;
  // The GPU slot a job holds (gpu -1: none).
  Seat seat_of(int job) const;
  // The job ended: its workers, GPU slot and memory are free again.
  void release(int job);
  // A job on `gpu` ran out of its memory: the GPU takes one job fewer from
  // now on (the jobs in its slots run on). Never below one slot: false
  // when it had one already (nothing changed).
  bool retire_slot(int gpu);

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
    Seat seat;
  };
  struct Gpu {
    int slots = 1;
    std::uint64_t memory_mb = 0;  // 0: not accounted
    std::uint64_t memory_in_use = 0;
    std::vector<bool> taken;      // per slot number (grows; retired slots stay numbered)
    int in_use = 0;
  };
  Elastic* find_elastic(int job);
  void use_cores(int n);

  std::vector<int> owner_;      // per worker: the job holding it or lent it, or kFree
  std::vector<Gpu> gpus_;
  std::uint64_t memory_mb_ = 0;
  int cores_in_use_ = 0, peak_cores_in_use_ = 0;
  std::uint64_t memory_in_use_ = 0;
  std::map<int, Held> held_;
  std::vector<Elastic> elastic_;
  std::vector<Lease> leases_;
  int asked_back_ = 0;
};

}  // namespace packtrain
