// packtrain simulate [options] -- COMMAND [its options]: builds the jobs
// COMMAND (kfold, lth, hogwild, train) would run, exactly as it builds them
// (RunSetup's capture: the command's own code, nothing runs, nothing is
// written), predicts each job's seconds, and runs the real placement policy
// over N simulated nodes in virtual time (scheduler/simulator.hpp).
//
// A job's seconds: with --from DIR, what the job with the same id took in
// that earlier run (its journal); a job it does not hold, its cost times the
// seconds per unit of cost the earlier run's jobs took (median). Without
// --from: its cost (3 x FLOPs a sample x samples x epochs) over the FLOP/s
// its model reaches on one core here, measured by a short step benchmark of
// each model (a quarter of a second each); evaluation is not in the cost.
#include "commands.hpp"
#include "common_options.hpp"
#include "run_setup.hpp"

#include <packtrain/dashboard/report.hpp>
#include <packtrain/dashboard/run_files.hpp>
#include <packtrain/dashboard/trace.hpp>
#include <packtrain/data/dataset.hpp>
#include <packtrain/models/models.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/journal.hpp>
#include <packtrain/scheduler/results.hpp>
#include <packtrain/scheduler/simulator.hpp>

#include <boost/program_options.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace po = boost::program_options;

namespace packtrain::cli {
namespace {

struct SimulateOptions {
  int nodes = 1;
  int cores = 0;  // 0: this machine's usable cores
  std::string from;
  double latency_us = 5;
  bool no_steal = false;
  std::string out;
  std::uint64_t seed = 1;
  bool quiet = false;
  double elastic_efficiency = 0.7;
  int gpus = 0;
  int gpu_slots = 1;
  std::string gpu_speedup;  // "X" or "model=X,model=Y"
};

// --gpu-speedup: how many times one core's speed a GPU slot trains each
// model at ("" for a model: it stays on the CPU).
std::map<std::string, double> parse_gpu_speedup(const std::string& text, double& every) {
  std::map<std::string, double> by_model;
  every = 0;
  if (text.empty()) return by_model;
  std::size_t at = 0;
  while (at <= text.size()) {
    const auto comma = text.find(',', at);
    const std::string item = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    const auto eq = item.find('=');
    const std::string value = eq == std::string::npos ? item : item.substr(eq + 1);
    char* end = nullptr;
    const double x = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size() || !(x > 0) || !std::isfinite(x))
      throw Error("--gpu-speedup takes X or MODEL=X,...: a speedup above 0, not '" + item + "'");
    if (eq == std::string::npos) every = x;
    else by_model[item.substr(0, eq)] = x;
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return by_model;
}

using Clock = std::chrono::steady_clock;

std::string duration_text(double seconds) {
  char text[32];
  if (seconds < 60) {
    std::snprintf(text, sizeof text, "%.1fs", seconds);
  } else if (seconds < 3600) {
    std::snprintf(text, sizeof text, "%dm%02ds", static_cast<int>(seconds) / 60, static_cast<int>(seconds) % 60);
  } else {
    std::snprintf(text, sizeof text, "%dh%02dm", static_cast<int>(seconds) / 3600, static_cast<int>(seconds) / 60 % 60);
  }
  return text;
}

// FLOP/s one core reaches training `model` at `batch` (SGD steps on random
// inputs of the data's shape, after two warm-up steps).
double measured_flops_per_second(const std::string& model, models::ModelOptions shape, std::int64_t batch) {
  torch::manual_seed(1);
  auto net = models::make_model(model, shape);
  net->train();
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const auto x = torch::randn({batch, shape.channels, shape.height, shape.width});
  const auto y = torch::randint(0, shape.classes, {batch}, torch::kLong);
  const auto step = [&] {
    sgd.zero_grad();
    torch::nn::functional::cross_entropy(net->forward(x), y).backward();
    sgd.step();
  };
  step();
  step();
  int steps = 0;
  const auto begin = Clock::now();
  double elapsed = 0;
  while (steps < 3 || elapsed < 0.25) {
    step();
    ++steps;
    elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
  }
  return 3.0 * models::estimate_flops(model, shape) * static_cast<double>(batch) * steps / elapsed;
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Each captured job's predicted seconds; says where they came from.
std::vector<double> predict_seconds(const CapturedJobs& captured, const std::shared_ptr<const data::DatasetSplit>& data,
                                    const SimulateOptions& o, std::string& how) {
  const auto& jobs = captured.jobs;
  std::vector<double> seconds(jobs.size(), -1);
  if (!o.from.empty()) {
    const auto path = std::filesystem::path(o.from) / "journal.sqlite";
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
      throw Error("--from " + o.from + " holds no journal.sqlite: give the folder of an earlier run");
    const auto journal = Journal::open_existing(path);  // one-line Error for a damaged or foreign file
    std::map<std::string, double> by_id;
    // A fused fold's row took no time of its own (its fused job trained it):
    // the simulation's folds are one job each, so such rows calibrate nothing.
    int fused = 0;
    for (const auto& r : journal->records()) {
      fused += r.metrics.contains("fused_job") ? 1 : 0;
      if (r.status == JobStatus::done && r.seconds() > 0 && !r.metrics.contains("fused_job")) by_id[r.id] = r.seconds();
    }
    if (fused > 0)
      std::fprintf(stderr, "packtrain simulate: %d job(s) of --from %s trained as fused folds and calibrate nothing; "
                   "for a prediction from a run, run it with --fuse off\n", fused, o.from.c_str());
    // An elastic job's time was shortened by the cores lent to it (lent.csv):
    // its time on its own cores is its time plus their share of the work.
    std::map<std::string, double> lent_seconds;
    for (const auto& a : dashboard::read_attempts(std::filesystem::path(o.from) / "lent.csv"))
      if (a.end > a.start) lent_seconds[a.job_id] += a.end - a.start;
    for (const auto& job : jobs)
      if (const auto it = by_id.find(job.id()); it != by_id.end() && job.max_cores > job.cores && lent_seconds.count(job.id()))
        it->second += o.elastic_efficiency * lent_seconds[job.id()] / std::max(1, job.cores);
    std::vector<double> per_cost;
    int matched = 0;
    for (std::size_t j = 0; j < jobs.size(); ++j)
      if (const auto it = by_id.find(jobs[j].id()); it != by_id.end()) {
        seconds[j] = it->second;
        ++matched;
        if (jobs[j].cost > 0) per_cost.push_back(it->second / jobs[j].cost);
      }
    if (matched == 0)
      throw Error("--from " + o.from + " ran none of these jobs (another sweep?): nothing to take their times from");
    const double rate = median_of(per_cost);
    for (std::size_t j = 0; j < jobs.size(); ++j)
      if (seconds[j] < 0) seconds[j] = jobs[j].cost * rate;
    how = "seconds from " + o.from + ": " + std::to_string(matched) + " of " + std::to_string(jobs.size()) +
          " jobs by id" + (matched < static_cast<int>(jobs.size()) ? ", the rest by cost at its median rate" : "");
    return seconds;
  }
  if (!data) throw Error("the command loaded no dataset: nothing to calibrate its models on");
  const auto begin = Clock::now();
  torch::set_num_threads(1);
  std::map<std::string, double> rate;  // model -> FLOP/s on one core
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    const auto& spec = jobs[j].spec;
    const std::string model = spec.contains("model") ? models::model_of_spec(spec) : std::string();  // a file's path
    if (model.empty()) throw Error(jobs[j].name + " names no model: run it once and simulate --from its folder");
    const std::int64_t batch = spec.value("batch_size", std::int64_t{64});
    const double width = spec.value("width_multiplier", 1.0);
    const std::string key = model + "/" + std::to_string(batch) + "/" + std::to_string(width);
    if (!rate.count(key)) {
      models::ModelOptions shape{.channels = data->channels, .height = data->height, .width = data->width,
                                 .classes = data->classes, .width_multiplier = width};
      rate[key] = measured_flops_per_second(model, shape, batch);
    }
    // A job of several cores: its replicas in step (their sync is not counted).
    seconds[j] = jobs[j].cost / (rate[key] * std::max(1, jobs[j].cores));
  }
  char text[160];
  std::snprintf(text, sizeof text, "seconds from each job's FLOPs at its model's speed on one core here "
                "(%zu model(s) measured in %.1f s; validation at the same speed)", rate.size(),
                std::chrono::duration<double>(Clock::now() - begin).count());
  how = text;
  return seconds;
}

void write_outputs(const std::filesystem::path& out, const CapturedJobs& captured, const std::vector<SimJob>& jobs,
                   const SimOptions& so, const SimResult& r, const std::string& how) {
  std::error_code ec;
  if (std::filesystem::exists(out / "journal.sqlite", ec))
    throw Error("--out " + out.string() + " holds a real run: simulate into another folder");
  std::filesystem::create_directories(out, ec);
  if (ec) throw Error("cannot create --out " + out.string() + ": " + ec.message());
  nlohmann::json attempts = nlohmann::json::array();
  for (const auto& a : r.attempts) {
    const auto& job = jobs[static_cast<std::size_t>(a.job)];
    attempts.push_back({{"job", job.id}, {"name", job.name}, {"node", a.node}, {"cores", a.cores},
                        {"start", a.start}, {"end", a.end}, {"lent", a.lent}, {"gpu_slot", a.gpu_slot}});
  }
  // trace.json: a builder per node (pid = node, a track per core), their
  // events joined into one file.
  std::string joined = "{\"traceEvents\":[\n";
  bool first = true;
  for (int k = 0; k < so.nodes; ++k) {
    dashboard::TraceBuilder b(k, 0.0, {{"simulated", true}});
    std::vector<int> all(static_cast<std::size_t>(so.cores));
    for (int c = 0; c < so.cores; ++c) all[static_cast<std::size_t>(c)] = c;
    b.add_cores(all);
    for (const auto& a : r.attempts) {
      if (a.node != k) continue;
      const auto& job = jobs[static_cast<std::size_t>(a.job)];
      // A GPU slot s is drawn as track cores + s.
      const std::vector<int> tracks = a.gpu_slot >= 0 ? std::vector<int>{so.cores + a.gpu_slot} : a.cores;
      dashboard::AttemptSpan span{.job_id = job.id,
                                  .name = job.name + (a.lent ? " (lent)" : a.gpu_slot >= 0 ? " (GPU slot)" : ""),
                                  .attempt = 1, .status = JobStatus::done, .start = a.start, .end = a.end,
                                  .cores = tracks, .rank = k};
      b.add_attempt(span, {{"job", job.id}, {"simulated", true}, {"seconds", a.end - a.start}, {"lent", a.lent}});
    }
    const auto text = nlohmann::json::parse(b.text());
    for (const auto& e : text["traceEvents"]) {
      joined += (first ? "" : ",\n") + e.dump();
      first = false;
    }
  }
  const nlohmann::json other = {{"simulated", true}, {"command", captured.command}, {"how", how},
                                {"nodes", so.nodes}, {"cores", so.cores}, {"start_unix", 0.0}};
  joined += "\n],\"displayTimeUnit\":\"ms\",\"otherData\":" + other.dump() + "}\n";
  write_file_atomically(out / "trace.json", joined);
  const nlohmann::json summary = {
      {"simulated", true},          {"command", captured.command},  {"how", how},
      {"nodes", so.nodes},          {"cores", so.cores},            {"latency_s", so.latency_s},
      {"steal", so.steal},          {"jobs", jobs.size()},          {"makespan_s", r.makespan},
      {"job_seconds", r.job_seconds}, {"speedup", r.makespan > 0 ? r.job_seconds / r.makespan : 0.0},
      {"efficiency", r.efficiency(so)}, {"node_busy_core_seconds", r.node_busy}, {"steal_requests", r.steal_requests},
      {"steals", r.steals},         {"lifeline_gifts", r.lifeline_gifts}, {"jobs_moved", r.jobs_moved},
      {"gpu_slots", so.gpu_slots},  {"gpu_jobs", r.gpu_jobs},       {"node_gpu_busy_slot_seconds", r.node_gpu_busy},
      {"attempts", attempts}};
  write_file_atomically(out / "simulation.json", summary.dump(1) + "\n");

  // report.html: the Gantt chart and the results table of the simulated
  // jobs (times from the moment it was simulated; node k is rank k). The
  // chart draws the first kDrawnNodes nodes' cores, node k's core c as core
  // k x cores + c; the table has every job.
  constexpr int kDrawnNodes = 4;
  const int drawn = std::min(so.nodes, kDrawnNodes);
  const double t0 = unix_now();
  dashboard::ReportInput input;
  input.title = out.filename().string() + " (simulated)";
  input.sweep.command = captured.command + " (simulated)";
  input.sweep.metric = "seconds";
  input.sweep.higher_is_better = false;
  for (const auto& a : r.attempts) {
    const auto& job = jobs[static_cast<std::size_t>(a.job)];
    if (a.lent) {
      if (a.node >= drawn) continue;
      input.attempts.push_back({.job_id = job.id, .name = job.name + " (lent)", .attempt = 1, .status = JobStatus::done,
                                .start = t0 + a.start, .end = t0 + a.end, .cores = {a.node * so.cores + a.cores[0]}});
      continue;
    }
    JobRecord record;
    record.id = job.id;
    record.name = job.name;
    record.spec = captured.jobs[static_cast<std::size_t>(a.job)].spec;
    record.status = JobStatus::done;
    record.attempts = 1;
    record.started_at = t0 + a.start;
    record.ended_at = t0 + a.end;
    record.cores = a.cores;
    record.rank = a.node;
    record.metrics = {{"simulated", true}};
    input.jobs.push_back(record);
    if (a.node >= drawn || a.gpu_slot >= 0) continue;  // the report's chart: CPU cores
    std::vector<int> cores;
    for (int c : a.cores) cores.push_back(a.node * so.cores + c);
    input.attempts.push_back({.job_id = job.id, .name = job.name, .attempt = 1, .status = JobStatus::done,
                              .start = t0 + a.start, .end = t0 + a.end, .cores = cores, .rank = 0});
  }
  input.utilization.begin = t0;
  input.utilization.end = t0 + r.makespan;
  input.summary = {{"command", captured.command + " (simulated)"}, {"done", jobs.size()},
                   {"makespan_s", r.makespan}, {"job_seconds", r.job_seconds}, {"cores", so.nodes * so.cores}};
  input.columns = {"job", "status", "seconds", "cores", "rank"};
  for (int c = 0; c < drawn * so.cores; ++c) input.cores.push_back(c);
  write_file_atomically(out / "report.html", dashboard::render_report_html(input));
}

}  // namespace

int simulate_command(int argc, char** argv) {
  // Its own options end at "--"; the command and its options follow.
  int dash = argc;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--") == 0) {
      dash = i;
      break;
    }
  SimulateOptions o;
  po::options_description desc(
      "packtrain simulate: predict a sweep's makespan on N nodes by running the real placement policy in virtual "
      "time\nusage: packtrain simulate [options] -- kfold|lth|hogwild|train|batch [its options]\n\noptions");
  desc.add_options()
    ("help,h", "print this help")
    ("nodes", po::value(&o.nodes)->default_value(o.nodes), "simulated nodes (MPI ranks)")
    ("cores", po::value(&o.cores), "cores a node (default: this machine's usable cores)")
    ("from", po::value(&o.from), "take each job's seconds from an earlier run's folder (its journal); "
     "default: from the jobs' FLOPs and a short step benchmark of each model here")
    ("latency-us", po::value(&o.latency_us)->default_value(o.latency_us, number_text(o.latency_us)),
     "one message between nodes, in microseconds")
    ("no-steal", po::bool_switch(&o.no_steal), "each node runs the jobs it was dealt, alone (as --shard splits them)")
    ("out", po::value(&o.out), "also write DIR/trace.json (a track per simulated core) and DIR/simulation.json")
    ("seed", po::value(&o.seed)->default_value(o.seed), "seed of the victims' draw")
    ("gpus", po::value(&o.gpus)->default_value(o.gpus), "GPUs a node (simulated; with --gpu-speedup)")
    ("gpu-slots", po::value(&o.gpu_slots)->default_value(o.gpu_slots), "jobs a GPU runs at once")
    ("gpu-speedup", po::value(&o.gpu_speedup),
     "X, or MODEL=X,...: a job in a GPU slot runs X times as fast as on one core (no GPU here to measure it); a "
     "model not named stays on the CPU. Each job then goes where it is expected to finish first")
    ("elastic-efficiency", po::value(&o.elastic_efficiency)->default_value(o.elastic_efficiency, number_text(o.elastic_efficiency)),
     "elastic jobs (Hogwild, growing replicas): a core lent to one adds this share of a core's speed (bench_hogwild "
     "and bench_dataparallel measure 0.56-0.8 on 2 cores)")
    ("quiet,q", po::bool_switch(&o.quiet), "print only the prediction's line");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(dash, argv).options(desc).run(), vm);  // skips argv[0], "simulate"
    po::notify(vm);
  } catch (const po::error& e) {
    throw Error(e.what());
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  if (dash >= argc - 1)
    throw Error("name the command to simulate after --, e.g. packtrain simulate --nodes 4 -- kfold --models mlp");
  const std::string command = argv[dash + 1];
  int (*run)(int, char**) = nullptr;
  if (command == "kfold") run = kfold_command;
  if (command == "lth") run = lth_command;
  if (command == "hogwild") run = hogwild_command;
  if (command == "train") run = train_command;
  if (command == "batch") run = batch_command;
  if (!run) throw Error("cannot simulate '" + command + "': kfold, lth, hogwild, train or batch");
  if (o.nodes < 1 || o.nodes > 100000) throw Error("--nodes must be in 1..100000, not " + std::to_string(o.nodes));
  if (vm.count("cores") && (o.cores < 1 || o.cores > 100000))
    throw Error("--cores must be in 1..100000, not " + std::to_string(o.cores));
  if (!(o.latency_us >= 0)) throw Error("--latency-us must not be negative");
  if (o.gpus < 0 || o.gpus > 64) throw Error("--gpus must be in 0..64, not " + std::to_string(o.gpus));
  if (o.gpu_slots < 1 || o.gpu_slots > 64) throw Error("--gpu-slots must be in 1..64, not " + std::to_string(o.gpu_slots));
  if (o.gpus > 0 && o.gpu_speedup.empty())
    throw Error("--gpus needs --gpu-speedup: how much faster a GPU slot trains the models (there is no GPU here to measure)");
  if (o.gpus == 0 && !o.gpu_speedup.empty()) throw Error("--gpu-speedup is for simulated --gpus");
  double every_speedup = 0;
  const auto speedups = parse_gpu_speedup(o.gpu_speedup, every_speedup);
  if (!(o.elastic_efficiency >= 0) || o.elastic_efficiency > 1)
    throw Error("--elastic-efficiency must be in 0..1, not " + number_text(o.elastic_efficiency));
  if (o.cores == 0) o.cores = static_cast<int>(affinity_cores().size());

  // The command builds its jobs; RunSetup hands them over instead of running them.
  CapturedJobs captured;
  captured.cores = o.cores;
  capture_jobs_for_simulation(&captured);
  struct Off {
    ~Off() { capture_jobs_for_simulation(nullptr); }
  } off;
  bool got = false;
  try {
    const int rc = run(argc - dash - 1, argv + dash + 1);
    if (rc != 0) return rc;  // its --help, or a refusal it printed itself
  } catch (const JobsCaptured&) {
    got = true;
  }
  if (!got) return 0;  // --help of the command
  if (captured.jobs.empty()) throw Error("the " + command + " command built no jobs to simulate");

  std::string how;
  const auto seconds = predict_seconds(captured, captured.data, o, how);
  std::map<std::string, int> index;
  for (std::size_t j = 0; j < captured.jobs.size(); ++j) index[captured.jobs[j].id()] = static_cast<int>(j);
  std::vector<SimJob> jobs;
  for (std::size_t j = 0; j < captured.jobs.size(); ++j) {
    const auto& job = captured.jobs[j];
    SimJob s{.id = job.id(), .name = job.name, .cost = job.cost, .seconds = seconds[j], .cores = job.cores,
             .memory_mb = job.memory_mb, .max_cores = job.max_cores, .elastic_efficiency = o.elastic_efficiency};
    if (o.gpus > 0) {
      const auto it = speedups.find(job.spec.value("model", std::string()));
      const double x = it != speedups.end() ? it->second : every_speedup;
      if (x > 0) s.gpu_seconds = seconds[j] * job.cores / x;  // its cores' time as one core's, x times faster
    }
    // Order only (a batch's entries after others) waits the same in virtual time: nothing fails there.
    for (const auto* deps : {&job.after, &job.follows})
      for (const auto& dep : *deps) {
        const auto it = index.find(dep);
        if (it == index.end()) throw Error(job.name + " waits for a job the command did not build");
        s.after.push_back(it->second);
      }
    jobs.push_back(std::move(s));
  }
  const SimOptions so{.nodes = o.nodes, .cores = o.cores, .gpu_slots = o.gpus * o.gpu_slots,
                      .latency_s = o.latency_us * 1e-6, .steal = !o.no_steal, .seed = o.seed};
  const auto started = Clock::now();
  const auto r = simulate(jobs, so);
  const double took = std::chrono::duration<double>(Clock::now() - started).count();

  if (!o.quiet) {
    std::printf("packtrain simulate: %zu job(s) of %s on %d node(s) x %d core(s), %s\n", jobs.size(), command.c_str(),
                o.nodes, o.cores, how.c_str());
  }
  const std::string gpus = so.gpu_slots > 0 ? " and " + std::to_string(o.nodes * so.gpu_slots) + " GPU slot(s)" : "";
  std::printf("predicted makespan %s, jobs' own time %s: %.2fx the speed of one job at a time on %d core(s)%s; "
              "efficiency %.3f (the cores' busy share)\n",
              duration_text(r.makespan).c_str(), duration_text(r.job_seconds).c_str(),
              r.makespan > 0 ? r.job_seconds / r.makespan : 0.0, o.nodes * o.cores, gpus.c_str(), r.efficiency(so));
  if (!o.quiet) {
    const int shown = std::min(o.nodes, 8);
    for (int k = 0; k < shown; ++k) {
      std::printf("  node %d: %.1f%% busy", k,
                  r.makespan > 0 ? 100.0 * r.node_busy[static_cast<std::size_t>(k)] / (r.makespan * o.cores) : 0.0);
      if (so.gpu_slots > 0)
        std::printf(", GPU slots %.1f%% busy", r.makespan > 0 ? 100.0 * r.node_gpu_busy[static_cast<std::size_t>(k)] /
                                                                     (r.makespan * so.gpu_slots)
                                                               : 0.0);
      std::printf("\n");
    }
    if (so.gpu_slots > 0)
      std::printf("  %d of %zu job(s) placed in a GPU slot (where each was expected to finish first)\n", r.gpu_jobs,
                  jobs.size());
    if (o.nodes > shown) std::printf("  ... %d more node(s)\n", o.nodes - shown);
    if (o.nodes > 1)
      std::printf("  work sharing: %d steal request(s), %d answered with jobs, %d lifeline gift(s), %d job(s) moved "
                  "(%s)\n",
                  r.steal_requests, r.steals, r.lifeline_gifts, r.jobs_moved, so.steal ? "stealing on" : "no stealing");
    std::printf("  simulated %lld events in %.2f s\n", static_cast<long long>(r.events), took);
  }
  if (!o.out.empty()) {
    write_outputs(o.out, captured, jobs, so, r, how);
    if (!o.quiet)
      std::printf("trace: %s  (also report.html, simulation.json)\n", (std::filesystem::path(o.out) / "trace.json").c_str());
  }
  return 0;
}

}  // namespace packtrain::cli
