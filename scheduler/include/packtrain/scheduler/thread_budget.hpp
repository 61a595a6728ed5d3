#pragma once
// The intra-op thread budget of the calling thread.
//
// Pins the calling thread to `cores` and sets its OpenMP thread count to
// cores.size(). OpenMP's setting is per thread (an ICV), and OpenBLAS's
// OpenMP build and oneDNN follow it, so concurrent jobs each get their own.
// libgomp keeps a team of helper threads per calling thread and they keep
// the affinity they were born with, so with more than one core the team is
// re-pinned to `cores` too: a job never spills onto another job's cores.
#include <vector>

namespace packtrain {

void apply_thread_budget(const std::vector<int>& cores);

}  // namespace packtrain
