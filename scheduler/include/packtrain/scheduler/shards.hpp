#pragma once
// Splitting one sweep into disjoint shares (`--shard I/N`, SLURM job
// arrays): every share computes the same split from the same job list, with
// no communication.
//
// A share runs whole dependency groups: a job and every job that depends
// on it, directly or not, go to one share (a lottery-ticket chain split
// between shares would wait forever for its dense job). Groups are dealt
// longest first, each to the share with the least cost so far (ties: the
// lowest share; LPT scheduling), so the shares' costs differ by at most one
// group's cost, and jobs of equal cost split as evenly as their count allows.
//
//   const auto share = packtrain::deal_shards(jobs, 3);   // share[j] in 0..2
//   for (std::size_t j = 0; j < jobs.size(); ++j) if (share[j] == mine) runner.add(jobs[j]);
#include <packtrain/scheduler/job.hpp>

#include <string>
#include <vector>

namespace packtrain {

// Each job's dependency group, named by its key: the smallest id among the
// group's roots (its jobs without `after`), so the key does not depend on
// the order of the list. A job without dependencies (every kfold job) is a
// group of its own.
std::vector<std::string> dependency_groups(const std::vector<Job>& jobs);

// The share (0..shares-1) of each job. Throws Error for shares < 1.
std::vector<int> deal_shards(const std::vector<Job>& jobs, int shares);

}  // namespace packtrain
