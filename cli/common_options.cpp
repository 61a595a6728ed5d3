#include "common_options.hpp"

#include <packtrain/dataparallel/data_parallel.hpp>
#include <packtrain/scheduler/error.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

namespace po = boost::program_options;

namespace packtrain::cli {

const std::set<std::string> kRunLevelFlags = {"help", "out",    "resume", "cores", "serve",
                                              "bind", "sample-ms", "config", "quiet", "serial",
                                              "shard", "checkpoint-every", "max-cores", "token", "token-file"};

namespace {

// An option's value as text, for the journal's record of the flags.
std::string value_text(const boost::any& value) {
  if (const auto* v = boost::any_cast<std::string>(&value)) return *v;
  if (const auto* v = boost::any_cast<int>(&value)) return std::to_string(*v);
  if (const auto* v = boost::any_cast<std::int64_t>(&value)) return std::to_string(*v);
  if (const auto* v = boost::any_cast<std::uint64_t>(&value)) return std::to_string(*v);
  if (const auto* v = boost::any_cast<double>(&value)) return number_text(*v);
  if (const auto* v = boost::any_cast<bool>(&value)) return *v ? "true" : "false";
  return "?";
}

}  // namespace

std::string number_text(double value) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", value);
  return buf;
}

void refuse_together(const CommonOptions& common, const std::string& flag, const std::string& other,
                     const std::string& reason) {
  if (common.given.count(flag) && common.given.count(other))
    throw Error("--" + flag + " cannot be used with --" + other + " (" + reason + ")");
}

void add_common_options(po::options_description& desc, CommonOptions& o) {
  desc.add_options()
    ("help,h", "print this help and exit")
    ("data", po::value(&o.data)->default_value(o.data),
     "dataset: fashion-mnist, mnist-digits, or a folder of MNIST-format IDX files (gz or raw) or of CIFAR-10 "
     "binary batches (data_batch_1.bin ... test_batch.bin)")
    ("out", po::value(&o.out), "the run's folder (journal, results, report): a new or empty folder, or with "
     "--resume one holding this same run")
    ("cores", po::value<int>()->notifier([&o](int n) { o.cores = n; }),
     "cores to use (default: every usable core)")
    ("seed", po::value(&o.seed)->default_value(o.seed), "base seed; each job derives its own from it")
    ("batch-size", po::value(&o.batch_size)->default_value(o.batch_size), "minibatch size")
    ("optimizer", po::value(&o.optimizer)->default_value(o.optimizer), "sgd (momentum 0.9) or adam")
    ("lr", po::value(&o.lr)->default_value(o.lr, number_text(o.lr)), "learning rate (0: 0.05 for sgd, 0.001 for adam)")
    ("resume", po::bool_switch(&o.resume),
     "go on with the run in --out, skipping the jobs its journal records as done; refused unless it is the same "
     "run (command, job-defining flags, shard)")
    ("serve", po::value(&o.serve_port)->default_value(o.serve_port),
     "serve a live dashboard on --bind's address, port PORT, while the run goes (0: off)")
    ("bind", po::value(&o.bind)->default_value(o.bind),
     "the address --serve listens on; one other machines can reach needs --token or --token-file")
    ("token", po::value(&o.token),
     "the dashboard answers only requests that carry this token (open /?token=TOKEN, or send 'Authorization: "
     "Bearer TOKEN'); at least 16 characters, e.g. from 'openssl rand -hex 16'. Visible to other users in ps: "
     "prefer --token-file")
    ("token-file", po::value(&o.token_file), "read --token from the first line of FILE")
    ("sample-ms", po::value(&o.sample_ms)->default_value(o.sample_ms),
     "milliseconds between utilization samples (trace.json, report.html)")
    ("config", po::value(&o.config), "read options from FILE, one 'key = value' a line")
    ("quiet,q", po::bool_switch(&o.quiet), "print only errors and the final summary")
    ("shard", po::value(&o.shard),
     "run share I of N of the jobs, as I/N (default from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT when set)");
}

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
    ("parallelism", po::value(&o.parallelism),
     "replicas or threads, for jobs with more than one core (default: per model, from bench/dataparallel: threads "
     "for mlp, replicas for the others)");
}

std::optional<dataparallel::Parallelism> check_job_core_options(const CommonOptions& common, const JobCoreOptions& o,
                                                                int node_cores) {
  std::optional<dataparallel::Parallelism> how;
  if (!o.parallelism.empty()) how = dataparallel::parallelism_from_string(o.parallelism);
  if (o.cores_per_job > node_cores)
    throw Error("--cores-per-job " + std::to_string(o.cores_per_job) + " is more than the " +
                std::to_string(node_cores) + " core(s) this run uses");
  if (common.given.count("max-cores-per-job") && o.max_cores_per_job > node_cores)
    throw Error("--max-cores-per-job " + std::to_string(o.max_cores_per_job) + " is more than the " +
                std::to_string(node_cores) + " core(s) this run uses");
  if (common.given.count("micro-batch") && std::max(o.cores_per_job, o.max_cores_per_job) <= 1)
    throw Error("--micro-batch is for jobs that train replicas: give --cores-per-job or --max-cores-per-job above 1");
  return how;
}

bool parse_options(int argc, char** argv, const po::options_description& desc, const std::string& usage,
                   CommonOptions& common) {
  po::variables_map vm;
  try {
    // argv[0] is the subcommand; command_line_parser skips it itself.
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: " << usage << "\n\n" << desc << "\n";
      return false;
    }
    if (vm.count("config")) {
      const auto path = vm["config"].as<std::string>();
      std::ifstream in(path);
      if (!in) throw Error("cannot read --config file '" + path + "'");
      po::store(po::parse_config_file(in, desc), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw Error(std::string(e.what()) + " (see --help)");
  }
  for (const auto& [name, value] : vm) {
    if (!value.defaulted()) common.given.insert(name);
    if (!kRunLevelFlags.count(name)) common.flags[name] = value_text(value.value());
  }
  return true;
}

std::vector<std::string> split_list(const std::string& text, const std::string& what) {
  std::vector<std::string> items;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) throw Error("empty item in " + what + " '" + text + "'");
    items.push_back(item);
  }
  if (items.empty()) throw Error(what + " is empty");
  return items;
}

}  // namespace packtrain::cli
