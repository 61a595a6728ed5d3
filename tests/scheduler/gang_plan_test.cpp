// plan_gangs: which jobs run as gangs of R ranks, which alone, in what order.
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/gang_plan.hpp>

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <vector>

using namespace packtrain;

namespace {

// Every lane's jobs, from its first by `follows`.
std::map<int, std::vector<int>> lanes_of(const GangPlan& plan) {
  std::map<int, std::vector<int>> lanes;
  std::set<int> followed;
  for (int f : plan.follows)
    if (f >= 0) followed.insert(f);
  for (std::size_t j = 0; j < plan.lane.size(); ++j) {
    if (plan.lane[j] < 0 || plan.follows[j] >= 0) continue;  // a lane's first job follows nothing
    std::vector<int> chain{static_cast<int>(j)};
    for (bool more = true; more;) {
      more = false;
      for (std::size_t k = 0; k < plan.follows.size(); ++k)
        if (plan.follows[k] == chain.back()) {
          chain.push_back(static_cast<int>(k));
          more = true;
          break;
        }
    }
    lanes[plan.lane[j]] = chain;
  }
  return lanes;
}

}  // namespace

TEST(GangPlan, ThreeRanksInGangsOfTwoMixGangAndSoloJobsByExpectedFinish) {
  // Equal jobs: a gang of 2 (at 0.85) ends the first at 0.59; the second
  // ends sooner alone on rank 2 (1.0) than after it (1.18); the third
  // sooner in the gang (1.18) than after the second (2.0).
  const auto plan = plan_gangs({.costs = {1, 1, 1}, .world = 3, .ranks_per_job = 2});
  EXPECT_EQ(plan.groups, 1);
  EXPECT_EQ(plan.ranks[0], (std::vector<int>{0, 1}));
  EXPECT_TRUE(plan.ranks[1].empty());
  EXPECT_EQ(plan.first_rank[1], 2);
  EXPECT_EQ(plan.ranks[2], (std::vector<int>{0, 1}));
  EXPECT_EQ(plan.lane, (std::vector<int>{0, -1, 0}));
  EXPECT_EQ(plan.follows, (std::vector<int>{-1, -1, 0}));
}

TEST(GangPlan, EveryJobIsAGangWhenTheGroupsCoverTheWorldAndLanesRunLongestFirst) {
  // 4 ranks in 2 groups of 2, 2 lanes each: 4 lanes for 6 jobs.
  const auto plan = plan_gangs({.costs = {1, 6, 2, 5, 3, 4}, .world = 4, .ranks_per_job = 2, .lanes = 2});
  EXPECT_EQ(plan.groups, 2);
  for (std::size_t j = 0; j < 6; ++j) {
    ASSERT_EQ(plan.ranks[j].size(), 2u) << j;
    EXPECT_EQ(plan.ranks[j][1], plan.ranks[j][0] + 1);
    EXPECT_EQ(plan.first_rank[j], plan.ranks[j][0]);
    EXPECT_EQ(plan.first_rank[j] / 2, plan.lane[j] / 2) << "lane " << plan.lane[j] << " is group " << plan.lane[j] / 2 << "'s";
  }
  const auto lanes = lanes_of(plan);
  EXPECT_EQ(lanes.size(), 4u);
  std::set<int> seen;
  for (const auto& [lane, jobs] : lanes) {
    for (std::size_t i = 1; i < jobs.size(); ++i)
      EXPECT_GE(std::vector<double>({1, 6, 2, 5, 3, 4})[jobs[i - 1]], std::vector<double>({1, 6, 2, 5, 3, 4})[jobs[i]]);
    seen.insert(jobs.begin(), jobs.end());
  }
  EXPECT_EQ(seen.size(), 6u) << "every job is in one lane";
}

TEST(GangPlan, NoLaneWaitsForAJobQueuedBehindIt) {
  // An lth-like sweep: the dense run 0, then retrains that depend on it and
  // cost more than it; a second round 5 after retrain 1.
  const auto plan = plan_gangs({.costs = {2, 3, 3, 3, 3, 9},
                                .after = {{}, {0}, {0}, {0}, {0}, {1}},
                                .world = 5,
                                .ranks_per_job = 2,
                                .lanes = 1});
  EXPECT_EQ(plan.groups, 2);
  for (const auto& [lane, jobs] : lanes_of(plan)) {
    for (std::size_t i = 0; i < jobs.size(); ++i)
      for (std::size_t k = i + 1; k < jobs.size(); ++k) {
        // A job later in the lane is never one an earlier one waits for.
        const std::vector<std::vector<int>> after = {{}, {0}, {0}, {0}, {0}, {1}};
        for (int d : after[jobs[i]]) EXPECT_NE(d, jobs[k]) << "lane " << lane;
      }
  }
  EXPECT_NE(plan.lane[0], -1) << "the dense run, longest path first, goes to a gang";
}

TEST(GangPlan, OneRankPerJobMakesNoGangs) {
  const auto plan = plan_gangs({.costs = {3, 2, 1}, .world = 2, .ranks_per_job = 1});
  for (std::size_t j = 0; j < 3; ++j) {
    EXPECT_TRUE(plan.ranks[j].empty());
    EXPECT_EQ(plan.lane[j], -1);
  }
  EXPECT_EQ(plan.first_rank, (std::vector<int>{0, 1, 1}));
}

TEST(GangPlan, BadInputThrows) {
  EXPECT_THROW(plan_gangs({.costs = {1}, .world = 2, .ranks_per_job = 3}), Error);
  EXPECT_THROW(plan_gangs({.costs = {1}, .world = 2, .ranks_per_job = 0}), Error);
  EXPECT_THROW(plan_gangs({.costs = {1}, .world = 2, .ranks_per_job = 2, .lanes = 0}), Error);
  EXPECT_THROW(plan_gangs({.costs = {1, 1}, .after = {{1}, {0}}, .world = 2, .ranks_per_job = 2}), Error);
  EXPECT_THROW(plan_gangs({.costs = {1}, .after = {{4}}, .world = 2, .ranks_per_job = 2}), Error);
}
