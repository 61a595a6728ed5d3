#include <packtrain/scheduler/resources.hpp>

#include <packtrain/scheduler/error.hpp>

#include <hwloc.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

namespace packtrain {
namespace {

std::optional<std::string> read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return line;
}

// The cgroup folders to look in, innermost first: v2's unified path
// ("0::/a/b" in /proc/self/cgroup) and its ancestors, then the root itself
// (inside a container the namespace root is where the limit shows).
std::vector<std::string> cgroup_dirs(const std::string& root, const std::string& proc_self_cgroup,
                                     const std::string& v1_controller) {
  std::vector<std::string> dirs;
  std::ifstream in(proc_self_cgroup);
  std::string line;
  while (std::getline(in, line)) {
    // hierarchy-ID:controller-list:path
    const auto a = line.find(':');
    const auto b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    std::string base = root;
    if (controllers.empty()) {
      // v2
    } else {
      std::stringstream list(controllers);
      std::string c;
      bool has = false;
      while (std::getline(list, c, ',')) has |= (c == v1_controller);
      if (!has) continue;
      base = root + "/" + controllers;
    }
    while (true) {
      dirs.push_back(base + (path == "/" ? "" : path));
      if (path.empty() || path == "/") break;
      path = path.substr(0, path.rfind('/'));
      if (path.empty()) path = "/";
    }
  }
  dirs.push_back(root);
  return dirs;
}

}  // namespace

std::optional<double> cgroup_cpu_limit(const std::string& root, const std::string& proc_self_cgroup) {
  std::optional<double> limit;
  auto take = [&](double cores) { limit = limit ? std::min(*limit, cores) : cores; };
  for (const auto& dir : cgroup_dirs(root, proc_self_cgroup, "cpu")) {
    // v2: "max 100000" or "150000 100000"
    if (auto line = read_first_line(dir + "/cpu.max")) {
      std::istringstream in(*line);
      std::string quota;
      double period = 0;
      if (in >> quota >> period && quota != "max" && period > 0) take(std::stod(quota) / period);
    }
    // v1: cpu.cfs_quota_us is -1 when unlimited
    auto quota = read_first_line(dir + "/cpu.cfs_quota_us");
    auto period = read_first_line(dir + "/cpu.cfs_period_us");
    if (quota && period) {
      const double q = std::stod(*quota), p = std::stod(*period);
      if (q > 0 && p > 0) take(q / p);
    }
  }
  return limit;
}

std::optional<std::uint64_t> cgroup_memory_limit_mb(const std::string& root, const std::string& proc_self_cgroup) {
  std::optional<std::uint64_t> limit;
  for (const auto& dir : cgroup_dirs(root, proc_self_cgroup, "memory")) {
    for (const char* file : {"/memory.max", "/memory.limit_in_bytes"}) {
      auto line = read_first_line(dir + file);
      if (!line || *line == "max") continue;
      try {
        const auto bytes = std::stoull(*line);
        // v1 reports "no limit" as a huge number near 2^63.
        if (bytes >= (1ULL << 60)) continue;
        const std::uint64_t mb = bytes >> 20;
        limit = limit ? std::min(*limit, mb) : mb;
      } catch (const std::exception&) {
      }
    }
  }
  return limit;
}

std::vector<int> affinity_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cores;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cores;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set)) cores.push_back(cpu);
  return cores;
}

namespace {

int hwloc_physical_cores() {
  hwloc_topology_t topology;
  if (hwloc_topology_init(&topology) != 0) return 0;
  int count = 0;
  if (hwloc_topology_load(topology) == 0) count = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_CORE);
  hwloc_topology_destroy(topology);
  return std::max(count, 0);
}

}  // namespace

std::vector<std::vector<int>> share_node_cores(const std::vector<std::vector<int>>& usable, bool oversubscribe) {
  const int n = static_cast<int>(usable.size());
  std::vector<std::vector<int>> shares(static_cast<std::size_t>(n));
  std::set<int> given;
  for (int i = 0; i < n; ++i) {
    auto mine = usable[i];
    std::sort(mine.begin(), mine.end());
    // The processes that found the same cores, and where this one is among them.
    int group = 0, position = 0;
    for (int j = 0; j < n; ++j) {
      auto theirs = usable[j];
      std::sort(theirs.begin(), theirs.end());
      if (theirs != mine) continue;
      if (j < i) ++position;
      ++group;
    }
    const std::size_t size = mine.size();
    const std::size_t begin = size * static_cast<std::size_t>(position) / static_cast<std::size_t>(group);
    const std::size_t end = size * static_cast<std::size_t>(position + 1) / static_cast<std::size_t>(group);
    for (std::size_t k = begin; k < end; ++k)
      if (given.insert(mine[k]).second) shares[i].push_back(mine[k]);
    if (shares[i].empty() && oversubscribe && !mine.empty()) shares[i].push_back(mine[std::min(begin, size - 1)]);
    if (shares[i].empty()) {
      std::set<int> all;
      for (const auto& u : usable) all.insert(u.begin(), u.end());
      throw Error("this node has " + std::to_string(all.size()) + " usable core(s) for " + std::to_string(n) +
                  " processes of the run (MPI ranks on one node share its cores, one at least each): start at "
                  "most " + std::to_string(all.size()) + " rank(s) per node, or pass --oversubscribe to let ranks share cores");
    }
  }
  return shares;
}

