// dashboard_driver: a short run on this machine's real cores with the whole
// dashboard attached, for the browser tests and the report screenshot.
// Its jobs burn CPU for a while and report synthetic metrics (this is a
// test program: no training happens).
//
//   dashboard_driver --out DIR [--jobs N] [--job-ms MS] [--sweep kfold|lth]
//                    [--fail] [--sample-ms MS] [--serve [--token T]]
//
// With --serve it prints "port P" and "cores K" on stdout before the run,
// "finished" after it, and keeps serving until its stdin closes (or reads
// "stop"). Exit status: the run's (0 all done, 1 some failed).
#include <packtrain/dashboard/run_dashboard.hpp>
#include <packtrain/dashboard/run_files.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/executor.hpp>
#include <packtrain/scheduler/job_runner.hpp>
#include <packtrain/scheduler/journal.hpp>
#include <packtrain/scheduler/resources.hpp>
#include <packtrain/scheduler/results.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

namespace {

struct Options {
  std::string out;
  int jobs = 12;
  int job_ms = 1500;
  std::string sweep = "kfold";
  bool fail = false;
  int sample_ms = 100;
  bool serve = false;
  std::string token;  // required of the live view's requests
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw packtrain::Error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--out") o.out = value();
    else if (a == "--jobs") o.jobs = std::stoi(value());
    else if (a == "--job-ms") o.job_ms = std::stoi(value());
    else if (a == "--sweep") o.sweep = value();
    else if (a == "--sample-ms") o.sample_ms = std::stoi(value());
    else if (a == "--fail") o.fail = true;
    else if (a == "--serve") o.serve = true;
    else if (a == "--token") o.token = value();
    else throw packtrain::Error("unknown option " + a);
  }
  if (o.out.empty()) throw packtrain::Error("--out is required");
  if (o.sweep != "kfold" && o.sweep != "lth") throw packtrain::Error("--sweep is kfold or lth");
  return o;
}

// Keeps the calling thread's core busy for `ms`, reporting progress the way
// a training loop would (epochs and samples per second).
void burn(packtrain::JobContext& ctx, int ms) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto end = start + std::chrono::milliseconds(ms);
  auto next_report = start + std::chrono::milliseconds(250);
  volatile double sink = 0;
  long iterations = 0;
  int epoch = 0;
  while (Clock::now() < end && !ctx.stop_requested()) {
    for (int i = 0; i < 20000; ++i) sink = sink + std::sqrt(static_cast<double>(i));
    ++iterations;
    if (Clock::now() >= next_report) {
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      ctx.report({{"epoch", ++epoch}, {"samples_per_s", 64.0 * static_cast<double>(iterations) / seconds}});
      next_report += std::chrono::milliseconds(250);
    }
  }
}

// A deterministic, plausible accuracy for a job: per model and schedule,
// plus a little per fold.
double fake_top1(const std::string& key, int fold) {
  const auto h = packtrain::stable_hash(key);
  return 0.84 + static_cast<double>(h % 60) / 1000.0 + 0.004 * std::sin(fold * 1.7 + static_cast<double>(h % 7));
}

std::vector<packtrain::Job> kfold_jobs(const Options& o) {
  const char* models[] = {"mlp", "lenet5"};
  const char* schedules[] = {"cosine", "warm"};
  std::vector<packtrain::Job> jobs;
  const int folds = std::max(1, o.jobs / 4);
  for (int i = 0; i < o.jobs; ++i) {
    const std::string model = models[i / (2 * folds) % 2], schedule = schedules[i / folds % 2];
    const int fold = i % folds;
    packtrain::Job job;
    job.name = model + "/" + schedule + "/fold" + std::to_string(fold);
    job.spec = {{"model", model}, {"schedule", schedule}, {"fold", fold}, {"epochs", 2}, {"seq", i}};
    // lenet5 takes longer, as it would: uneven jobs show the packing.
    const int ms = static_cast<int>(o.job_ms * (model == "lenet5" ? 1.4 : 0.7) * (1.0 + 0.15 * fold));
    job.cost = ms;
    const bool flaky = o.fail && i == 1;
    job.retries = flaky ? 1 : 0;
    const double top1 = fake_top1(model + schedule, fold);
    job.run = [ms, flaky, top1](packtrain::JobContext& ctx) {
      burn(ctx, flaky && ctx.attempt() == 1 ? ms / 3 : ms);
      if (flaky && ctx.attempt() == 1) throw std::runtime_error("simulated out-of-memory on attempt 1");
      return packtrain::JobOutcome{.metrics = {{"val_top1", top1}, {"val_top5", 0.99}, {"val_loss", 1.2 - top1}}};
    };
    jobs.push_back(std::move(job));
  }
  return jobs;
}

