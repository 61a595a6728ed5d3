// packtrain batch PLAN.toml: every entry of a plan (a kfold sweep, a
// lottery-ticket sweep, a Hogwild run, a data-parallel train run) on one
// run. Each entry is one of the commands with its options; all their jobs
// go to one runner at once, so one entry's tail is filled with another's
// jobs (longest first across entries; elastic jobs grow onto what is
// left). One journal, one results.csv (with an `entry` column), one
// report.html (a section per entry). docs/cli.md "packtrain batch".
//
//   cores = 2                  # plan-wide (the command line wins): cores, seed, data
//   seed = 1
//
//   [[kfold]]
//   name = "sweep-a"           # optional: kfold-1, lth-1, ... by default
//   models = ["mlp", "lenet5"] # the command's flags, as keys; a list is "mlp,lenet5"
//
//   [[lth]]
//   name = "tickets"
//   model = "best:sweep-a"     # planned once sweep-a has ended, with its best model
//
//   [[hogwild]]
//   after = ["sweep-a"]        # its jobs start once sweep-a's have ended
//
// Everything wrong with a plan (TOML syntax, an unknown kind or key, a bad
// value, duplicate names, an unknown or circular `after`, a `best:` of an
// entry that picks no model) is one line naming the file and line, exit 2,
// before anything is started or written.
//
// best:ENTRY: a gate job follows ENTRY's jobs, picks its best group from
// their records (JobContext::dependencies) and, as it ends, adds the
// entry's jobs planned with those values (Job::then; a resumed run adds
// them again from the gate's journal row).
#include "command_entry.hpp"
#include "commands.hpp"
#include "common_options.hpp"
#include "run_setup.hpp"

#include <packtrain/scheduler/error.hpp>

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>

namespace po = boost::program_options;

namespace packtrain::cli {
namespace {

const std::vector<std::string> kKinds = {"kfold", "lth", "hogwild", "train"};

// Keys an entry cannot have: the run's, set once for the whole batch.
const std::map<std::string, std::string> kPlanWideKeys = {
    {"cores", "plan-wide: set it once at the top of the plan (or --cores)"},
    {"seed", "plan-wide: set it once at the top of the plan (or --seed)"},
    {"data", "plan-wide: set it once at the top of the plan (or --data)"},
    {"out", "the batch's: packtrain batch PLAN --out DIR"},
    {"resume", "the batch's: packtrain batch PLAN --out DIR --resume"},
    {"serve", "the batch's flag"},
    {"bind", "the batch's flag"},
    {"token", "the batch's flag"},
    {"token-file", "the batch's flag"},
    {"sample-ms", "the batch's flag"},
    {"quiet", "the batch's flag"},
    {"shard", "the batch's flag"},
    {"oversubscribe", "the batch's flag"},
    {"no-supervise", "the batch's flag"},
    {"config", "not for a plan: its entries are the configuration"},
    {"help", "not for a plan"},
    {"serial", "not for a batch: run the entry's command alone with --serial for a one-core baseline"},
    {"ranks-per-job", "not for a batch yet: gang jobs run under the commands alone"},
};

// One [[kind]] table of the plan.
struct PlanEntry {
  std::string kind, name;
  int line = 0;                                 // its [[kind]] header
  std::vector<std::string> after;               // entry names
  int after_line = 0;
  std::vector<std::string> args;                // the command's argv: kind, --key, value, ...
  std::map<std::string, int> key_lines;         // flag -> line
  std::unique_ptr<CommandEntry> entry;
  std::vector<std::string> job_ids;             // plan()'s jobs
  // best:ENTRY: the flags (--model, ...) that take that entry's best
  // group's values, the entry, and the job that picks them (its gate).
  std::map<std::string, int> best_lines;        // flag -> line
  std::string best_of;
  std::string gate_id;
  bool planned = false;                         // its jobs exist (a best: entry: once its gate has run)
};

struct Plan {
  std::filesystem::path path;
  std::optional<int> cores;
  int cores_line = 0;
  std::optional<std::uint64_t> seed;
  std::optional<std::string> data;
  std::vector<PlanEntry> entries;
};

int line_of(const toml::source_region& source) { return static_cast<int>(source.begin.line); }

[[noreturn]] void plan_error(const std::filesystem::path& path, int line, const std::string& what) {
  throw Error(path.string() + ":" + std::to_string(line) + ": " + what);
}

// A scalar as a flag's text: "mlp", "3", "0.8", "true".
std::optional<std::string> scalar_text(const toml::node& node) {
  if (const auto s = node.value_exact<std::string>()) return *s;
  if (const auto i = node.value_exact<std::int64_t>()) return std::to_string(*i);
  if (const auto d = node.value_exact<double>()) {
    char buf[64];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), *d);  // shortest text that reads back the same
    return ec == std::errc() ? std::string(buf, end) : std::string();
  }
  if (const auto b = node.value_exact<bool>()) return *b ? "true" : "false";
  return std::nullopt;
}

