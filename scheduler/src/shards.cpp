#include <packtrain/scheduler/shards.hpp>

#include <packtrain/scheduler/error.hpp>

#include <algorithm>
#include <map>
#include <numeric>

namespace packtrain {

std::vector<std::string> dependency_groups(const std::vector<Job>& jobs) {
  // Union-find over the `after` edges.
  std::map<std::string, std::size_t> index;
  for (std::size_t j = 0; j < jobs.size(); ++j) index.emplace(jobs[j].id(), j);
  std::vector<std::size_t> parent(jobs.size());
  std::iota(parent.begin(), parent.end(), std::size_t{0});
  const auto group_of = [&](std::size_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  for (std::size_t j = 0; j < jobs.size(); ++j)
    for (const auto& dep : jobs[j].after)
      if (const auto it = index.find(dep); it != index.end()) parent[group_of(j)] = group_of(it->second);
  std::map<std::size_t, std::string> key;
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    if (!jobs[j].after.empty()) continue;
    auto& k = key[group_of(j)];
    const auto id = jobs[j].id();
    if (k.empty() || id < k) k = id;
  }
  std::vector<std::string> out(jobs.size());
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    const auto it = key.find(group_of(j));
    // A group without a root is a cycle, which the runner refuses.
    out[j] = it != key.end() ? it->second : jobs[group_of(j)].id();
  }
  return out;
}

std::vector<int> deal_shards(const std::vector<Job>& jobs, int shares) {
  if (shares < 1) throw Error("a sweep cannot be split into " + std::to_string(shares) + " shares");
  const auto groups = dependency_groups(jobs);
  std::map<std::string, double> cost;  // group key -> the sum of its jobs' costs
  for (std::size_t j = 0; j < jobs.size(); ++j) cost[groups[j]] += std::max(0.0, jobs[j].cost);
  std::vector<std::pair<double, std::string>> order;
  for (const auto& [key, c] : cost) order.emplace_back(c, key);
  // Longest first; equal costs in key order, so every share deals alike.
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<double> load(static_cast<std::size_t>(shares), 0.0);
  std::vector<int> count(static_cast<std::size_t>(shares), 0);
  std::map<std::string, int> share_of;
  for (const auto& [c, key] : order) {
    // The least loaded share; among equals the one with the fewest groups,
    // then the lowest: jobs without cost estimates still split evenly.
    std::size_t best = 0;
    for (std::size_t s = 1; s < load.size(); ++s)
      if (load[s] < load[best] || (load[s] == load[best] && count[s] < count[best])) best = s;
    load[best] += c;
    ++count[best];
    share_of[key] = static_cast<int>(best);
  }
  std::vector<int> out(jobs.size());
  for (std::size_t j = 0; j < jobs.size(); ++j) out[j] = share_of[groups[j]];
  return out;
}

}  // namespace packtrain
