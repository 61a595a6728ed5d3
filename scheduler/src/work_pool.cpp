#include <packtrain/scheduler/work_pool.hpp>

#include <packtrain/scheduler/error.hpp>


namespace packtrain {
namespace {

// A deque item: round in the high 32 bits, index in the low 32.
constexpr int kIndexBits = 32;
constexpr std::int64_t kMaxIndex = (std::int64_t{1} << kIndexBits) - 1;

std::uint64_t encode(std::int64_t round, std::int64_t index) {
  return (static_cast<std::uint64_t>(round) << kIndexBits) | static_cast<std::uint64_t>(index);
}

WorkPool::Item decode(std::uint64_t v) {
  return {static_cast<std::int64_t>(v >> kIndexBits), static_cast<std::int64_t>(v & kMaxIndex)};
}

}  // namespace

struct WorkPool::Slot {
  WsDeque<std::uint64_t> deque;
  bool owned = false;                 // guarded by the pool's mutex_
  std::vector<Share> shares;          // dealt, not yet pushed; guarded
  std::atomic<bool> pending{false};   // shares is not empty (a hint read without the lock)
  std::minstd_rand rng;               // owner only
};

WorkPool::WorkPool(int slots) {
  if (slots < 1) throw Error("a work pool needs at least one slot");
  for (int i = 0; i < slots; ++i) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->rng.seed(static_cast<unsigned>(i) * 7919u + 17u);
  }
}

WorkPool::~WorkPool() = default;

int WorkPool::join() {
  MutexLock lock(mutex_);
  for (int i = 0; i < slots(); ++i) {
    auto& s = *slots_[i];
    if (s.owned) continue;
    s.owned = true;
    if (!orphans_.empty()) {
      s.shares.insert(s.shares.end(), orphans_.begin(), orphans_.end());
      orphans_.clear();
      push_shares(s);
    }
    return i;
  }
  return -1;
}

void WorkPool::leave(int slot) {
  PACKTRAIN_CHECK(slot >= 0 && slot < slots(), "WorkPool::leave: no such slot");
  MutexLock lock(mutex_);
  auto& s = *slots_[slot];
  PACKTRAIN_CHECK(s.owned, "WorkPool::leave: slot not joined");
  // A share not started goes into the deque, where the others steal it.
  push_shares(s);
  s.owned = false;
}

std::int64_t WorkPool::deal(std::int64_t n) {
  if (n < 0 || n > kMaxIndex) throw Error("WorkPool::deal: " + std::to_string(n) + " items is out of range");
  MutexLock lock(mutex_);
  const std::int64_t round = ++round_;
  std::vector<Slot*> joined;
  for (auto& s : slots_)
    if (s->owned) joined.push_back(s.get());
  if (joined.empty()) {
    orphans_.push_back({round, 0, n});
  } else {
    const auto k = static_cast<std::int64_t>(joined.size());
    for (std::int64_t i = 0; i < k; ++i) {
      const std::int64_t begin = n * i / k, end = n * (i + 1) / k;
      // Fewer items than takers: no empty share, which the take-from-a-share
      // path below would decrement past its beginning (negative indices).
      if (begin == end) continue;
      Slot& s = *joined[static_cast<std::size_t>(i)];
      s.shares.push_back({round, begin, end});
      s.pending.store(true, std::memory_order_release);
    }
  }
  dealt_.fetch_add(n, std::memory_order_acq_rel);
  return round;
}

void WorkPool::push_shares(Slot& s) {
  // Last index first: the owner pops from the bottom, so it goes through its
  // share in order while thieves take from the far end.
  for (const auto& share : s.shares)
    for (std::int64_t i = share.end - 1; i >= share.begin; --i) s.deque.push(encode(share.round, i));
  s.shares.clear();
  s.pending.store(false, std::memory_order_relaxed);
}

std::optional<WorkPool::Item> WorkPool::take(int slot) {
  auto& self = *slots_[slot];
  const int n = slots();
  for (;;) {
    // acquire: pairs with deal's release store; the share is there to push.
    if (self.pending.load(std::memory_order_acquire)) {
      MutexLock lock(mutex_);
      push_shares(self);
    }
    if (auto v = self.deque.pop()) return counted(*v);
    const int start = static_cast<int>(self.rng() % static_cast<unsigned>(n));
    bool seen = false;  // a deque looked non-empty but the steal lost a race
    for (int i = 0; i < n; ++i) {
      const int victim = (start + i) % n;
      if (victim == slot) continue;
      if (auto v = slots_[victim]->deque.steal()) return counted(*v);
      seen = seen || !slots_[victim]->deque.empty();
    }
    if (seen) continue;  // someone else got that item: look again, it is not a wait
    // Nothing in a deque. What is left is in shares not yet pushed (their
    // owner is busy with an item): take one from there rather than wait for
    // the owner. Under mutex_ no share is pushed and nothing is dealt, so
    // if no share and no deque holds an item, every item dealt so far has
    // been taken (or is being taken by a thread between its pop and its count).
    MutexLock lock(mutex_);
    for (int i = 0; i < n; ++i) {
      auto& other = *slots_[(start + i) % n];
      if (other.shares.empty()) continue;
      Share& share = other.shares.back();
      const std::int64_t index = --share.end;  // from the far end, as a thief steals
      const std::int64_t round = share.round;
      if (share.begin == share.end) other.shares.pop_back();
      if (other.shares.empty()) other.pending.store(false, std::memory_order_relaxed);
      taken_.fetch_add(1, std::memory_order_acq_rel);
      return Item{round, index};
    }
    bool empty = true;
    for (const auto& s : slots_) empty = empty && s->deque.empty();
    if (empty) return std::nullopt;
  }
}

std::optional<WorkPool::Item> WorkPool::counted(std::uint64_t v) {
  taken_.fetch_add(1, std::memory_order_acq_rel);
  return decode(v);
}

}  // namespace packtrain
