#pragma once
// A pairwise reduction tree over the micro-batches of one step, combined by
// whichever thread completes each node: the sum's bits depend on the tree
// alone, never on which thread finished which leaf or in what order.
//
// Node (level l, i) covers leaves [i 2^l, (i + 1) 2^l) of n; its value is
// left += right of its two children, held in the buffer of its first leaf,
// so the root's value ends in leaf 0's buffer. A node whose right child
// would start at n or beyond has one child and just passes it up. Each
// two-child node has a counter armed to 2; a child's arrival decrements it,
// and the second arrival combines and climbs on (the software combining
// tree: Yew, Tzeng and Lawrie, "Distributing Hot-Spot Addressing in
// Large-Scale Multiprocessors", IEEE Trans. Computers 1987; as a barrier in
// Mellor-Crummey and Scott, "Algorithms for Scalable Synchronization on
// Shared-Memory Multiprocessors", TOCS 1991). Reductions run as soon as both
// halves exist, on the replicas that finish them, overlapping the other
// replicas' backward passes; no thread waits inside arrive().
//
//   ReductionTree tree(8);
//   tree.reset(n);                                        // before the step's items are handed out
//   ... on any thread, when leaf j's gradient is in buffer[j]:
//   if (tree.arrive(j, [&](int left, int right) { buffer[left] += buffer[right]; }))
//     use(buffer[0]);                                     // the whole sum; exactly one arrival sees true
#include <packtrain/scheduler/ws_deque.hpp>  // kCacheLine

#include <atomic>
#include <memory>
#include <stdexcept>
#include <vector>

namespace packtrain::dataparallel {

class ReductionTree {
 public:
  explicit ReductionTree(int max_leaves) : max_leaves_(max_leaves < 1 ? 1 : max_leaves) {
    for (int span = 1; span < max_leaves_; span *= 2) {
      const int nodes = (max_leaves_ + 2 * span - 1) / (2 * span);
      levels_.push_back(std::make_unique<Node[]>(static_cast<std::size_t>(nodes)));
    }
  }

  int max_leaves() const { return max_leaves_; }
  int leaves() const { return leaves_; }

  // Arms the tree for a round of `leaves` leaves (1..max_leaves). Not while
  // any arrive() of the previous round runs: the caller publishes the reset
  // to the arriving threads (the work pool's deal does).
  void reset(int leaves) {
    if (leaves < 1 || leaves > max_leaves_) throw std::out_of_range("ReductionTree::reset: leaf count out of range");
    leaves_ = leaves;
    int level = 0;
    for (int span = 1; span < leaves; span *= 2, ++level) {
      const int nodes = (leaves + 2 * span - 1) / (2 * span);
      // relaxed: published with the round's items (see above).
      for (int i = 0; i < nodes; ++i) levels_[static_cast<std::size_t>(level)][i].pending.store(2, std::memory_order_relaxed);
    }
  }

  // Leaf `leaf`'s value is ready (each leaf arrives exactly once a round).
  // Runs combine(left, right) for each node this arrival completes, bottom
  // up, then returns true if it completed the root (the sum is in leaf 0's
  // buffer), false if a sibling is still missing (its arrival will go on).
  // The combines on `leaf`'s path to the root of a round of `leaves`, in
  // arrive()'s order: what arrive(leaf) runs when every other leaf has
  // arrived (a gang's bucket sums them for a share of the parameters).
  template <typename Combine>
  static void path_to_root(int leaf, int leaves, Combine&& combine) {
    int index = leaf;
    for (int span = 1; span < leaves; span *= 2) {
      const int parent = index / 2;
      const int left = parent * 2 * span;
      const int right = left + span;
      index = parent;
      if (right < leaves) combine(left, right);
    }
  }
  template <typename Combine>
  bool arrive(int leaf, Combine&& combine) {
    int index = leaf;
    int level = 0;
    for (int span = 1; span < leaves_; span *= 2, ++level) {
      const int parent = index / 2;
      const int left = parent * 2 * span;
      const int right = left + span;
      index = parent;
      if (right >= leaves_) continue;  // one child: passed up as it is
      // acq_rel: the first arrival releases its subtree's buffer; the second
      // acquires it before combining, and releases the combined node to the
      // arrival that completes the parent.
      if (levels_[static_cast<std::size_t>(level)][parent].pending.fetch_sub(1, std::memory_order_acq_rel) != 1)
        return false;
      combine(left, right);
    }
    return true;
  }

 private:
  struct alignas(kCacheLine) Node {
    std::atomic<int> pending{0};
  };
  int max_leaves_;
  int leaves_ = 0;
  std::vector<std::unique_ptr<Node[]>> levels_;  // levels_[l]: the nodes whose children span 2^l leaves
};

}  // namespace packtrain::dataparallel
