// deal_shards: --shard I/N splits a sweep into shares that differ by at most
// one dependency group's cost, the same way in every share.
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/shards.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

using namespace packtrain;

namespace {

Job job(const std::string& name, double cost, std::vector<std::string> after = {}) {
  Job j;
  j.name = name;
  j.spec = {{"name", name}};
  j.cost = cost;
  j.after = std::move(after);
  j.run = [](JobContext&) { return JobOutcome{}; };
  return j;
}

// Each share's cost, and the largest group's cost.
std::pair<std::vector<double>, double> loads(const std::vector<Job>& jobs, int shares) {
  const auto share = deal_shards(jobs, shares);
  const auto groups = dependency_groups(jobs);
  std::vector<double> load(static_cast<std::size_t>(shares), 0.0);
  std::map<std::string, double> group_cost;
  std::map<std::string, int> group_share;
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    load[static_cast<std::size_t>(share[j])] += jobs[j].cost;
    group_cost[groups[j]] += jobs[j].cost;
    // A group is never split.
    const auto [it, added] = group_share.emplace(groups[j], share[j]);
    EXPECT_EQ(it->second, share[j]) << jobs[j].name << " is not in its group's share";
  }
  double biggest = 0;
  for (const auto& [key, c] : group_cost) biggest = std::max(biggest, c);
  return {load, biggest};
}

}  // namespace

TEST(Shards, EqualJobsSplitByCountWithinOne) {
  for (const int n : {4, 16, 100}) {
    for (const int shares : {2, 3}) {
      std::vector<Job> jobs;
      for (int i = 0; i < n; ++i) jobs.push_back(job("job" + std::to_string(i), 1.0));
      const auto [load, biggest] = loads(jobs, shares);
      const auto [lo, hi] = std::minmax_element(load.begin(), load.end());
      EXPECT_LE(*hi - *lo, biggest) << n << " jobs over " << shares;
      EXPECT_EQ(*hi - *lo, n % shares == 0 ? 0.0 : 1.0) << n << " jobs over " << shares;
    }
  }
}

TEST(Shards, UnequalGroupsDifferByAtMostOneGroupsCost) {
  for (const int n : {4, 16, 100}) {
    for (const int shares : {2, 3}) {
      std::vector<Job> jobs;
      // Mixed costs and chains: every third job waits for the one before it.
      for (int i = 0; i < n; ++i) {
        std::vector<std::string> after;
        if (i % 3 == 2) after.push_back(jobs.back().id());
        jobs.push_back(job("job" + std::to_string(i), 1.0 + (i * 7919 % 13), after));
      }
      const auto [load, biggest] = loads(jobs, shares);
      const auto [lo, hi] = std::minmax_element(load.begin(), load.end());
      EXPECT_LE(*hi - *lo, biggest) << n << " jobs over " << shares;
    }
  }
}

TEST(Shards, EveryShareComputesTheSameDealWhateverTheOrder) {
  std::vector<Job> jobs;
  for (int i = 0; i < 16; ++i) jobs.push_back(job("job" + std::to_string(i), 1.0 + i % 4));
  const auto deal = deal_shards(jobs, 3);
  auto reversed = jobs;
  std::reverse(reversed.begin(), reversed.end());
  const auto deal_reversed = deal_shards(reversed, 3);
  for (std::size_t j = 0; j < jobs.size(); ++j) EXPECT_EQ(deal[j], deal_reversed[jobs.size() - 1 - j]) << jobs[j].name;
  EXPECT_EQ(deal, deal_shards(jobs, 3));
  EXPECT_THROW(deal_shards(jobs, 0), Error);
}

TEST(Shards, AChainStaysInOneShare) {
  std::vector<Job> jobs = {job("dense", 10)};
  for (int i = 0; i < 8; ++i) jobs.push_back(job("retrain" + std::to_string(i), 1, {jobs.front().id()}));
  const auto deal = deal_shards(jobs, 2);
  EXPECT_EQ(std::set<int>(deal.begin(), deal.end()).size(), 1u);
}