// A fresh entry of `kind`, with the batch's --batch-size, --optimizer and
// --lr as its defaults (its own keys win): set before its options exist.
std::unique_ptr<CommandEntry> new_entry(const std::string& kind, const CommonOptions& batch) {
  auto entry = make_entry(kind);
  entry->common.batch_size = batch.batch_size;
  entry->common.optimizer = batch.optimizer;
  entry->common.lr = batch.lr;
  return entry;
}

// Parses an entry's argv (kind, --key, value, ...), gives it the batch's
// values no entry may set (its jobs are those of its command run with
// them), and checks its options.
void parse_entry(CommandEntry& entry, std::vector<std::string>& args, const CommonOptions& batch) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  parse_options(static_cast<int>(argv.size()), argv.data(), entry.options(), entry.usage(), entry.common);
  entry.common.data = batch.data;
  entry.common.seed = batch.seed;
  entry.common.resume = batch.resume;
  entry.common.quiet = batch.quiet;
  entry.check_options();
}

// The entry's keys as the command's argv, checked against its options.
// `defaults`: the batch's options (new_entry).
void read_entry(const Plan& plan, const std::string& kind, const toml::table& table, int index,
                const CommonOptions& defaults, PlanEntry& out) {
  out.kind = kind;
  out.line = line_of(table.source());
  out.name = kind + "-" + std::to_string(index);
  out.entry = new_entry(kind, defaults);
  out.args = {kind};
  auto& desc = out.entry->options();
  // Keys in file order (the table keeps them sorted by name).
  std::vector<std::pair<const toml::key*, const toml::node*>> keys;
  for (auto&& [key, node] : table) keys.emplace_back(&key, &node);
  std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    return line_of(a.first->source()) < line_of(b.first->source());
  });
  for (const auto& [key_ptr, node_ptr] : keys) {
    const std::string key(key_ptr->str());
    const toml::node& node = *node_ptr;
    const int line = line_of(key_ptr->source());
    const auto where = "[[" + kind + "]] " + key;
    if (key == "name") {
      const auto name = node.value_exact<std::string>();
      if (!name || name->empty()) plan_error(plan.path, line, where + " must be a non-empty string");
      if (name->find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != std::string::npos)
        plan_error(plan.path, line, where + " '" + *name + "': letters, digits, '-' and '_' only (it names folders)");
      out.name = *name;
      continue;
    }
    if (key == "after") {
      out.after_line = line;
      const auto* list = node.as_array();
      if (!list) plan_error(plan.path, line, where + " must be a list of entry names, e.g. after = [\"sweep-a\"]");
      for (const auto& item : *list) {
        const auto name = item.value_exact<std::string>();
        if (!name) plan_error(plan.path, line, where + " must be a list of entry names (strings)");
        out.after.push_back(*name);
      }
      continue;
    }
    if (const auto it = kPlanWideKeys.find(key); it != kPlanWideKeys.end())
      plan_error(plan.path, line, where + " is " + it->second);
    const auto* option = desc.find_nothrow(key, /*approx=*/false);
    if (!option) plan_error(plan.path, line, "[[" + kind + "]] has no key '" + key + "' (packtrain " + kind + " --help lists them)");
    std::string text;
    if (const auto* list = node.as_array()) {
      for (const auto& item : *list) {
        const auto t = scalar_text(item);
        if (!t || item.is_array() || item.is_table()) plan_error(plan.path, line, where + " must be a list of plain values (strings, numbers, true/false)");
        text += (text.empty() ? "" : ",") + *t;
      }
      if (text.empty()) plan_error(plan.path, line, where + " is an empty list");
    } else if (const auto t = scalar_text(node)) {
      text = *t;
    } else {
      plan_error(plan.path, line, where + " must be a string, number, true/false or a list of them");
    }
    if (text.rfind("best:", 0) == 0 || text.find(",best:") != std::string::npos) {
      static const std::set<std::string> takes_best = {"model", "models", "schedule", "schedules"};
      if (!takes_best.count(key))
        plan_error(plan.path, line, where + ": best:ENTRY is for model(s) and schedule(s), the values a sweep picks");
      if (node.is_array() || text.find(',') != std::string::npos)
        plan_error(plan.path, line, where + ": best:ENTRY is one value, not one of a list");
      const auto from = text.substr(5);
      if (!out.best_of.empty() && out.best_of != from)
        plan_error(plan.path, line, where + ": best:" + from + " and best:" + out.best_of + " in one entry: take both from one");
      out.best_of = from;
      out.best_lines["--" + key] = line;
    }
    const bool is_switch = option->semantic()->max_tokens() == 0;
    if (is_switch) {
      if (!node.is_boolean()) plan_error(plan.path, line, where + " is a switch: write " + key + " = true (or false)");
      if (text == "true") out.args.push_back("--" + key);
    } else {
      out.args.push_back("--" + key);
      out.args.push_back(text);
    }
    out.key_lines["--" + key] = line;
  }
}

