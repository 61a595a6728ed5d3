#pragma once
// Rounds of items (an epoch's minibatches) shared by a changing set of
// takers through work stealing. Hogwild's workers use it (hogwild/).
//
// The pool has a fixed number of slots, each a Chase-Lev deque
// (ws_deque.hpp). A taker joins (claims a free slot), takes items and
// leaves, at any moment, also in the middle of a round. deal() gives each
// joined slot a contiguous share of the round; the slot's owner pushes its
// share into its own deque the next time it takes (only an owner ever
// pushes or pops a deque), pops from it, and when it runs dry steals from
// the other slots, one item at a time; a share whose owner has not pushed
// it yet (it is busy with an item) is taken from under the pool's lock, so
// no taker ever waits for another. A taker that leaves first pushes a
// share it has not started, so what it did not take stays in its deque
// and is stolen by the others: every item dealt is taken exactly once,
// however takers come and go.
//
// Items are (round, index) pairs, so a taker still finishing round r that
// takes an item of round r+1 knows which round it belongs to.
//
//   packtrain::WorkPool pool(4);
//   int slot = pool.join();                  // -1: all slots taken
//   pool.deal(n_batches);                    // a new round: [0, n_batches)
//   while (auto item = pool.take(slot)) train_on(item->round, item->index);
//   pool.leave(slot);
#include <packtrain/scheduler/mutex.hpp>
#include <packtrain/scheduler/ws_deque.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <vector>

namespace packtrain {

class WorkPool {
 public:
  struct Item {
    std::int64_t round;  // 1 for the first deal
    std::int64_t index;  // in [0, n) of that round's deal
  };

  explicit WorkPool(int slots);
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  int slots() const { return static_cast<int>(slots_.size()); }

  // A free slot for the calling thread, or -1 when every slot is taken.
  int join();
  // Gives the slot up. Its owner only; what is left in it is stolen by others.
  void leave(int slot);

  // Starts a round of items [0, n), shared among the slots joined now (or
  // all of it to the next taker to join, when none is). Any thread; returns
  // the round's number. Items of earlier rounds may still be being taken.
  std::int64_t deal(std::int64_t n);

  // For the owner of `slot`: an item nobody else gets, or nothing once every
  // item dealt so far has been taken (or is in another taker's hands). Never
  // waits for another taker: an item dealt to a slot whose owner has not
  // pushed it yet is taken from that slot's share.
  std::optional<Item> take(int slot);

  // Items dealt and taken since the pool was made.
  std::int64_t dealt() const { return dealt_.load(std::memory_order_acquire); }
  std::int64_t taken() const { return taken_.load(std::memory_order_acquire); }

 private:
  struct Share {
    std::int64_t round, begin, end;
  };
  struct Slot;
  void push_shares(Slot& slot) PACKTRAIN_REQUIRES(mutex_);  // by the slot's owner
  std::optional<Item> counted(std::uint64_t item);  // counts a popped or stolen item as taken

  std::vector<std::unique_ptr<Slot>> slots_;
  // Guards join, leave, deal and every push of a share: a slot changes
  // owner only under it, so its deque has one owner at a time.
  Mutex mutex_;
  std::vector<Share> orphans_ PACKTRAIN_GUARDED_BY(mutex_);  // dealt while no slot was joined
  std::int64_t round_ PACKTRAIN_GUARDED_BY(mutex_) = 0;
  alignas(kCacheLine) std::atomic<std::int64_t> dealt_{0};
  alignas(kCacheLine) std::atomic<std::int64_t> taken_{0};
};

}  // namespace packtrain
