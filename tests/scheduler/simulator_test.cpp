// The placement policy in virtual time: known schedules on one node, every
// job once on many, dependencies across nodes, stealing against a static deal.
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/simulator.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

using namespace packtrain;

namespace {

std::vector<SimJob> jobs_of(const std::vector<double>& seconds) {
  std::vector<SimJob> jobs;
  for (std::size_t i = 0; i < seconds.size(); ++i)
    jobs.push_back({.id = "j" + std::to_string(i), .name = "j" + std::to_string(i), .cost = seconds[i], .seconds = seconds[i]});
  return jobs;
}

// Every job ran once; no two attempts shared a core of a node at once; the
// makespan is the last end.
void expect_valid(const std::vector<SimJob>& jobs, const SimOptions& o, const SimResult& r) {
  std::set<int> seen;
  double last = 0;
  for (const auto& a : r.attempts) {
    last = std::max(last, a.end);
    if (a.lent) {
      EXPECT_EQ(a.cores.size(), 1u);
      continue;
    }
    EXPECT_TRUE(seen.insert(a.job).second) << "job " << a.job << " ran twice";
    if (a.gpu_slot < 0) {
      EXPECT_EQ(static_cast<int>(a.cores.size()), jobs[static_cast<std::size_t>(a.job)].cores);
    }
    EXPECT_GE(a.node, 0);
    EXPECT_LT(a.node, o.nodes);
    for (int c : a.cores) {
      EXPECT_GE(c, 0);
      EXPECT_LT(c, o.cores);
    }
    for (int d : jobs[static_cast<std::size_t>(a.job)].after) {
      const auto dep = std::find_if(r.attempts.begin(), r.attempts.end(), [&](const SimAttempt& x) { return x.job == d; });
      ASSERT_NE(dep, r.attempts.end());
      EXPECT_GE(a.start, dep->end) << "job " << a.job << " started before job " << d << " ended";
    }
  }
  EXPECT_EQ(seen.size(), jobs.size()) << "every job ran";
  for (const auto& a : r.attempts)
    for (const auto& b : r.attempts) {
      if (a.job >= b.job || a.node != b.node || a.end <= b.start || b.end <= a.start) continue;
      for (int c : a.cores)
        EXPECT_EQ(std::count(b.cores.begin(), b.cores.end(), c), 0) << "jobs " << a.job << " and " << b.job << " share a core";
      if (a.gpu_slot >= 0) {
        EXPECT_NE(a.gpu_slot, b.gpu_slot) << "jobs " << a.job << " and " << b.job << " share a GPU slot";
      }
    }
  EXPECT_DOUBLE_EQ(r.makespan, last);
}

}  // namespace

// Longest first on 2 cores (Graham's LPT): 3 | 3, then 2 2 2 fill in.
TEST(Simulator, OneNodeRunsLongestFirstOnEveryFreeCore) {
  const auto jobs = jobs_of({2, 3, 2, 3, 2});
  const SimOptions o{.nodes = 1, .cores = 2};
  const auto r = simulate(jobs, o);
  expect_valid(jobs, o, r);
  EXPECT_DOUBLE_EQ(r.makespan, 7.0);  // 3+2+2 on one core, 3+2 on the other
  EXPECT_EQ(r.attempts[0].job, 1);    // the longest first, ties by index
  EXPECT_EQ(r.attempts[1].job, 3);
  EXPECT_DOUBLE_EQ(r.job_seconds, 12.0);
  EXPECT_NEAR(r.efficiency(o), 12.0 / 14.0, 1e-12);
}

TEST(Simulator, AWideJobWaitsForItsCoresAndShorterJobsFillTheGap) {
  std::vector<SimJob> jobs = jobs_of({4, 1, 1});
  jobs[0].cores = 2;  // needs both cores
  jobs.push_back({.name = "long single", .cost = 5, .seconds = 5});
  const SimOptions o{.nodes = 1, .cores = 2};
  const auto r = simulate(jobs, o);
  expect_valid(jobs, o, r);
  // The 5 s job starts first on core 0; the wide job cannot fit, so the 1 s
  // jobs run beside it; the wide one starts at 5.
  const auto wide = std::find_if(r.attempts.begin(), r.attempts.end(), [](const SimAttempt& a) { return a.job == 0; });
  EXPECT_DOUBLE_EQ(wide->start, 5.0);
  EXPECT_DOUBLE_EQ(r.makespan, 9.0);
}