NodeResources detect_node_resources(const ResourceProbe& probe) {
  NodeResources node;
  node.cores = probe.affinity ? *probe.affinity : affinity_cores();
  std::sort(node.cores.begin(), node.cores.end());
  if (node.cores.empty()) throw Error("no usable CPU in this process's affinity mask");

  node.cgroup_cpu_limit = cgroup_cpu_limit(probe.cgroup_root, probe.proc_self_cgroup);
  if (node.cgroup_cpu_limit) {
    const auto quota_cores = std::max(1, static_cast<int>(std::floor(*node.cgroup_cpu_limit + 1e-9)));
    if (quota_cores < node.core_count()) node.cores.resize(quota_cores);
  }

  int processes = 1;
  if (probe.share) {
    auto share = probe.share(node.cores);
    node.cores = std::move(share.cores);
    processes = std::max(1, share.processes);
    node.shared_cores = share.shared_cores;
  }

  if (probe.requested_cores) {
    const int n = *probe.requested_cores;
    if (n < 1) throw Error("--cores must be at least 1 (got " + std::to_string(n) + ")");
    if (n > node.core_count())
      throw Error("--cores " + std::to_string(n) + " is more than the " + std::to_string(node.core_count()) +
                  (processes > 1 ? " core(s) this process has of the " + std::to_string(processes) +
                                       " processes' node (ranks on one node share its cores)"
                                 : " usable core(s) of this node"));
    node.cores.resize(n);
    node.shared_cores = std::min(node.shared_cores, n);
  }

  std::uint64_t physical = 0;
  if (probe.physical_memory_mb) {
    physical = *probe.physical_memory_mb;
  } else {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    physical = pages > 0 && page > 0 ? (static_cast<std::uint64_t>(pages) * page) >> 20 : 0;
  }
  const auto cgroup_memory = cgroup_memory_limit_mb(probe.cgroup_root, probe.proc_self_cgroup);
  node.memory_mb = (cgroup_memory ? std::min(physical, *cgroup_memory) : physical) / static_cast<std::uint64_t>(processes);
  node.physical_cores = probe.affinity ? 0 : hwloc_physical_cores();
  // GPUs are found in gpu/ (a CUDA build) and added by the caller (--gpus).
  return node;
}

std::vector<GpuDevice> choose_gpus(const std::vector<GpuDevice>& found, const GpuRequest& request,
                                   std::uint64_t footprint_mb) {
  const int count = static_cast<int>(found.size());
  if (request.gpus < -1) throw Error("--gpus must be 'all' or a count, not " + std::to_string(request.gpus));
  if (request.gpus > count)
    throw Error("--gpus " + std::to_string(request.gpus) + " asks for more GPUs than the " + std::to_string(count) +
                " this process can use");
  if (request.slots < 0 || request.slots > 64)
    throw Error("--gpu-slots must be in 1..64 (0: from the GPU's free memory), not " + std::to_string(request.slots));
  const int n = request.gpus < 0 ? count : request.gpus;
  const std::uint64_t per_job = request.memory_per_job_mb > 0 ? request.memory_per_job_mb : footprint_mb;
  std::vector<GpuDevice> out;
  for (int g = 0; g < n; ++g) {
    GpuDevice gpu = found[static_cast<std::size_t>(g)];
    if (gpu.memory_mb == 0) {  // its free memory unknown: slots as asked (else one), nothing accounted
      gpu.slots = request.slots > 0 ? request.slots : 1;
      out.push_back(std::move(gpu));
      continue;
    }
    const std::uint64_t usable = gpu.memory_mb - gpu.memory_mb / kGpuMemoryReserveDivisor;
    const std::string which = "GPU " + std::to_string(gpu.index) + (gpu.name.empty() ? "" : " (" + gpu.name + ")");
    if (per_job > usable)
      throw Error(which + " has " + std::to_string(usable) + " MiB free for jobs; one job needs " +
                  std::to_string(per_job) + " MiB");
    if (request.slots > 0) {
      gpu.slots = request.slots;
      if (per_job > 0 && per_job > usable / static_cast<std::uint64_t>(request.slots))
        throw Error("--gpu-slots " + std::to_string(request.slots) + " at " + std::to_string(per_job) +
                    " MiB a job needs " + std::to_string(per_job * static_cast<std::uint64_t>(request.slots)) +
                    " MiB but " + which + " has " + std::to_string(usable) + " MiB free for jobs");
    } else {
      gpu.slots = per_job > 0 ? static_cast<int>(std::min<std::uint64_t>(usable / per_job, kMostGpuSlots)) : 1;
    }
    gpu.memory_mb = per_job > 0 ? usable : 0;  // accounted only when a job's size is known
    out.push_back(std::move(gpu));
  }
  return out;
}

}  // namespace packtrain
