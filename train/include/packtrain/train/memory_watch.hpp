#pragma once
// Charges LibTorch's CPU allocations to the job of the thread that makes
// them (scheduler/job_memory.hpp): an allocation that would pass the job's
// budget throws packtrain::Error ("over memory: ..."), and the runner
// records the job failed, over memory. Memory freed later, on any thread,
// is credited back to the job it was charged to.
//
// Wraps the CPU allocator LibTorch has when it is called (its default,
// OpenMP-aware malloc): call it once, early, before jobs run; later calls
// do nothing. Allocations outside jobs are not charged.
namespace packtrain::train {

void watch_job_memory();

}  // namespace packtrain::train