TEST(Simulator, DependentsWaitForTheirJobWhereverItRanAndHearOfItAfterTheLatency) {
  // A chain a -> b -> c and a fan of short jobs, on 3 nodes.
  std::vector<SimJob> jobs = jobs_of({5, 5, 5, 1, 1, 1, 1, 1, 1});
  jobs[1].after = {0};
  jobs[2].after = {1};
  const SimOptions o{.nodes = 3, .cores = 1, .latency_s = 0.25};
  const auto r = simulate(jobs, o);
  expect_valid(jobs, o, r);
  std::map<int, SimAttempt> by_job;
  for (const auto& a : r.attempts) by_job[a.job] = a;
  for (int j : {1, 2}) {
    const auto& before = by_job[jobs[static_cast<std::size_t>(j)].after[0]];
    const double heard = before.node == by_job[j].node ? before.end : before.end + 0.25;
    EXPECT_GE(by_job[j].start, heard - 1e-12) << "job " << j;
  }
  EXPECT_GE(r.makespan, 15.0);
}

TEST(Simulator, StealingEvensOutADealThatLeftOneNodeTheLongJobs) {
  // 64 jobs estimated alike, so the deal is by index: node 0 of 4 gets
  // every fourth, and those are the ones that take 10 s (the rest 1 s).
  std::vector<SimJob> jobs;
  for (int i = 0; i < 64; ++i)
    jobs.push_back({.name = "j" + std::to_string(i), .cost = 1.0, .seconds = i % 4 == 0 ? 10.0 : 1.0});
  SimOptions o{.nodes = 4, .cores = 1, .latency_s = 1e-3};
  const auto stealing = simulate(jobs, o);
  expect_valid(jobs, o, stealing);
  o.steal = false;
  const auto alone = simulate(jobs, o);
  expect_valid(jobs, o, alone);
  EXPECT_EQ(alone.steals, 0);
  EXPECT_DOUBLE_EQ(alone.makespan, 160.0);  // node 0 runs its 16 long jobs alone
  EXPECT_GT(stealing.steals + stealing.lifeline_gifts, 0);
  EXPECT_GT(stealing.jobs_moved, 0);
  // 208 core-seconds on 4 cores: 52 s at best; 10 s jobs leave a tail.
  EXPECT_GE(stealing.makespan, 52.0);
  EXPECT_LT(stealing.makespan, 70.0);
}

// An elastic job is lent the idle cores and gives one back for a job that
// needs it: 3 cores; E (20 s on 1 core, up to 3) and C (3 s) start, the third
// core is lent to E; when C ends, B (2 cores, after C) needs E's lent core
// back; when B ends both its cores go to E.
TEST(Simulator, AnElasticJobGrowsOntoIdleCoresAndGivesThemBackForAWaitingJob) {
  std::vector<SimJob> jobs = {{.name = "E", .cost = 20, .seconds = 20, .max_cores = 3},
                              {.name = "C", .cost = 3, .seconds = 3},
                              {.name = "B", .after = {1}, .cost = 2, .seconds = 2, .cores = 2}};
  const SimOptions o{.nodes = 1, .cores = 3};
  const auto r = simulate(jobs, o);
  expect_valid(jobs, o, r);
  std::map<int, SimAttempt> own;
  std::vector<SimAttempt> lent;
  for (const auto& a : r.attempts) (a.lent ? lent.push_back(a) : void(own[a.job] = a));
  EXPECT_DOUBLE_EQ(own[2].start, 3.0);  // B at C's end, on C's core and the one E gave back
  EXPECT_DOUBLE_EQ(own[2].end, 5.0);
  // E: 0-3 on 2 cores (6 s of work), 3-5 on 1 (2 s), then 3 cores for the last 12 s: ends at 9.
  EXPECT_DOUBLE_EQ(own[0].end, 9.0);
  EXPECT_DOUBLE_EQ(r.makespan, 9.0);
  ASSERT_EQ(lent.size(), 3u);  // core 2 over 0-3, then cores 1 and 2 over 5-9
  EXPECT_DOUBLE_EQ(lent[0].start, 0.0);
  EXPECT_DOUBLE_EQ(lent[0].end, 3.0);
  // With a lent core worth half a core, E's last 12 s take 6 s on 1 + 2 x 0.5.
  jobs[0].elastic_efficiency = 0.5;
  const auto half = simulate(jobs, o);
  expect_valid(jobs, o, half);
  // 0-3: 1.5 x 3 = 4.5 done; 3-5: 2 more; 13.5 left at 2x: 6.75 s.
  EXPECT_DOUBLE_EQ(half.makespan, 5.0 + 13.5 / 2.0);
}