Plan read_plan(const std::filesystem::path& path, const CommonOptions& defaults) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error("no plan file at " + path.string());
  Plan plan;
  plan.path = path;
  toml::table root;
  try {
    root = toml::parse_file(path.string());
  } catch (const toml::parse_error& e) {
    plan_error(path, line_of(e.source()), "not valid TOML: " + std::string(e.description()));
  }
  std::map<std::string, int> counts;
  for (auto&& [key_ref, node] : root) {
    const std::string key(key_ref.str());
    const int line = line_of(key_ref.source());
    if (key == "cores" || key == "seed") {
      const auto value = node.value_exact<std::int64_t>();
      if (!value || *value < (key == "cores" ? 1 : 0) || (key == "cores" && *value > 100000))
        plan_error(path, line, key + (key == "cores" ? " must be a whole number of cores, 1 to 100000" : " must be a whole number, at least 0"));
      if (key == "cores") plan.cores = static_cast<int>(*value), plan.cores_line = line;
      else plan.seed = static_cast<std::uint64_t>(*value);
      continue;
    }
    if (key == "data") {
      const auto value = node.value_exact<std::string>();
      if (!value || value->empty()) plan_error(path, line, "data must be a string: a dataset's name or path");
      plan.data = *value;
      continue;
    }
    if (std::find(kKinds.begin(), kKinds.end(), key) == kKinds.end())
      plan_error(path, line, "unknown " + std::string(node.is_array_of_tables() ? "entry kind [[" + key + "]]" : "key '" + key + "'") +
                                 ": a plan has cores, seed, data and entries [[kfold]], [[lth]], [[hogwild]], [[train]]");
    const auto* tables = node.as_array();
    if (!tables || !tables->is_array_of_tables())
      plan_error(path, line, key + " must be written as [[" + key + "]] tables, one an entry");
    for (const auto& t : *tables) {
      PlanEntry entry;
      read_entry(plan, key, *t.as_table(), ++counts[key], defaults, entry);
      plan.entries.push_back(std::move(entry));
    }
  }
  if (plan.entries.empty()) plan_error(path, 1, "the plan has no entries ([[kfold]], [[lth]], [[hogwild]], [[train]])");
  std::sort(plan.entries.begin(), plan.entries.end(), [](const PlanEntry& a, const PlanEntry& b) { return a.line < b.line; });
  // Names: unique; `after`: known names, no cycle.
  std::map<std::string, std::size_t> by_name;
  for (std::size_t i = 0; i < plan.entries.size(); ++i) {
    const auto& e = plan.entries[i];
    if (const auto it = by_name.find(e.name); it != by_name.end())
      plan_error(path, e.line, "a second entry named '" + e.name + "' (the first is at line " +
                                   std::to_string(plan.entries[it->second].line) + "): names must differ");
    by_name[e.name] = i;
  }
  for (const auto& e : plan.entries)
    for (const auto& a : e.after) {
      if (!by_name.count(a)) plan_error(path, e.after_line, "'" + e.name + "' is after '" + a + "', which no entry is named");
      if (a == e.name) plan_error(path, e.after_line, "'" + e.name + "' is after itself");
    }
  for (auto& e : plan.entries) {
    if (e.best_of.empty()) continue;
    const int line = e.best_lines.begin()->second;
    const auto it = by_name.find(e.best_of);
    if (it == by_name.end()) plan_error(path, line, "best:" + e.best_of + ": no entry is named '" + e.best_of + "'");
    const auto& from = plan.entries[it->second];
    if (from.name == e.name) plan_error(path, line, "best:" + e.best_of + " names its own entry");
    if (!from.entry->picks_best())
      plan_error(path, line, "best:" + e.best_of + " names the [[" + from.kind + "]] entry '" + from.name +
                                 "', which is not a sweep that picks a best model and schedule (a [[kfold]] entry is)");
  }
  for (const auto& e : plan.entries) {
    // An entry planned when another ends cannot be waited for by a third (yet): its jobs do not exist at the start.
    for (const auto& a : e.after)
      if (!plan.entries[by_name.at(a)].best_of.empty())
        plan_error(path, e.after_line, "'" + e.name + "' is after '" + a + "', whose jobs are planned only once '" +
                                           plan.entries[by_name.at(a)].best_of + "' has ended (best:): an entry cannot wait "
                                           "for such an entry yet");
    if (!e.best_of.empty() && !plan.entries[by_name.at(e.best_of)].best_of.empty())
      plan_error(path, e.best_lines.begin()->second,
                 "best:" + e.best_of + " names an entry that itself takes best:" +
                     plan.entries[by_name.at(e.best_of)].best_of + ": one step of best: at a time, for now");
  }
  std::vector<int> state(plan.entries.size(), 0);  // 0 unseen, 1 on the path, 2 done
  std::vector<std::string> path_names;
  std::function<void(std::size_t)> visit = [&](std::size_t i) {
    state[i] = 1;
    path_names.push_back(plan.entries[i].name);
    for (const auto& a : plan.entries[i].after) {
      const auto j = by_name.at(a);
      if (state[j] == 1) {
        std::string cycle;
        const auto from = std::find(path_names.begin(), path_names.end(), a);
        for (auto it = from; it != path_names.end(); ++it) cycle += *it + " -> ";
        plan_error(path, plan.entries[i].after_line, "a cycle in after: " + cycle + a);
      }
      if (state[j] == 0) visit(j);
    }
    path_names.pop_back();
    state[i] = 2;
  };
  for (std::size_t i = 0; i < plan.entries.size(); ++i)
    if (state[i] == 0) visit(i);
  return plan;
}

