#include <packtrain/scheduler/placement.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

namespace packtrain {

namespace {

// What is left once the decisions made so far are carried out.
struct Left {
  explicit Left(const ResourceLedger& ledger)
      : free(ledger.cores()), cores(ledger.free_cores()), gpus(ledger.gpu_free()), memory_mb(ledger.free_memory_mb()) {
    for (int w = 0; w < ledger.cores(); ++w) free[w] = ledger.is_free(w);
  }
  std::vector<bool> free;  // per worker
  int cores = 0;
  std::vector<GpuFree> gpus;
  std::uint64_t memory_mb = 0;

  bool fits(const Demand& d) const { return d.cores <= cores && fits_but_cores(d); }
  // Fits but for cores lent out: needs nothing else.
  bool fits_but_cores(const Demand& d) const {
    return d.memory_mb <= memory_mb && (d.gpus == 0 || pick_gpu(gpus, d) >= 0);
  }
  // Takes what `d` needs but its cores; returns the GPU of its slot (-1: none).
  int take(const Demand& d) {
    cores -= d.cores;
    memory_mb -= d.memory_mb;
    const int gpu = pick_gpu(gpus, d);
    if (gpu >= 0) {
      --gpus[gpu].slots;
      if (gpus[gpu].accounted) gpus[gpu].memory_mb -= d.gpu_memory_mb;
    }
    return gpu;
  }
};

std::vector<int> take_lowest(Left& left, int n) {
  std::vector<int> workers;
  for (int w = 0; w < static_cast<int>(left.free.size()) && static_cast<int>(workers.size()) < n; ++w)
    if (left.free[w]) {
      left.free[w] = false;
      workers.push_back(w);
    }
  return workers;
}

// Asks back enough lent cores for `job`; the newest lease of the elastic job
// with the most lent cores not yet asked back, one at a time.
void ask_back_for(const ResourceLedger& ledger, const Demand& job, const Left& left, std::vector<Decision>& out) {
  std::vector<int> unasked;  // per elastic job (ledger order): lent and not asked back
  for (const auto& e : ledger.elastic()) unasked.push_back(e.lent - e.asked_back);
  std::vector<bool> asked(ledger.leases().size(), false);
  for (int need = job.cores - left.cores - ledger.asked_back(); need > 0; --need) {
    int from = -1;
    for (int e = 0; e < static_cast<int>(unasked.size()); ++e)
      if (unasked[e] > 0 && (from < 0 || unasked[e] > unasked[from])) from = e;
    if (from < 0) return;
    const int elastic_job = ledger.elastic()[from].job;
    for (int l = static_cast<int>(ledger.leases().size()) - 1; l >= 0; --l) {
      const auto& lease = ledger.leases()[l];
      if (lease.job == elastic_job && !lease.asked_back && !asked[l]) {
        asked[l] = true;
        out.push_back({.kind = Decision::Kind::ask_back, .job = elastic_job, .workers = {lease.worker}});
        break;
      }
    }
    --unasked[from];
  }
}

}  // namespace

std::vector<Decision> place(const ResourceLedger& ledger, const std::vector<ReadyJob>& ready) {
  std::vector<Decision> out;
  Left left(ledger);

  std::vector<const ReadyJob*> order;
  order.reserve(ready.size());
  for (const auto& r : ready) order.push_back(&r);
  std::sort(order.begin(), order.end(), [](const ReadyJob* a, const ReadyJob* b) {
    return a->cost > b->cost || (a->cost == b->cost && a->job < b->job);
  });

  // Longest first, and every job that fits: work-conserving.
  std::vector<const ReadyJob*> waiting;
  for (const auto* r : order) {
    if (left.cores > 0 && left.fits(r->demand)) {
      auto workers = take_lowest(left, r->demand.cores);
      out.push_back({.kind = Decision::Kind::start, .job = r->job, .workers = std::move(workers),
                     .gpu = left.take(r->demand)});
    } else {
      waiting.push_back(r);
    }
  }
  if (ledger.elastic().empty() && ledger.lent() == 0) return out;

  // The longest waiting job that lent cores would let start takes them back;
  // nothing is lent while it waits.
  for (const auto* r : waiting) {
    if (!left.fits_but_cores(r->demand) || r->demand.cores > left.cores + ledger.lent()) continue;
    ask_back_for(ledger, r->demand, left, out);
    return out;
  }

  // No ready job can use the free cores: lend them.
  std::vector<int> has;  // per elastic job (ledger order): its cores with what is lent now
  for (const auto& e : ledger.elastic()) has.push_back(e.cores + e.lent);
  for (int w = 0; w < ledger.cores(); ++w) {
    if (!left.free[w]) continue;
    int best = -1;
    for (int e = 0; e < static_cast<int>(has.size()); ++e)
      if (has[e] < ledger.elastic()[e].max_cores && (best < 0 || has[e] < has[best])) best = e;
    if (best < 0) break;
    ++has[best];
    left.free[w] = false;
    out.push_back({.kind = Decision::Kind::lend, .job = ledger.elastic()[best].job, .workers = {w}});
  }
  return out;
}

std::vector<MixedDecision> place_mixed(const ResourceLedger& ledger, const std::vector<ReadyChoice>& ready,
                                       Forecast forecast) {
  std::vector<MixedDecision> out;
  Left left(ledger);
  std::vector<const ReadyChoice*> order;
  for (const auto& r : ready) order.push_back(&r);
  std::sort(order.begin(), order.end(), [](const ReadyChoice* a, const ReadyChoice* b) {
    return a->cost > b->cost || (a->cost == b->cost && a->job < b->job);
  });
  constexpr double kNever = std::numeric_limits<double>::infinity();
  for (const auto* r : order) {
    const bool on_cpu = r->cpu_seconds > 0, on_gpu = r->gpu_seconds > 0;
    const Demand slot{.cores = 0, .gpus = 1, .memory_mb = r->cpu.memory_mb, .gpu_memory_mb = r->gpu_memory_mb};
    const bool cpu_now = on_cpu && left.fits(r->cpu), gpu_now = on_gpu && left.fits(slot);
    const double cpu_finish = !on_cpu ? kNever : (cpu_now ? 0 : forecast.core_free_in) + r->cpu_seconds;
    const double gpu_finish = !on_gpu ? kNever : (gpu_now ? 0 : forecast.gpu_slot_free_in) + r->gpu_seconds;
    const bool gpu_best = gpu_finish < cpu_finish;
    if (gpu_best ? gpu_now : cpu_now) {
      MixedDecision d{.job = r->job, .gpu = gpu_best};
      if (!gpu_best) d.workers = take_lowest(left, r->cpu.cores);
      d.device = left.take(gpu_best ? slot : r->cpu);
      auto& frees = gpu_best ? forecast.gpu_slot_free_in : forecast.core_free_in;
      frees = std::min(frees, gpu_best ? r->gpu_seconds : r->cpu_seconds);
      out.push_back(std::move(d));
    } else if (std::isfinite(gpu_best ? gpu_finish : cpu_finish)) {
      // It waits for the place it is best at: the next job waits behind it.
      (gpu_best ? forecast.gpu_slot_free_in : forecast.core_free_in) += gpu_best ? r->gpu_seconds : r->cpu_seconds;
    }
  }
  return out;
}

}  // namespace packtrain