// Decision 12 in virtual time: six jobs of 10 s on a core or 2 s in the one
// GPU slot, 2 cores: each goes where it finishes first. Four queue for the
// slot (2, 4, 6, 8 s), the fifth and sixth would end at 10 and 12 there, so
// they take the cores (10 s): makespan 10, against 30 on the cores alone.
TEST(Simulator, JobsGoWhereTheyAreExpectedToFinishFirstOnCoresOrAGpuSlot) {
  std::vector<SimJob> jobs;
  for (int i = 0; i < 6; ++i)
    jobs.push_back({.name = "j" + std::to_string(i), .cost = 10, .seconds = 10, .gpu_seconds = 2});
  SimOptions o{.nodes = 1, .cores = 2, .gpu_slots = 1};
  const auto r = simulate(jobs, o);
  expect_valid(jobs, o, r);
  EXPECT_EQ(r.gpu_jobs, 4);
  EXPECT_DOUBLE_EQ(r.makespan, 10.0);
  std::vector<std::pair<double, double>> slot;
  for (const auto& a : r.attempts)
    if (a.gpu_slot >= 0) {
      EXPECT_EQ(a.gpu_slot, 0);
      EXPECT_TRUE(a.cores.empty());
      EXPECT_DOUBLE_EQ(a.end - a.start, 2.0);
      slot.emplace_back(a.start, a.end);
    }
  std::sort(slot.begin(), slot.end());
  for (std::size_t i = 1; i < slot.size(); ++i) EXPECT_GE(slot[i].first, slot[i - 1].second) << "one job a slot";
  EXPECT_DOUBLE_EQ(r.node_gpu_busy[0], 8.0);
  o.gpu_slots = 0;
  EXPECT_DOUBLE_EQ(simulate(jobs, o).makespan, 30.0);
  // Three slots: six jobs in two waves of 2 s there, each wave in three distinct slots (expect_valid).
  o.gpu_slots = 3;
  const auto three = simulate(jobs, o);
  expect_valid(jobs, o, three);
  EXPECT_EQ(three.gpu_jobs, 6);
  EXPECT_DOUBLE_EQ(three.makespan, 4.0);
  std::set<int> slots;
  for (const auto& a : three.attempts) slots.insert(a.gpu_slot);
  EXPECT_EQ(slots, (std::set<int>{0, 1, 2}));
}

TEST(Simulator, TheSameJobsAndOptionsGiveTheSameSchedule) {
  std::vector<double> seconds;
  for (int i = 0; i < 200; ++i) seconds.push_back(1.0 + (i * 37 % 11));
  const auto jobs = jobs_of(seconds);
  const SimOptions o{.nodes = 5, .cores = 3, .seed = 9};
  const auto a = simulate(jobs, o), b = simulate(jobs, o);
  expect_valid(jobs, o, a);
  ASSERT_EQ(a.attempts.size(), b.attempts.size());
  for (std::size_t i = 0; i < a.attempts.size(); ++i) {
    EXPECT_EQ(a.attempts[i].job, b.attempts[i].job);
    EXPECT_EQ(a.attempts[i].node, b.attempts[i].node);
    EXPECT_EQ(a.attempts[i].start, b.attempts[i].start);
  }
}

TEST(Simulator, RefusesWhatItCannotSimulate) {
  auto jobs = jobs_of({1, 1});
  EXPECT_THROW(simulate(jobs, {.nodes = 0, .cores = 1}), Error);
  EXPECT_THROW(simulate(jobs, {.nodes = 1, .cores = 0}), Error);
  jobs[0].cores = 3;
  EXPECT_THROW(simulate(jobs, {.nodes = 1, .cores = 2}), Error);
  jobs[0].cores = 1;
  jobs[0].after = {1};
  jobs[1].after = {0};
  EXPECT_THROW(simulate(jobs, {.nodes = 1, .cores = 2}), Error);  // a cycle
  jobs[1].after = {7};
  EXPECT_THROW(simulate(jobs, {.nodes = 1, .cores = 2}), Error);  // unknown
}