// Runs f, turning an Error into one naming the plan's line: the line of
// the key a message names (--folds), else the entry's header.
template <typename F>
auto at_entry(const Plan& plan, const PlanEntry& e, F&& f) {
  try {
    return f();
  } catch (const std::exception& error) {  // packtrain's Error, or LibTorch's on a model that cannot take the data
    std::string what = error.what();
    what = what.substr(0, what.find('\n'));
    const std::string see = " (see --help)";
    if (what.size() > see.size() && what.compare(what.size() - see.size(), see.size(), see) == 0)
      what.resize(what.size() - see.size());
    int line = e.line;
    // The key whose value the message quotes ('mlpx'), else the flag it names.
    for (std::size_t i = 1; i + 1 < e.args.size(); ++i)
      if (e.key_lines.count(e.args[i]) && !e.args[i + 1].empty() &&
          what.find("'" + e.args[i + 1] + "'") != std::string::npos)
        line = e.key_lines.at(e.args[i]);
    for (const auto& [flag, l] : e.key_lines)
      if (what.find(flag + "'") != std::string::npos || what.find(flag + " ") != std::string::npos) line = l;
    plan_error(plan.path, line, "[[" + e.kind + "]] " + e.name + ": " + what);
  }
}

// The records of one entry's jobs, counted as a run of their own.
RunSummary entry_run(const RunSummary& run, const std::vector<std::string>& ids) {
  RunSummary out = run;
  const std::set<std::string> mine(ids.begin(), ids.end());
  out.jobs.clear();
  out.done = out.failed = out.diverged = out.skipped = out.cancelled = out.crashed = 0;
  out.job_seconds = 0;
  for (const auto& r : run.jobs) {
    if (!mine.count(r.id)) continue;
    out.jobs.push_back(r);
    switch (r.status) {
      case JobStatus::done: ++out.done; break;
      case JobStatus::failed: ++out.failed; break;
      case JobStatus::diverged: ++out.diverged; break;
      case JobStatus::skipped: ++out.skipped; break;
      case JobStatus::cancelled: ++out.cancelled; break;
      case JobStatus::crashed: ++out.crashed; break;
      default: break;
    }
    out.job_seconds += r.seconds();
  }
  return out;
}

