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
#include <optional>
#include <string>
#include <vector>

namespace packtrain {

struct NodeResources {
  std::vector<int> cores;        // CPU ids jobs may be pinned to, ascending
  std::uint64_t memory_mb = 0;   // memory jobs may use in all
  int gpus = 0;                  // CUDA devices (0 in a CPU build)
  int physical_cores = 0;        // from hwloc, for the record (0 if unknown)
  std::optional<double> cgroup_cpu_limit;  // quota / period, when one is set

  int core_count() const { return static_cast<int>(cores.size()); }
};

struct ResourceProbe {
  std::optional<int> requested_cores;  // --cores: none = all usable; < 1 or more than usable is an Error
  std::string cgroup_root = "/sys/fs/cgroup";       // where cgroup files are read
  std::string proc_self_cgroup = "/proc/self/cgroup";
  std::optional<std::vector<int>> affinity;          // fake affinity mask (tests); else sched_getaffinity
  std::optional<std::uint64_t> physical_memory_mb;   // fake physical memory (tests)
};

// Throws packtrain::Error when requested_cores is below 1 or above the usable
// count (naming both numbers).
NodeResources detect_node_resources(const ResourceProbe& probe = {});

// The CPU quota of the cgroup this process is in, as a core count
// (e.g. 1.5 for "150000 100000"), or nothing when unlimited or unknown.
std::optional<double> cgroup_cpu_limit(const std::string& cgroup_root, const std::string& proc_self_cgroup);

// The memory limit of that cgroup in MiB, or nothing when unlimited or unknown.
std::optional<std::uint64_t> cgroup_memory_limit_mb(const std::string& cgroup_root,
                                                    const std::string& proc_self_cgroup);

// The CPUs in the calling thread's affinity mask.
std::vector<int> affinity_cores();

}  // namespace packtrain
