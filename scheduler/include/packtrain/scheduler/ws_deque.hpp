#pragma once
// A work-stealing deque: the owner pushes and pops at the bottom, any other
// thread steals from the top. Lock-free.
//
// Algorithm: D. Chase and Y. Lev, "Dynamic Circular Work-Stealing Deque",
// SPAA 2005. Memory orders: N. M. Le, A. Pop, A. Cohen, F. Zappa Nardelli,
// "Correct and Efficient Work-Stealing for Weak Memory Models", PPoPP 2013,
// with one deliberate strengthening (see push) so that ThreadSanitizer,
// which does not model stand-alone fences, sees the same happens-before
// edges the hardware gives.
//
// Items must be trivially copyable (the executor stores task pointers).
// Arrays outgrown by push are kept until the deque dies: a thief may still
// be reading the old one, and the total retired is at most the final size.
//
//   WsDeque<Task*> q;        q.push(t);        // owner thread only
//   auto mine = q.pop();                       // owner thread only
//   auto stolen = q.steal();                   // any thread
#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>
#include <vector>

namespace packtrain {

// 64 bytes on x86-64; std::hardware_destructive_interference_size warns on gcc.
inline constexpr std::size_t kCacheLine = 64;

template <typename T>
class WsDeque {
  static_assert(std::is_trivially_copyable_v<T>, "WsDeque holds trivially copyable items (pointers)");

 public:
  explicit WsDeque(std::int64_t capacity = 1024) : array_(new Array(round_up(capacity))) {}
  ~WsDeque() { delete array_.load(std::memory_order_relaxed); }
  WsDeque(const WsDeque&) = delete;
  WsDeque& operator=(const WsDeque&) = delete;

  // Owner only.
  void push(T item) {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    // acquire: pairs with the thieves' CAS on top_, so the slot we may
    // overwrite after growing is no longer being read as "ours".
    const std::int64_t t = top_.load(std::memory_order_acquire);
    Array* a = array_.load(std::memory_order_relaxed);
    if (b - t > a->capacity - 1) {
      Array* bigger = a->grow(b, t);
      retired_.emplace_back(a);
      a = bigger;
      // release: a thief that loads the new array (acquire) sees its slots.
      array_.store(a, std::memory_order_release);
    }
    a->put(b, item);
    // release: publishes the item (and everything the owner wrote before
    // push, e.g. the task's closure) to a thief that reads bottom_ with
    // acquire. Le et al. use a release fence + relaxed store; a release
    // store is the same instruction on x86 and is visible to TSan.
    bottom_.store(b + 1, std::memory_order_release);
  }

  // Owner only. Takes the most recently pushed item.
  std::optional<T> pop() {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    Array* a = array_.load(std::memory_order_relaxed);
    bottom_.store(b, std::memory_order_relaxed);
    // seq_cst fence: the store to bottom_ must be ordered before the load of
    // top_ (store-load order, which only a full fence gives): either a thief
    // sees the smaller bottom, or we see its incremented top.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    std::int64_t t = top_.load(std::memory_order_relaxed);
    if (t > b) {  // empty
      bottom_.store(b + 1, std::memory_order_relaxed);
      return std::nullopt;
    }
    T item = a->get(b);
    if (t == b) {
      // The last item: race the thieves for it through top_.
      // seq_cst: orders with the thieves' seq_cst CAS on the same word.
      const bool won = top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                                    std::memory_order_relaxed);
      bottom_.store(b + 1, std::memory_order_relaxed);
      if (!won) return std::nullopt;
    }
    return item;
  }

  // Any thread. Takes the oldest item, or nothing when empty or when another
  // thread took it first.
  std::optional<T> steal() {
    // acquire: pairs with the CAS of other thieves / the owner on top_.
    std::int64_t t = top_.load(std::memory_order_acquire);
    // seq_cst fence: the load of top_ must be ordered before the load of
    // bottom_ (the mirror image of pop's fence).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // acquire: pairs with push's release store; the item is visible.
    const std::int64_t b = bottom_.load(std::memory_order_acquire);
    if (t >= b) return std::nullopt;
    // acquire: pairs with push's release store of a grown array.
    Array* a = array_.load(std::memory_order_acquire);
    T item = a->get(t);
    // seq_cst: one total order with the owner's CAS for the last item.
    if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst, std::memory_order_relaxed))
      return std::nullopt;
    return item;
  }

  // A snapshot; exact only when no other thread touches the deque.
  std::int64_t size() const {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    const std::int64_t t = top_.load(std::memory_order_relaxed);
    return b > t ? b - t : 0;
  }
  bool empty() const { return size() == 0; }

 private:
  struct Array {
    explicit Array(std::int64_t n) : capacity(n), mask(n - 1), slots(new std::atomic<T>[static_cast<std::size_t>(n)]) {}
    // Slots are atomics read concurrently with a later overwrite by the owner;
    // relaxed is enough, the indices carry the ordering.
    void put(std::int64_t i, T v) { slots[static_cast<std::size_t>(i & mask)].store(v, std::memory_order_relaxed); }
    T get(std::int64_t i) const { return slots[static_cast<std::size_t>(i & mask)].load(std::memory_order_relaxed); }
    Array* grow(std::int64_t b, std::int64_t t) const {
      auto* bigger = new Array(capacity * 2);
      for (std::int64_t i = t; i < b; ++i) bigger->put(i, get(i));
      return bigger;
    }
    const std::int64_t capacity;
    const std::int64_t mask;
    std::unique_ptr<std::atomic<T>[]> slots;
  };

  static std::int64_t round_up(std::int64_t n) {
    std::int64_t p = 2;
    while (p < n) p *= 2;
    return p;
  }

  // top_ is written by thieves, bottom_ by the owner: separate cache lines.
  alignas(kCacheLine) std::atomic<std::int64_t> top_{0};
  alignas(kCacheLine) std::atomic<std::int64_t> bottom_{0};
  alignas(kCacheLine) std::atomic<Array*> array_;
  std::vector<std::unique_ptr<Array>> retired_;  // owner only
};

}  // namespace packtrain
