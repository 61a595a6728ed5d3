#pragma once
// The options every packtrain subcommand takes (docs/cli.md), and the one
// parser that turns argv (and --config FILE) into them.

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace packtrain::dataparallel {
enum class Parallelism;  // data_parallel.hpp
}

namespace packtrain::cli {

struct CommonOptions {
  std::string data = "fashion-mnist";  // fashion-mnist | mnist-digits | PATH
  std::string out;                     // output folder of the run
  std::optional<int> cores;            // none: every usable core
  std::uint64_t seed = 1;
  int batch_size = 64;
  std::string optimizer = "sgd";       // sgd | adam
  double lr = 0.0;                     // 0: the optimizer's default
  bool resume = false;
  int serve_port = 0;                  // 0: no live dashboard
  std::string bind = "127.0.0.1";      // the live dashboard's address
  std::string token;                   // required of the dashboard's requests (--token, or read from --token-file)
  std::string token_file;
  int sample_ms = 250;                 // utilization sampling period
  std::string config;
  bool quiet = false;
  std::string shard;                   // "i/n": run share i of n (SLURM job arrays)
  bool oversubscribe = false;          // under mpirun: more ranks than a node's cores share them
  bool no_supervise = false;           // no supervising parent (cli/supervisor.hpp); read by it from argv
  int ranks_per_job = 1;               // under mpirun: every job a gang of this many ranks (kfold, lth, train)
  std::string gpus = "0";              // --gpus: "all" or how many of the GPUs found (0: none)
  int gpu_slots = 0;                   // jobs per GPU (0: from its free memory)
  std::int64_t gpu_memory_per_job = 0;  // MiB a job's slot holds (0: not accounted)

  // Filled by parse_options: every option's value as text, by flag name,
  // except the run-level ones (kRunLevelFlags) that do not change what the
  // jobs compute; and the flags the user gave (command line or --config).
  nlohmann::json flags = nlohmann::json::object();
  std::set<std::string> given;
};

// How the jobs of a sweep (kfold, lth) use several cores: --cores-per-job,
// --max-cores-per-job, --micro-batch, --parallelism (docs/cli.md).
struct JobCoreOptions {
  int cores_per_job = 1;
  int max_cores_per_job = 0;  // 0: cores_per_job
  std::int64_t micro_batch = 0;  // add_job_core_options sets dataparallel::kDefaultMicroBatch
  std::string parallelism;    // empty: per model
  std::int64_t memory_mb = 0;  // --memory-per-job: each job's budget (0: none; signed, so -1 is refused, not wrapped)
};
void add_job_core_options(boost::program_options::options_description& desc, JobCoreOptions& options);
// A gang of `ranks` ranks deals each step's micro-batches to its ranks: at
// least one each (train, and a sweep's --ranks-per-job). Throws Error.
void check_micro_batches_for_ranks(int batch_size, std::int64_t micro_batch, int ranks);
// --ranks-per-job for a sweep (kfold, lth); check_job_core_options checks it with the others.
void add_gang_option(boost::program_options::options_description& desc, CommonOptions& common);
// Throws Error, one line, for what a node of `node_cores` cores and
// `node_memory_mb` MiB cannot give the jobs, and for --micro-batch without
// jobs that train replicas. Returns --parallelism, if given.
std::optional<dataparallel::Parallelism> check_job_core_options(const CommonOptions& common,
                                                                const JobCoreOptions& options, int node_cores,
                                                                std::uint64_t node_memory_mb);

// Flags that change how a run goes but not its jobs: --resume may differ in
// them (--out, --cores, --serve, ...).
extern const std::set<std::string> kRunLevelFlags;

// Adds --data --out --cores --seed --batch-size --optimizer --lr --resume
// --serve --config --quiet (and --help) to `desc`, bound to `options`.
void add_common_options(boost::program_options::options_description& desc, CommonOptions& options);
// --ranks-per-job (kfold, lth, train): RunSetup checks it and plans the gangs.
void add_ranks_per_job_option(boost::program_options::options_description& desc, CommonOptions& options,
                              const std::string& help, const std::string& default_text = "1");

// Parses argv[1..] (argv[0] is the subcommand), then --config FILE if given
// (command line wins), then notifies. Returns false after printing help for
// --help. Throws packtrain::Error naming the bad option or value.
//
//   CommonOptions common; po::options_description desc("packtrain train");
//   add_common_options(desc, common); desc.add_options()("model", ...);
//   if (!parse_options(argc, argv, desc, "packtrain train [options]", common)) return 0;
// `positional`: the arguments without a flag (packtrain batch's PLAN).
bool parse_options(int argc, char** argv, const boost::program_options::options_description& desc,
                   const std::string& usage, CommonOptions& common,
                   const boost::program_options::positional_options_description* positional = nullptr);

// "0.2", "0.001", "1": a default value as a person would write it (Boost
// prints doubles in full precision: 0.20000000000000001).
std::string number_text(double value);

// Throws Error when `flag` was given together with `other`: "--a cannot be
// used with --b (reason)".
void refuse_together(const CommonOptions& common, const std::string& flag, const std::string& other,
                     const std::string& reason);

// Splits "a,b,c" into {"a","b","c"}; empty items are an Error naming `what`.
std::vector<std::string> split_list(const std::string& text, const std::string& what);

}  // namespace packtrain::cli
