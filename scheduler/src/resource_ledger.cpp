#include <packtrain/scheduler/resource_ledger.hpp>

#include <packtrain/scheduler/error.hpp>

#include <algorithm>

namespace packtrain {

ResourceLedger::ResourceLedger(int cores, int gpus, std::uint64_t memory_mb)
    : owner_(cores, kFree), gpus_(gpus), memory_mb_(memory_mb) {}

void ResourceLedger::use_cores(int n) {
  cores_in_use_ += n;
  peak_cores_in_use_ = std::max(peak_cores_in_use_, cores_in_use_);
}

void ResourceLedger::hold(int job, const std::vector<int>& workers, const Demand& demand) {
  PACKTRAIN_CHECK(!held_.count(job), "ResourceLedger::hold: the job holds cores already");
  PACKTRAIN_CHECK(static_cast<int>(workers.size()) == demand.cores && fits(demand),
                  "ResourceLedger::hold: the job does not fit");
  for (int w : workers) {
    PACKTRAIN_CHECK(is_free(w), "ResourceLedger::hold: a worker is not free");
    owner_[w] = job;
  }
  use_cores(demand.cores);
  gpus_in_use_ += demand.gpus;
  memory_in_use_ += demand.memory_mb;
  held_[job] = {workers, demand};
}

const std::vector<int>& ResourceLedger::workers_of(int job) const {
  const auto it = held_.find(job);
  PACKTRAIN_CHECK(it != held_.end(), "ResourceLedger::workers_of: the job holds nothing");
  return it->second.workers;
}

void ResourceLedger::release(int job) {
  const auto it = held_.find(job);
  PACKTRAIN_CHECK(it != held_.end(), "ResourceLedger::release: the job holds nothing");
  PACKTRAIN_CHECK(std::none_of(leases_.begin(), leases_.end(), [&](const Lease& l) { return l.job == job; }),
                  "ResourceLedger::release: the job still has lent cores");
  for (int w : it->second.workers) owner_[w] = kFree;
  cores_in_use_ -= it->second.demand.cores;
  gpus_in_use_ -= it->second.demand.gpus;
  memory_in_use_ -= it->second.demand.memory_mb;
  held_.erase(it);
  elastic_.erase(std::remove_if(elastic_.begin(), elastic_.end(), [&](const Elastic& e) { return e.job == job; }),
                 elastic_.end());
}

ResourceLedger::Elastic* ResourceLedger::find_elastic(int job) {
  const auto it = std::find_if(elastic_.begin(), elastic_.end(), [&](const Elastic& e) { return e.job == job; });
  return it == elastic_.end() ? nullptr : &*it;
}

void ResourceLedger::open_elastic(int job, int cores, int max_cores) {
  PACKTRAIN_CHECK(held_.count(job) && !find_elastic(job), "ResourceLedger::open_elastic: not a running job");
  elastic_.push_back({.job = job, .cores = cores, .max_cores = max_cores});
}

void ResourceLedger::stop_lending(int job) {
  elastic_.erase(std::remove_if(elastic_.begin(), elastic_.end(), [&](const Elastic& e) { return e.job == job; }),
                 elastic_.end());
}

void ResourceLedger::close_elastic(int job) {
  stop_lending(job);
  for (auto& l : leases_)
    if (l.job == job && !l.asked_back) {
      l.asked_back = true;
      ++asked_back_;
    }
}

void ResourceLedger::lend(int worker, int job) {
  auto* e = find_elastic(job);
  PACKTRAIN_CHECK(e && is_free(worker), "ResourceLedger::lend: not a free core for an open elastic job");
  PACKTRAIN_CHECK(e->cores + e->lent < e->max_cores, "ResourceLedger::lend: beyond the job's maximum");
  owner_[worker] = job;
  use_cores(1);
  ++e->lent;
  leases_.push_back({.worker = worker, .job = job});
}

void ResourceLedger::ask_back(int worker) {
  const auto it = std::find_if(leases_.begin(), leases_.end(), [&](const Lease& l) { return l.worker == worker; });
  PACKTRAIN_CHECK(it != leases_.end(), "ResourceLedger::ask_back: the core is not lent");
  if (it->asked_back) return;
  it->asked_back = true;
  ++asked_back_;
  if (auto* e = find_elastic(it->job)) ++e->asked_back;
}

void ResourceLedger::end_lease(int worker) {
  const auto it = std::find_if(leases_.begin(), leases_.end(), [&](const Lease& l) { return l.worker == worker; });
  PACKTRAIN_CHECK(it != leases_.end(), "ResourceLedger::end_lease: the core is not lent");
  if (auto* e = find_elastic(it->job)) {
    --e->lent;
    if (it->asked_back) --e->asked_back;
  }
  if (it->asked_back) --asked_back_;
  owner_[worker] = kFree;
  --cores_in_use_;
  leases_.erase(it);
}

}  // namespace packtrain
