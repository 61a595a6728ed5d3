// A job's cores in kfold and lth (--cores-per-job, --max-cores-per-job,
// --micro-batch, --parallelism): the part of the common options that knows
// dataparallel/ (common_options.cpp has no LibTorch, for the --config fuzz target).
#include "common_options.hpp"

#include <packtrain/dataparallel/data_parallel.hpp>
#include <packtrain/scheduler/error.hpp>

#include <algorithm>
#include <string>

namespace packtrain::cli {

namespace po = boost::program_options;

void add_job_core_options(po::options_description& desc, JobCoreOptions& o) {
  o.micro_batch = dataparallel::kDefaultMicroBatch;
  desc.add_options()
    ("cores-per-job", po::value(&o.cores_per_job)->default_value(o.cores_per_job),
     "whole cores each job owns; a job with several trains replicas on --micro-batch samples (or intra-op threads: "
     "--parallelism)")
    ("max-cores-per-job", po::value(&o.max_cores_per_job),
     "replicas: a job may grow onto up to M cores while they would be idle (the tail of the sweep) and gives them back "
     "when a waiting job needs them; its numbers stay the same (default: --cores-per-job)")
    ("micro-batch", po::value(&o.micro_batch)->default_value(o.micro_batch),
     "replicas: each step's --batch-size samples are cut into micro-batches of N; must divide --batch-size")
    ("memory-per-job", po::value(&o.memory_mb)->default_value(o.memory_mb),
     "MiB of LibTorch tensors each job may hold (its threads' allocations): a job that would pass it fails, `over "
     "memory`, and the others go on; jobs start only while their budgets fit the node's memory. 0: no budget (each "
     "job's peak is in its metrics, peak_memory_mb)")
    ("parallelism", po::value(&o.parallelism),
     "replicas or threads, for jobs with more than one core (default: per model, from bench/dataparallel: threads "
     "for mlp, replicas for the others)");
}

void check_micro_batches_for_ranks(int batch_size, std::int64_t micro_batch, int ranks) {
  const auto micro_batches = micro_batch > 0 ? batch_size / micro_batch : 0;
  if (micro_batches < ranks)
    throw Error("--batch-size " + std::to_string(batch_size) + " is " + std::to_string(micro_batches) +
                " micro-batch(es) of " + std::to_string(micro_batch) + ", fewer than the " + std::to_string(ranks) +
                " ranks that share each step: raise --batch-size or lower --micro-batch");
}

void add_gang_option(po::options_description& desc, CommonOptions& common) {
  add_ranks_per_job_option(
      desc, common,
      "under mpirun: train each job as a gang of R ranks at once (replicas on --cores-per-job cores of each, "
      "gradients allreduced between them). The ranks form groups of R; jobs go longest first to a group or, past "
      "the last whole group, to a rank of their own, wherever they are expected to end first");
}

std::optional<dataparallel::Parallelism> check_job_core_options(const CommonOptions& common, const JobCoreOptions& o,
                                                                int node_cores, std::uint64_t node_memory_mb) {
  if (o.memory_mb < 0) throw Error("--memory-per-job must be a count of MiB, not " + std::to_string(o.memory_mb));
  if (static_cast<std::uint64_t>(o.memory_mb) > node_memory_mb)
    throw Error("--memory-per-job " + std::to_string(o.memory_mb) + " is more than the " +
                std::to_string(node_memory_mb) + " MiB of memory this run has");
  std::optional<dataparallel::Parallelism> how;
  if (!o.parallelism.empty()) how = dataparallel::parallelism_from_string(o.parallelism);
  if (o.cores_per_job > node_cores)
    throw Error("--cores-per-job " + std::to_string(o.cores_per_job) + " is more than the " +
                std::to_string(node_cores) + " core(s) this run uses");
  if (common.given.count("max-cores-per-job") && o.max_cores_per_job > node_cores)
    throw Error("--max-cores-per-job " + std::to_string(o.max_cores_per_job) + " is more than the " +
                std::to_string(node_cores) + " core(s) this run uses");
  const bool gangs = common.ranks_per_job > 1;
  if (common.given.count("micro-batch") && std::max(o.cores_per_job, o.max_cores_per_job) <= 1 && !gangs)
    throw Error("--micro-batch is for jobs that train replicas: give --cores-per-job or --max-cores-per-job above 1");
  if (gangs) {
    if (how == dataparallel::Parallelism::threads)
      throw Error("--ranks-per-job trains every job as replicas over its ranks; --parallelism threads keeps a job on "
                  "one process");
    check_micro_batches_for_ranks(common.batch_size, o.micro_batch, common.ranks_per_job);
  }
  return how;
}

}  // namespace packtrain::cli
