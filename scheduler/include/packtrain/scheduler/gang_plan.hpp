#pragma once
// Where the jobs of a sweep run when each may be a gang (`--ranks-per-job R`
// under mpirun: one job trained by R ranks at once, dataparallel/gang.hpp).
//
// The world's ranks form groups of R consecutive ranks ({0..R-1}, {R..2R-1},
// ...); the ranks past the last whole group run jobs alone ("solo" ranks).
// Each group has `lanes` lanes: a lane runs its gang jobs one after another
// on every member, in the same order (Job::follows), with a communicator of
// its own, so the members' exchanges always match and two gangs never wait
// for each other. A job goes, longest first, to the lane or solo slot where
// it is expected to finish first (a gang runs at R x `gang_efficiency` the
// speed of one rank); jobs are taken in dependency levels (a job after the
// ones it depends on), so no lane waits for a job queued behind it.
//
// A pure function of its arguments: every rank computes the same plan.
//
//   auto plan = plan_gangs({.costs = {5, 4, 3}, .world = 3, .ranks_per_job = 2});
//   plan.ranks[0];     // {0, 1}: a gang of group 0
//   plan.first_rank[1] // 2: the solo rank starts with it
#include <vector>

namespace packtrain {

struct GangPlanInput {
  std::vector<double> costs;             // per job
  std::vector<std::vector<int>> after;   // per job: indices of the jobs it depends on (may be empty)
  int world = 1;                         // ranks
  int ranks_per_job = 1;                 // R, 1..world
  int lanes = 1;                         // gang lanes per group (at least 1)
  int solo_slots = 1;                    // jobs at once on a solo rank
  double gang_efficiency = 0.85;         // a gang's speed over R ranks' (the exchanges' cost)
};

struct GangPlan {
  std::vector<int> first_rank;           // per job: the rank that starts with it (a gang's first member)
  std::vector<std::vector<int>> ranks;   // per job: its gang's ranks; empty for a solo job
  std::vector<int> lane;                 // per job: group * lanes + lane, or -1 for a solo job
  std::vector<int> follows;              // per job: the job before it in its lane, or -1
  int groups = 0;                        // world / R
};

// Throws packtrain::Error on bad input (R outside 1..world, lanes or
// solo_slots below 1, sizes that do not match, a dependency out of range or
// a cycle).
GangPlan plan_gangs(const GangPlanInput& input);

}  // namespace packtrain