std::string cost_text(double cost) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), cost >= 1e9 ? "%.1f G" : "%.3g", cost >= 1e9 ? cost / 1e9 : cost);
  return buf;
}

// --dry-run: every job, its entry, cores and estimated cost.
void print_jobs(const Plan& plan, const std::vector<Job>& jobs, const std::map<std::string, std::string>& entry_of,
                int cores) {
  std::size_t width = 4;
  for (const auto& j : jobs) width = std::max(width, j.name.size());
  std::printf("%-12s %-*s %-16s %7s %12s  %s\n", "entry", static_cast<int>(width), "job", "id", "cores", "cost", "after");
  double total = 0;
  for (const auto& j : jobs) {
    const std::string c = std::to_string(j.cores) + (j.max_cores > j.cores ? "-" + std::to_string(j.max_cores) : "");
    std::string after;
    for (const auto& e : plan.entries)
      if (e.name == entry_of.at(j.id()))
        for (const auto& a : e.after) after += (after.empty() ? "" : ",") + a;
    std::printf("%-12s %-*s %-16s %7s %12s  %s\n", entry_of.at(j.id()).c_str(), static_cast<int>(width), j.name.c_str(),
                j.id().c_str(), c.c_str(), cost_text(j.cost).c_str(), after.c_str());
    total += j.cost;
  }
  std::printf("%zu job(s) in %zu entr%s on %d core(s); cost %s in all (training FLOPs; the runner starts the costliest "
              "first)\n", jobs.size(),
              plan.entries.size(), plan.entries.size() == 1 ? "y" : "ies", cores, cost_text(total).c_str());
}

}  // namespace