std::vector<packtrain::Job> lth_jobs(const Options& o) {
  std::vector<packtrain::Job> jobs;
  const double sparsities[] = {0.5, 0.8, 0.9, 0.95};
  for (int i = 0; i < o.jobs; ++i) {
    const double sparsity = sparsities[i % 4];
    const int reset = (i / 4) % 3;
    packtrain::Job job;
    job.name = "mlp/s" + packtrain::dashboard::short_number(sparsity, 2) + "/r" + std::to_string(reset) + "/" +
               std::to_string(i / 12);
    job.spec = {{"model", "mlp"}, {"sparsity", sparsity}, {"reset_epoch", reset}, {"seq", i}};
    const int ms = static_cast<int>(o.job_ms * (1.0 - 0.4 * sparsity));
    job.cost = ms;
    const double top1 = 0.885 - 0.25 * std::pow(sparsity, 6) + 0.004 * reset + 0.002 * (i / 12);
    job.run = [ms, top1](packtrain::JobContext& ctx) {
      burn(ctx, ms);
      return packtrain::JobOutcome{.metrics = {{"val_top1", top1}}};
    };
    jobs.push_back(std::move(job));
  }
  return jobs;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    const auto node = packtrain::detect_node_resources();
    packtrain::create_output_dir(o.out);
    auto journal = packtrain::Journal::open(std::filesystem::path(o.out) / "journal.sqlite");
    journal->set_meta("command", o.sweep);
    journal->set_meta("metric", "val_top1");
    if (o.sweep == "kfold") {
      journal->set_meta("group_by", R"(["model","schedule"])");
    } else {
      journal->set_meta("group_by", R"(["reset_epoch","sparsity"])");
      journal->set_meta("plot_x", "sparsity");
      journal->set_meta("plot_series", "reset_epoch");
      journal->set_meta("plot_reference", "0.889");
    }
    packtrain::Executor executor(node.cores);
    packtrain::JobRunner runner(executor, node);
    for (auto& job : o.sweep == "kfold" ? kfold_jobs(o) : lth_jobs(o)) runner.add(std::move(job));

    auto options = packtrain::dashboard::DashboardOptions()
                       .out_dir(o.out)
                       .cores(node.cores)
                       .rank(0)
                       .sample_ms(o.sample_ms)
                       .journal(journal.get());
    if (o.serve) options.serve_port(0).token(o.token);
    packtrain::dashboard::RunDashboard dash(options);
    if (o.serve) {
      std::printf("port %d\ncores %d\n", dash.port(), node.core_count());
      std::fflush(stdout);
    }
    packtrain::RunOptions run_options;
    run_options.journal = journal.get();
    run_options.sinks.push_back(&dash);
    const auto summary = runner.run(run_options);
    dash.finish(summary);
    journal->set_meta("summary", nlohmann::json({{"command", o.sweep}, {"done", summary.done}, {"failed", summary.failed},
                                                 {"makespan_s", summary.makespan_s}, {"job_seconds", summary.job_seconds},
                                                 {"cores", node.core_count()}})
                                     .dump());
    packtrain::write_results_csv(std::filesystem::path(o.out) / "results.csv", summary.jobs,
                                 {"job", "status", "model", "schedule", "fold", "val_top1", "seconds", "cores", "rank"});
    std::printf("finished\n");
    std::fflush(stdout);
    if (o.serve) {
      // Serve the finished run until told to stop: a blocking read, no polling.
      std::string line;
      while (std::getline(std::cin, line) && line != "stop") {
      }
    }
    return summary.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dashboard_driver: %s\n", e.what());
    return 2;
  }
}
