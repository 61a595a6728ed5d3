#include <packtrain/scheduler/resource_ledger.hpp>

#include <packtrain/scheduler/error.hpp>

#include <algorithm>

namespace packtrain {

int pick_gpu(const std::vector<GpuFree>& gpus, const Demand& demand) {
  if (demand.gpus == 0) return -1;
  int best = -1;
  for (int g = 0; g < static_cast<int>(gpus.size()); ++g) {
    const auto& f = gpus[g];
    if (f.slots < 1 || (f.accounted && demand.gpu_memory_mb > f.memory_mb)) continue;
    if (best < 0) {
      best = g;
      continue;
    }
    const auto& b = gpus[best];
    // Accounted GPUs rank by free memory, then free slots; an unaccounted one by free slots.
    const bool more = f.accounted && b.accounted ? f.memory_mb > b.memory_mb || (f.memory_mb == b.memory_mb && f.slots > b.slots)
                                                 : f.slots > b.slots;
    if (more) best = g;
  }
  return best;
}

ResourceLedger::ResourceLedger(int cores, int gpus, std::uint64_t memory_mb)
    : owner_(cores, kFree), gpus_(static_cast<std::size_t>(std::max(0, gpus))), memory_mb_(memory_mb) {}

ResourceLedger::ResourceLedger(int cores, const std::vector<GpuDevice>& gpus, std::uint64_t memory_mb)
    : owner_(cores, kFree), memory_mb_(memory_mb) {
  for (const auto& g : gpus) {
    PACKTRAIN_CHECK(g.slots >= 1, "ResourceLedger: a GPU without slots");
    gpus_.push_back({.slots = g.slots, .memory_mb = g.memory_mb});
  }
}

int ResourceLedger::free_gpus() const {
  int n = 0;
  for (const auto& g : gpus_) n += std::max(0, g.slots - g.in_use);
  return n;
}

std::vector<GpuFree> ResourceLedger::gpu_free() const {
  std::vector<GpuFree> out;
  out.reserve(gpus_.size());
  for (const auto& g : gpus_)
    out.push_back({.slots = std::max(0, g.slots - g.in_use),
                   .memory_mb = g.memory_mb > g.memory_in_use ? g.memory_mb - g.memory_in_use : 0,
                   .accounted = g.memory_mb > 0});
  return out;
}

void ResourceLedger::use_cores(int n) {
  cores_in_use_ += n;
  peak_cores_in_use_ = std::max(peak_cores_in_use_, cores_in_use_);
}

void ResourceLedger::hold(int job, const std::vector<int>& workers, const Demand& demand, int gpu) {
  PACKTRAIN_CHECK(!held_.count(job), "ResourceLedger::hold: the job holds cores already");
  PACKTRAIN_CHECK(static_cast<int>(workers.size()) == demand.cores && fits(demand) && demand.gpus <= 1,
                  "ResourceLedger::hold: the job does not fit");
  Seat seat;
  if (demand.gpus == 1) {
    const auto free = gpu_free();
    if (gpu < 0) gpu = pick_gpu(free, demand);
    PACKTRAIN_CHECK(gpu >= 0 && gpu < gpu_count() && free[gpu].slots > 0 &&
                        (!free[gpu].accounted || demand.gpu_memory_mb <= free[gpu].memory_mb),
                    "ResourceLedger::hold: no slot of that GPU fits the job");
    auto& g = gpus_[gpu];
    int slot = 0;
    while (slot < static_cast<int>(g.taken.size()) && g.taken[slot]) ++slot;
    if (slot == static_cast<int>(g.taken.size())) g.taken.push_back(false);
    g.taken[slot] = true;
    ++g.in_use;
    if (g.memory_mb > 0) g.memory_in_use += demand.gpu_memory_mb;
    seat = {.gpu = gpu, .slot = slot};
  }
  for (int w : workers) {
    PACKTRAIN_CHECK(is_free(w), "ResourceLedger::hold: a worker is not free");
    owner_[w] = job;
  }
  use_cores(demand.cores);
  memory_in_use_ += demand.memory_mb;
  held_[job] = {workers, demand, seat};
}

ResourceLedger::Seat ResourceLedger::seat_of(int job) const {
  const auto it = held_.find(job);
  PACKTRAIN_CHECK(it != held_.end(), "ResourceLedger::seat_of: the job holds nothing");
  return it->second.seat;
}

bool ResourceLedger::retire_slot(int gpu) {
  PACKTRAIN_CHECK(gpu >= 0 && gpu < gpu_count(), "ResourceLedger::retire_slot: no such GPU");
  if (gpus_[gpu].slots <= 1) return false;
  --gpus_[gpu].slots;
  return true;
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
  if (const auto seat = it->second.seat; seat.gpu >= 0) {
    auto& g = gpus_[seat.gpu];
    g.taken[seat.slot] = false;
    --g.in_use;
    if (g.memory_mb > 0) g.memory_in_use -= it->second.demand.gpu_memory_mb;
  }
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
