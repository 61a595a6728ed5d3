#include <packtrain/scheduler/gang_plan.hpp>

#include <packtrain/scheduler/error.hpp>

#include <algorithm>
#include <numeric>
#include <string>

namespace packtrain {

namespace {

// Each job's dependency level: 0 without dependencies, else one more than
// the deepest of them. Throws on a cycle.
std::vector<int> levels_of(const std::vector<std::vector<int>>& after, std::size_t n) {
  std::vector<int> level(n, -1), state(n, 0);  // state: 0 new, 1 on the path, 2 done
  const auto visit = [&](auto&& self, std::size_t j) -> int {
    if (state[j] == 2) return level[j];
    if (state[j] == 1) throw Error("plan_gangs: a dependency cycle");
    state[j] = 1;
    int deepest = -1;
    if (j < after.size())
      for (int d : after[j]) {
        if (d < 0 || static_cast<std::size_t>(d) >= n) throw Error("plan_gangs: a dependency out of range");
        deepest = std::max(deepest, self(self, static_cast<std::size_t>(d)));
      }
    state[j] = 2;
    return level[j] = deepest + 1;
  };
  for (std::size_t j = 0; j < n; ++j) visit(visit, j);
  return level;
}

}  // namespace

GangPlan plan_gangs(const GangPlanInput& in) {
  const std::size_t n = in.costs.size();
  if (in.ranks_per_job < 1 || in.ranks_per_job > in.world)
    throw Error("plan_gangs: ranks per job " + std::to_string(in.ranks_per_job) + " outside 1.." +
                std::to_string(in.world));
  if (in.lanes < 1 || in.solo_slots < 1) throw Error("plan_gangs: lanes and solo slots must be at least 1");
  if (!in.after.empty() && in.after.size() != n) throw Error("plan_gangs: `after` and `costs` differ in size");
  if (!(in.gang_efficiency > 0)) throw Error("plan_gangs: the gang efficiency must be above 0");
  const auto level = levels_of(in.after, n);

  GangPlan plan;
  plan.first_rank.assign(n, 0);
  plan.ranks.assign(n, {});
  plan.lane.assign(n, -1);
  plan.follows.assign(n, -1);
  const int r = in.ranks_per_job;
  plan.groups = in.world / r;
  const int solo_ranks = in.world - plan.groups * r;

  // The units a job can go to: the groups' lanes first, then the solo slots.
  struct Unit {
    int lane = -1;   // group * lanes + lane, or -1
    int rank = 0;    // a lane's first member, or the solo rank
    double speed = 1;
    double free_at = 0;
    int last = -1;   // the last job given to a lane
  };
  std::vector<Unit> units;
  for (int g = 0; g < plan.groups; ++g)
    for (int l = 0; l < in.lanes; ++l)
      units.push_back({.lane = g * in.lanes + l, .rank = g * r, .speed = r * in.gang_efficiency});
  for (int s = 0; s < solo_ranks; ++s)
    for (int k = 0; k < in.solo_slots; ++k) units.push_back({.rank = plan.groups * r + s});
  if (r == 1)  // no gangs: one rank is a group of one; every job runs alone
    for (auto& u : units) u.speed = 1, u.lane = -1;

  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return level[a] != level[b] ? level[a] < level[b] : in.costs[a] > in.costs[b];
  });
  for (std::size_t j : order) {
    std::size_t best = 0;
    double best_end = 0;
    for (std::size_t u = 0; u < units.size(); ++u) {
      const double end = units[u].free_at + in.costs[j] / units[u].speed;
      if (u == 0 || end < best_end) best = u, best_end = end;
    }
    auto& unit = units[best];
    unit.free_at = best_end;
    plan.first_rank[j] = unit.rank;
    if (unit.lane >= 0) {
      plan.lane[j] = unit.lane;
      for (int m = 0; m < r; ++m) plan.ranks[j].push_back(unit.rank + m);
      plan.follows[j] = unit.last;
      unit.last = static_cast<int>(j);
    }
  }
  return plan;
}

}  // namespace packtrain