int batch_command(int argc, char** argv) {
  CommonOptions common;
  std::string plan_path;
  bool dry_run = false;
  po::options_description desc(
      "packtrain batch: every entry of PLAN.toml (kfold, lth, hogwild and train runs, each with its command's options) "
      "packed onto one run: one journal, one results.csv with an entry column, one report.html");
  add_common_options(desc, common);
  desc.add_options()
    ("plan", po::value(&plan_path), "the plan: a TOML file of [[kfold]], [[lth]], [[hogwild]] and [[train]] entries (docs/cli.md, "
     "examples/batch/plan.toml)")
    ("dry-run", po::bool_switch(&dry_run),
     "print every job (its entry, cores and estimated cost) and the predicted makespan (packtrain simulate), and "
     "run nothing");
  po::positional_options_description positional;
  positional.add("plan", 1);
  if (!parse_options(argc, argv, desc, "packtrain batch PLAN.toml [options] --out DIR", common, &positional)) return 0;
  if (plan_path.empty()) throw Error("name the plan: packtrain batch PLAN.toml --out DIR");

  // Everything that can be wrong with the plan, before anything is written.
  auto plan = read_plan(plan_path, common);
  // Plan-wide values: the command line wins over the plan.
  if (plan.cores && !common.cores) common.cores = plan.cores;
  if (plan.seed && !common.given.count("seed")) common.seed = *plan.seed;
  if (plan.data && !common.given.count("data")) common.data = *plan.data;
  common.flags["seed"] = std::to_string(common.seed);
  common.flags["data"] = common.data;
  for (auto& e : plan.entries) {
    e.entry->meta_prefix = "entry." + e.name + ".";
    at_entry(plan, e, [&] {
      parse_entry(*e.entry, e.args, common);
      return 0;
    });
  }
  const bool simulating = RunSetup::simulating();
  if (dry_run && common.out.empty()) common.out = "(dry run)";  // never created
  // The plan's cores, refused by the node: the plan's line.
  const auto make_setup = [&] {
    try {
      return std::make_unique<RunSetup>(common, "batch", false);
    } catch (const Error& e) {
      if (plan.cores_line > 0 && !common.given.count("cores") && std::string(e.what()).find("--cores") != std::string::npos)
        plan_error(plan.path, plan.cores_line, std::string("cores: ") + e.what());
      throw;
    }
  };
  const auto setup_owner = make_setup();
  RunSetup& setup = *setup_owner;

  std::vector<Job> jobs;
  std::map<std::string, std::string> entry_of;  // job id -> entry (the jobs planned at the start)
  std::map<std::string, std::vector<std::string>> ids_of;
  const bool any_best = std::any_of(plan.entries.begin(), plan.entries.end(),
                                    [](const PlanEntry& e) { return !e.best_of.empty(); });
  if (any_best) {
    const auto& e = *std::find_if(plan.entries.begin(), plan.entries.end(),
                                  [](const PlanEntry& x) { return !x.best_of.empty(); });
    const auto refuse = [&](const std::string& why) {
      plan_error(plan.path, e.best_lines.begin()->second, "best:" + e.best_of + ": " + why);
    };
    if (setup.shards() > 1 || setup.ranks() > 1)
      refuse("planned from every job's result in one process: not with --shard or under mpirun yet (run the "
             "entries it waits for first, then a plan that names the model)");
    if (simulating && !dry_run)
      refuse("packtrain simulate cannot predict an entry planned from another's results (simulate the plan without "
             "it, with the model named)");
  }
  // Entries after others: every job starts once theirs have ended, however they ended.
  const auto follow_entries = [&](const PlanEntry& e, Job& job) {
    for (const auto& a : e.after)
      for (const auto& before : ids_of.at(a)) job.follows.push_back(before);
  };
  // Planned so that an entry comes after those it waits for (the plan has no cycle).
  std::vector<PlanEntry*> order;
  std::set<std::string> placed;
  std::function<void(PlanEntry&)> place = [&](PlanEntry& e) {
    if (!placed.insert(e.name).second) return;
    for (const auto& a : e.after)
      for (auto& other : plan.entries)
        if (other.name == a) place(other);
    order.push_back(&e);
  };
  for (auto& e : plan.entries) place(e);
  for (auto* entry : order) {
    auto& e = *entry;
    if (!e.best_of.empty()) continue;
    auto mine = at_entry(plan, e, [&] { return e.entry->plan(setup); });
    for (auto& job : mine) {
      const auto id = job.id();
      if (const auto it = entry_of.find(id); it != entry_of.end())
        plan_error(plan.path, e.line, "[[" + e.kind + "]] " + e.name + " has the job " + job.name + " (" + id +
                                          ") that entry '" + it->second + "' has too: the same job twice");
      entry_of[id] = e.name;
      e.job_ids.push_back(id);
      follow_entries(e, job);
      jobs.push_back(std::move(job));
    }
    e.planned = true;
    ids_of[e.name] = e.job_ids;
  }
  // best:ENTRY: a job (the gate) follows that entry's jobs, picks its best
  // group from their records, and then adds this entry's jobs, planned with
  // those values (Job::then; again from its journal record on --resume).
  //
  // The entry's argv with `picked`'s values in place of best:ENTRY, parsed,
  // checked and planned as at the start (a fresh entry object each time).
  const auto plan_picked = [&](const PlanEntry& e, const nlohmann::json& picked, std::vector<std::string>& args) {
    args = e.args;
    for (std::size_t i = 1; i + 1 < args.size(); ++i)
      if (e.best_lines.count(args[i])) {
        const auto key = args[i].substr(2);
        const auto value = picked.value(key.back() == 's' ? key.substr(0, key.size() - 1) : key, std::string());
        if (value.empty()) throw Error("best:" + e.best_of + " picked no " + key);
        args[i + 1] = value;
      }
    auto entry = new_entry(e.kind, common);
    entry->meta_prefix = e.entry->meta_prefix;
    entry->planned_late = true;
    parse_entry(*entry, args, common);
    auto mine = entry->plan(setup);
    return std::pair{std::move(entry), std::move(mine)};
  };
  // Ids of every job planned so far, and a lock for the gates' `then`,
  // which may run at once (two entries taking best: of one sweep).
  std::set<std::string> taken;
  for (const auto& [id, name] : entry_of) taken.insert(id);
  std::mutex late;
  const auto first_taken = [&](const std::vector<Job>& mine) -> std::optional<std::string> {
    for (const auto& job : mine)
      if (taken.count(job.id())) return job.name + " (" + job.id() + ")";
    return std::nullopt;
  };
  for (auto& e : plan.entries) {
    if (e.best_of.empty()) continue;
    const auto& from = *std::find_if(plan.entries.begin(), plan.entries.end(),
                                     [&](const PlanEntry& x) { return x.name == e.best_of; });
    // Everything it can pick, planned now (and thrown away): a value the
    // entry's command refuses is the plan's error, before anything runs.
    if (!simulating) {
      std::set<std::vector<std::string>> tried;
      for (const auto& picked : from.entry->candidates()) {
        std::vector<std::string> args;
        const auto [entry, mine] = at_entry(plan, e, [&] {
          try {
            return plan_picked(e, picked, args);
          } catch (const Error& error) {
            throw Error("with " + picked.dump() + " (best:" + e.best_of + " may pick it): " + error.what());
          }
        });
        if (!tried.insert(args).second) continue;
        if (const auto dup = first_taken(mine))
          plan_error(plan.path, e.best_lines.begin()->second,
                     "best:" + e.best_of + " may pick " + picked.dump() + ", and then [[" + e.kind + "]] " + e.name +
                         " would have the job " + *dup + " that another entry has too: the same job twice");
      }
    }
    Job gate;
    gate.name = e.name + "/best-of-" + from.name;
    // Its identity: the entry's whole plan (a changed entry is another run's).
    gate.spec = {{"sweep", "batch"}, {"entry", e.name}, {"best_of", from.name}, {"plan", e.args}};
    gate.cost = 0;
    gate.follows = ids_of.at(from.name);
    follow_entries(e, gate);
    gate.run = [&from](JobContext& ctx) {
      const auto best = from.entry->best(ctx.dependencies());
      if (!best) throw Error("best:" + from.name + ": no job of '" + from.name + "' ended done and measured");
      nlohmann::json metrics = *best;
      metrics["best_of"] = from.name;
      return JobOutcome{.metrics = metrics};
    };
    gate.then = [&e, &setup, &plan_picked, &follow_entries, &taken, &late, &first_taken](const JobRecord& done) {
      const std::lock_guard lock(late);
      std::vector<std::string> args;
      auto [entry, mine] = plan_picked(e, done.metrics, args);
      if (const auto dup = first_taken(mine)) throw Error("its job " + *dup + " is another entry's too");
      // What a --resume plans from again: the same fused grouping.
      if (setup.is_root() && entry->meta.contains("fuse_cores"))
        setup.journal().set_meta(entry->meta_prefix + "fuse_cores", entry->meta["fuse_cores"].dump());
      e.job_ids.clear();
      for (auto& job : mine) {
        taken.insert(job.id());
        e.job_ids.push_back(job.id());
        follow_entries(e, job);
        job.follows.push_back(done.id);
      }
      e.args = std::move(args);
      e.entry = std::move(entry);
      e.planned = true;
      return std::move(mine);
    };
    e.gate_id = gate.id();
    entry_of[e.gate_id] = e.name;
    taken.insert(e.gate_id);
    jobs.push_back(std::move(gate));
  }

  // The journal's meta: the report's per-entry sections, results.csv's columns.
  nlohmann::json entries = nlohmann::json::array();
  std::vector<std::string> columns = {"job", "status", "entry"};
  nlohmann::json meta = nlohmann::json::object();
  const auto describe = [&] {
    entries = nlohmann::json::array();
    for (const auto& e : plan.entries) {
      nlohmann::json report = nlohmann::json::object();
      for (const auto& [key, value] : e.entry->meta.items())
        if (key != "fuse_cores") report[key] = value;
      auto ids = e.job_ids;
      if (!e.gate_id.empty()) ids.insert(ids.begin(), e.gate_id);
      nlohmann::json item = {{"name", e.name}, {"command", e.kind}, {"after", e.after}, {"meta", report}, {"jobs", ids}};
      if (!e.best_of.empty()) item["best_of"] = e.best_of;
      entries.push_back(std::move(item));
    }
    return entries;
  };
  for (const auto& e : plan.entries) {
    for (const auto& c : e.entry->columns)  // set before plan(): a best: entry's too
      if (std::find(columns.begin(), columns.end(), c) == columns.end()) columns.push_back(c);
    // An entry's own meta (kfold's fuse_cores), read back by a --resume.
    if (e.entry->meta.contains("fuse_cores")) meta[e.entry->meta_prefix + "fuse_cores"] = e.entry->meta["fuse_cores"];
  }
  meta["entries"] = describe();

  if (dry_run && !simulating) {
    if (setup.is_root()) {
      print_jobs(plan, jobs, entry_of, setup.node().core_count());
      for (const auto& e : plan.entries)
        if (!e.best_of.empty())
          std::printf("%s: its jobs are planned once %s has ended, with its best model and schedule (best:%s)\n",
                      e.name.c_str(), e.best_of.c_str(), e.best_of.c_str());
      std::fflush(stdout);
      if (any_best) {
        std::printf("no predicted makespan: packtrain simulate cannot plan the jobs of a best: entry ahead\n");
        return 0;
      }
      // The prediction: packtrain simulate over the same plan (folds unfused: simulate's model of kfold).
      const auto cores = std::to_string(setup.node().core_count());
      std::vector<std::string> args = {"simulate", "--quiet", "--cores", cores, "--", "batch", plan_path, "--cores", cores,
                                       "--seed", std::to_string(common.seed), "--data", common.data,
                                       "--batch-size", std::to_string(common.batch_size), "--optimizer", common.optimizer,
                                       "--lr", number_text(common.lr)};
      std::vector<char*> argv_sim;
      for (auto& a : args) argv_sim.push_back(a.data());
      return simulate_command(static_cast<int>(argv_sim.size()), argv_sim.data());
    }
    return 0;
  }

  setup.open_run(meta, std::move(jobs), columns);
  const auto run = setup.run();

  nlohmann::json summary = setup.summary_json(run);
  nlohmann::json entry_summaries = nlohmann::json::object();
  std::string text;
  for (auto& e : plan.entries) {
    const auto mine = entry_run(run, e.job_ids);
    // Its counts: its jobs and its gate (a failed gate is a failure of the entry's).
    auto ids = e.job_ids;
    if (!e.gate_id.empty()) ids.push_back(e.gate_id);
    const auto all = entry_run(run, ids);
    nlohmann::json s = {{"command", e.kind}, {"done", all.done},         {"failed", all.failed},
                        {"diverged", all.diverged}, {"skipped", all.skipped}, {"cancelled", all.cancelled},
                        {"job_seconds", all.job_seconds}};
    std::string lines;
    if (!e.gate_id.empty()) {
      const auto gate = std::find_if(run.jobs.begin(), run.jobs.end(), [&](const JobRecord& r) { return r.id == e.gate_id; });
      if (gate != run.jobs.end() && gate->status == JobStatus::done) {
        s["best"] = gate->metrics;
        lines += "best of " + e.best_of + ": " + gate->metrics.value("model", "") + "/" +
                 gate->metrics.value("schedule", "") + "\n";
      } else if (gate != run.jobs.end()) {
        lines += "not planned: " + gate->name + " " + std::string(to_string(gate->status)) +
                 (gate->message.empty() ? "" : ": " + gate->message) + "\n";
      }
    }
    // Planned, and its jobs in the run (the runner refuses jobs it cannot run).
    const bool planned = e.planned && !mine.jobs.empty();
    s["planned"] = planned;
    if (planned) lines += e.entry->summarize(setup, mine, s);
    entry_summaries[e.name] = s;
    text += "== " + e.name + " (" + e.kind + "): " + std::to_string(all.done) + " of " + std::to_string(all.jobs.size()) +
            " job(s) done ==\n" + lines;
    if (!lines.empty() && lines.back() != '\n') text += "\n";
  }
  summary["entries"] = entry_summaries;
  if (setup.is_root()) setup.journal().set_meta("entries", describe().dump());  // report meta known only now
  setup.finish(run, summary);
  if (setup.is_root()) std::printf("%s%s\n", text.c_str(), setup.speed_line(run).c_str());
  setup.print_outputs();
  return run.exit_code();
}

}  // namespace packtrain::cli
