#pragma once
// What a node offers jobs: usable cores, memory and GPUs.
//
// Usable cores are the CPUs in this process's affinity mask (what taskset,
// SLURM and mpirun's binding leave us), cut down to the cgroup CPU quota
// (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`) rounded
// down, at least one. Memory is the smaller of physical memory and the
// cgroup memory limit. Every input can be pointed at fake files for tests.
//
//   auto node = packtrain::detect_node_resources();        // everything usable
//   auto four = packtrain::detect_node_resources({.requested_cores = 4});

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace packtrain {

// A GPU jobs may use, and how they share it: `slots` jobs at once, each on
// its own CUDA stream, within `memory_mb` of device memory in all (gpu/
// finds them in a CUDA build; tests and `simulate` make them up).
struct GpuDevice {
  int index = 0;                // CUDA ordinal as this process sees it (after CUDA_VISIBLE_DEVICES)
  std::string name;             // "NVIDIA H200"
  std::uint64_t memory_mb = 0;  // device memory the slots' jobs may hold in all; 0: not accounted
  int slots = 1;                // jobs at once (--gpu-slots)
};

struct NodeResources {
  std::vector<int> cores;        // CPU ids jobs may be pinned to, ascending
  std::uint64_t memory_mb = 0;   // memory jobs may use in all
  std::vector<GpuDevice> gpus;   // the GPUs jobs may use (--gpus; none in a CPU build)
  int physical_cores = 0;        // from hwloc, for the record (0 if unknown)
  std::optional<double> cgroup_cpu_limit;  // quota / period, when one is set
  int shared_cores = 0;          // of `cores`, counted by another process of the node (NodeShare)

  int core_count() const { return static_cast<int>(cores.size()); }
  int gpu_count() const { return static_cast<int>(gpus.size()); }
  int gpu_slot_count() const {
    int n = 0;
    for (const auto& g : gpus) n += g.slots;
    return n;
  }
};

// This process's part of a node that other processes of the run share
// (MPI ranks on one node): its cores, and how many processes divide the
// node's memory.
struct NodeShare {
  std::vector<int> cores;
  int processes = 1;
  int shared_cores = 0;  // of `cores`, held by an earlier process of the node too (oversubscribed)
};

struct ResourceProbe {
  std::optional<int> requested_cores;  // --cores: none = all usable; < 1 or more than usable is an Error
  // Given the usable cores, this process's share of the node (MPI: see
  // share_node_cores); --cores then counts within the share. None: the
  // process has the node to itself.
  std::function<NodeShare(const std::vector<int>& usable)> share;
  std::string cgroup_root = "/sys/fs/cgroup";       // where cgroup files are read
  std::string proc_self_cgroup = "/proc/self/cgroup";
  std::optional<std::vector<int>> affinity;          // fake affinity mask (tests); else sched_getaffinity
  std::optional<std::uint64_t> physical_memory_mb;   // fake physical memory (tests)
};

// Throws packtrain::Error when requested_cores is below 1 or above the usable
// count (naming both numbers).
NodeResources detect_node_resources(const ResourceProbe& probe = {});

// Divides a node's cores between the processes on it (MPI ranks), so that
// no two share a core. usable[i] is what local process i found usable (its
// affinity mask and the cgroup quota): with `mpirun --bind-to none` every
// rank finds every core, with `--bind-to core` each finds its own. Processes
// that found the same cores divide them in order, in contiguous blocks as
// even as whole cores allow (5 cores for 2: 2 and 3); a core already given
// to an earlier process is never given again. Throws Error naming the counts
// when a process would get no core. The result is the same on every process
// given the same `usable`, so all of them refuse together. With
// `oversubscribe` a process that would get no core gets one that others
// hold too, spread evenly over the cores it found (4 processes on 2 cores:
// 0, 0, 1, 1), and nothing is refused.
std::vector<std::vector<int>> share_node_cores(const std::vector<std::vector<int>>& usable, bool oversubscribe = false);

// The CPU quota of the cgroup this process is in, as a core count
// (e.g. 1.5 for "150000 100000"), or nothing when unlimited or unknown.
std::optional<double> cgroup_cpu_limit(const std::string& cgroup_root, const std::string& proc_self_cgroup);

// The memory limit of that cgroup in MiB, or nothing when unlimited or unknown.
std::optional<std::uint64_t> cgroup_memory_limit_mb(const std::string& cgroup_root,
                                                    const std::string& proc_self_cgroup);

// What --gpus, --gpu-slots and --gpu-memory-per-job ask for.
struct GpuRequest {
  int gpus = 0;                      // the first N GPUs found; -1: all of them ("all")
  int slots = 0;                     // jobs per GPU; 0: as many as its free memory holds
  std::uint64_t memory_per_job_mb = 0;  // each job's share of a GPU; 0: its measured footprint
};

// The most jobs one GPU takes when its slots are not given: past this their
// kernels only queue behind each other (HFTA and MPS measure gains up to
// about 8 small models a GPU).
inline constexpr int kMostGpuSlots = 8;
// A GPU's free memory kept back from the slots' jobs (the CUDA context,
// the allocator's fragmentation): a tenth.
inline constexpr std::uint64_t kGpuMemoryReserveDivisor = 10;

// The GPUs a run uses and how they are shared, from the GPUs found (their
// `memory_mb` the free memory when found) and the request. A GPU's slots
// are `slots` if given, else as many as its free memory less the reserve
// holds at the job's size (`memory_per_job_mb`, else `footprint_mb`, the
// model's measured need), 1 to kMostGpuSlots; with no size known, one. Its
// memory becomes that usable memory, accounted in the ledger when a job's
// size is known; a GPU found without its memory gets the slots asked for
// (else one), unaccounted. Throws Error, naming the numbers, when more GPUs are asked
// for than were found, slots are out of 1..64, or the slots' jobs cannot fit
// a GPU's memory.
std::vector<GpuDevice> choose_gpus(const std::vector<GpuDevice>& found, const GpuRequest& request,
                                   std::uint64_t footprint_mb = 0);

// The CPUs in the calling thread's affinity mask.
std::vector<int> affinity_cores();

}  // namespace packtrain
