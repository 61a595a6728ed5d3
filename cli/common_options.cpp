#include "common_options.hpp"

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
                                              "shard", "checkpoint-every", "max-cores", "token", "token-file",
                                              "oversubscribe", "bucket-cap-mb", "overlap", "no-supervise", "memory-per-job",
                                              "plan", "dry-run", "gpus", "gpu-slots", "gpu-memory-per-job"};

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

// Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool is_utf8(const std::string& text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char c = *p++;
    if (c < 0x80) continue;
    int more = 0;
    unsigned lowest = 0;
    unsigned code = 0;
    if (c >= 0xc2 && c <= 0xdf) {
      more = 1, lowest = 0x80, code = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
      more = 2, lowest = 0x800, code = c & 0x0fu;
    } else if (c >= 0xf0 && c <= 0xf4) {
      more = 3, lowest = 0x10000, code = c & 0x07u;
    } else {
      return false;
    }
    if (end - p < more) return false;
    for (int i = 0; i < more; ++i, ++p) {
      if ((*p & 0xc0u) != 0x80u) return false;
      code = (code << 6) | (*p & 0x3fu);
    }
    if (code < lowest || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return false;
  }
  return true;
}

// Boost.Program_options (1.74) builds an error's message by replacing
// placeholders such as %value% with what the user typed, until none is
// left: a value that itself holds "%value%" never ends (`--folds %value%`
// hung; found by fuzz_config). The substitutions are protected members,
// reached through a derived class; every '%' in them becomes a fullwidth
// percent sign before the message is built.
struct SafeMessage : po::error_with_option_name {
  static void defuse(po::error_with_option_name& e) {
    for (auto& [placeholder, text] : e.*(&SafeMessage::m_substitutions)) {
      std::string safe;
      for (const char c : text) safe += c == '%' ? std::string("\xef\xbc\x85") : std::string(1, c);
      text = safe;
    }
  }
};

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
     "dataset: fashion-mnist, mnist-digits, a folder of MNIST-format IDX files (gz or raw) or of CIFAR-10 "
     "binary batches (data_batch_1.bin ... test_batch.bin), or NumPy arrays: a folder of x_train.npy, y_train.npy "
     "(and x_test.npy, y_test.npy) or one .npz holding them")
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
     "run share I of N of the jobs, as I/N (default from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT when set)")
    ("no-supervise", po::bool_switch(&o.no_supervise),
     "run the jobs in this process, without the supervising parent that restarts the run with --resume after a "
     "crash (segfault, abort, OOM kill) and records a job running at two crashes as crashed: for debuggers. "
     "Command line only")
    ("oversubscribe", po::bool_switch(&o.oversubscribe),
     "under mpirun: let more ranks than cores share a node's cores (a core to each, some cores to several); "
     "the run's core count and speedup count each core once")
    ("gpus", po::value(&o.gpus)->default_value(o.gpus),
     "GPUs the jobs may use beside the cores: 'all' or how many (in CUDA_VISIBLE_DEVICES' order). Training on "
     "GPUs needs a build whose LibTorch has CUDA, which this one has not (docs/gpu.md)")
    ("gpu-slots", po::value(&o.gpu_slots)->default_value(o.gpu_slots, "from free memory"),
     "jobs at once on each GPU (default: as many as its free memory holds at --gpu-memory-per-job, up to 8; one "
     "without it)")
    ("gpu-memory-per-job", po::value(&o.gpu_memory_per_job)->default_value(o.gpu_memory_per_job, "not accounted"),
     "MiB of GPU memory each job's slot holds; a GPU takes no more jobs than fit its free memory");
}

void add_ranks_per_job_option(po::options_description& desc, CommonOptions& o, const std::string& help,
                              const std::string& default_text) {
  desc.add_options()("ranks-per-job", po::value(&o.ranks_per_job)->default_value(o.ranks_per_job, default_text),
                     help.c_str());
}

bool parse_options(int argc, char** argv, const po::options_description& desc, const std::string& usage,
                   CommonOptions& common, const po::positional_options_description* positional) {
  po::variables_map vm;
  try {
    // argv[0] is the subcommand; command_line_parser skips it itself.
    po::command_line_parser parser(argc, argv);
    parser.options(desc);
    if (positional) parser.positional(*positional);
    po::store(parser.run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: " << usage << "\n\n" << desc << "\n";
      return false;
    }
    if (vm.count("config")) {
      const auto path = vm["config"].as<std::string>();
      std::ifstream in(path);
      if (!in) throw Error("cannot read --config file '" + path + "'");
      const bool no_supervise = vm.count("no-supervise") && !vm["no-supervise"].defaulted();
      po::store(po::parse_config_file(in, desc), vm);
      // The supervising parent decides before any option is parsed.
      if (vm.count("no-supervise") && !vm["no-supervise"].defaulted() && !no_supervise)
        throw Error("no-supervise in --config file '" + path +
                    "': give --no-supervise on the command line (the supervising process starts before the file is "
                    "read)");
    }
    po::notify(vm);
  } catch (po::error_with_option_name& e) {
    SafeMessage::defuse(e);
    throw Error(std::string(e.what()) + " (see --help)");
  } catch (const po::error& e) {
    throw Error(std::string(e.what()) + " (see --help)");
  }
  for (const auto& [name, value] : vm) {
    // The flags are kept in the journal as JSON, which holds text only.
    if (!is_utf8(value_text(value.value())))
      throw Error("--" + name + ": its value is not UTF-8 text (packtrain records every flag in the run's journal)");
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
