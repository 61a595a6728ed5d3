#pragma once
// One data-parallel job over several processes (MPI ranks): a gang. Each
// member trains the same model on its own cores (replicas, data_parallel.hpp)
// and the members exchange what a step needs through this interface, which
// has no MPI in it (distributed::MpiGang implements it with MPI, a thread
// per communicator).
//
// A step's micro-batches are dealt by index in contiguous blocks: member r
// of R computes micro-batches [r M / R, (r + 1) M / R) of the step's M,
// sums its block with the in-node tree, and the members' sums are then
// added with the same pairwise tree over members, on every member alike.
// Where each block is a whole subtree of the one-process tree (M / R a
// power of two, R dividing M), that is the one-process sum, bit for bit;
// otherwise the bits depend on R only (the same for every run on R ranks).
// A run gives one process's bits when every step does: the last, short step
// of an epoch too (the training samples a multiple of the batch, or its
// micro-batches also dividing as above).
// The evaluation batches are dealt the same way and their sums gathered,
// so every member reports the same metrics and takes the same decisions.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace packtrain::dataparallel {

class Gang {
 public:
  virtual ~Gang() = default;
  virtual int rank() const = 0;  // 0 .. size() - 1
  virtual int size() const = 0;
  // Collective: every member's `bytes` bytes at `mine` land in `all`
  // (size() x bytes, in rank order) on every member. Throws
  // packtrain::Error when the exchange fails.
  virtual void allgather(const void* mine, std::size_t bytes, void* all) = 0;
  // The same, started now and finished in the background, after every
  // exchange started before it (a gradient bucket's, while backward goes
  // on); wait(ticket) returns once it is done, throwing its error. `mine`
  // and `all` must stay put until then. May be called from any one thread
  // at a time. By default the exchange is made at once.
  virtual std::uint64_t start_allgather(const void* mine, std::size_t bytes, void* all) {
    allgather(mine, bytes, all);
    return 0;
  }
  virtual void wait(std::uint64_t ticket) { (void)ticket; }
};

// A sweep's gang jobs (--ranks-per-job): the gang that trains the job of
// this id on this process, or null where one process trains it alone.
using GangOf = std::function<std::shared_ptr<Gang>(const std::string& job_id)>;

// Member `rank` of `members` takes items [first, first + count) of `items`.
struct Block {
  std::int64_t first = 0;
  std::int64_t count = 0;
};
inline Block block_of(std::int64_t items, int rank, int members) {
  const std::int64_t begin = items * rank / members;
  const std::int64_t end = items * (rank + 1) / members;
  return {begin, end - begin};
}

}  // namespace packtrain::dataparallel
