// bench_hogwild, in two parts, each measured side by side in one run.
//
// 1. Scaling: samples per second of Hogwild training with 1, 2, ..., N
//    workers (an N-core job through the real runner: pinned threads, one
//    intra-op thread each) against a hand-written single-thread SGD loop
//    doing the same per-step work (gather, forward, cross-entropy,
//    backward, w -= lr g), and against N independent loops (nothing
//    shared: the ceiling of this machine). Rounds alternate the variants so drift on a
//    shared machine hits them alike; figures are medians over rounds.
//    Target: N workers >= 1.7x the single-thread loop on 2 cores.
// 2. Elastic: a kfold sweep and a Hogwild job (min 1 core, max N) on one
//    runner. While the sweep's jobs wait, Hogwild keeps its one core; at
//    the sweep's tail the idle cores are lent to it. Prints the timeline of
//    the Hogwild job's cores and writes the run's trace.json (open it in
//    ui.perfetto.dev: lent cores are slices named "... (lent)").
//
// Usage: bench_hogwild [--rounds R] [--limit N] [--model NAME] [--trace DIR] [--skip-elastic]
//        (defaults: 5 rounds of one epoch of 60000 samples, mlp, trace in /tmp/bench_hogwild)
#include <packtrain/data/dataset.hpp>
#include <packtrain/data/seed.hpp>
#include <packtrain/dashboard/run_dashboard.hpp>
#include <packtrain/hogwild/hogwild.hpp>
#include <packtrain/kfold/kfold.hpp>
#include <packtrain/models/models.hpp>
#include <packtrain/scheduler/executor.hpp>
#include <packtrain/scheduler/job_runner.hpp>
#include <packtrain/scheduler/resources.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace packtrain;
using Clock = std::chrono::steady_clock;

constexpr std::int64_t kBatch = 64;
constexpr double kLr = 0.05;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// The single-thread loop: what one writes by hand for plain SGD.
double single_thread_samples_per_s(const data::DatasetSplit& d, const std::string& model_name, std::int64_t limit,
                                   int core) {
  pin_current_thread({core});
  at::set_num_threads(1);
  auto model = models::make_model(model_name, {.channels = d.channels, .height = d.height, .width = d.width,
                                               .classes = d.classes, .seed = 3});
  auto params = model->parameters();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(data::mix_seed(3, 1));
  const auto order = torch::randperm(limit, gen, torch::kInt64);
  const auto start = Clock::now();
  for (std::int64_t b = 0; b < limit; b += kBatch) {
    const auto idx = order.slice(0, b, std::min(limit, b + kBatch));
    for (auto& p : params) p.mutable_grad().reset();
    const auto loss = torch::nn::functional::cross_entropy(model->forward(d.train.images.index_select(0, idx)),
                                                           d.train.labels.index_select(0, idx));
    loss.backward();
    torch::NoGradGuard no_grad;
    for (auto& p : params) p.add_(p.grad(), -kLr);
    (void)loss.item<double>();
  }
  return static_cast<double>(limit) / std::chrono::duration<double>(Clock::now() - start).count();
}

// `n` independent single-thread loops at once, one per core, each with its
// own model and a 1/n share of the samples: the ceiling for n workers on
// this machine when nothing is shared.
double independent_samples_per_s(const data::DatasetSplit& d, const std::string& model_name, std::int64_t limit,
                                 const std::vector<int>& cores) {
  const auto n = static_cast<std::int64_t>(cores.size());
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (const int core : cores)
    threads.emplace_back([&, core] { single_thread_samples_per_s(d, model_name, limit / n, core); });
  for (auto& t : threads) t.join();
  return static_cast<double>(limit / n * n) / std::chrono::duration<double>(Clock::now() - start).count();
}

// Hogwild with exactly `workers` cores, through the runner.
double hogwild_samples_per_s(Executor& executor, const NodeResources& node,
                             const std::shared_ptr<const data::DatasetSplit>& d, const std::string& model_name,
                             std::int64_t limit, int workers) {
  JobRunner runner(executor, node);
  runner.add(hogwild::make_hogwild_job(
      d, hogwild::HogwildOptions().model(model_name).epochs(1).batch_size(kBatch).lr(kLr).limit(limit), workers,
      workers));
  RunOptions options;
  options.thread_budget = [](int threads) { at::set_num_threads(threads); };
  const auto summary = runner.run(options);
  if (summary.done != 1) {
    std::fprintf(stderr, "bench_hogwild: the Hogwild job failed: %s\n", summary.jobs[0].message.c_str());
    std::exit(1);
  }
  const auto& m = summary.jobs[0].metrics;
  if (m.at("peak_workers").get<int>() != workers || m.at("minibatches_not_once").get<int>() != 0) {
    std::fprintf(stderr, "bench_hogwild: expected %d workers and every minibatch once, got %s\n", workers,
                 m.dump().c_str());
    std::exit(1);
  }
  return m.at("samples_per_s").get<double>();
}

// Records the Hogwild job's cores and the sweep's running jobs over time.
struct Timeline : EventSink {
  std::string hogwild_id;
  struct Point {
    double time;
    int hogwild_cores;
    int sweep_running;
  };
  std::vector<Point> points;
  int hogwild_cores = 0, sweep_running = 0;
  void on_event(const JobEvent& e) override {
    const bool hog = e.job_id == hogwild_id;
    switch (e.kind) {
      case EventKind::started: hog ? hogwild_cores = static_cast<int>(e.cores.size()) : ++sweep_running; break;
      case EventKind::resized: hogwild_cores = static_cast<int>(e.cores.size()); break;
      case EventKind::finished:
      case EventKind::failed:
      case EventKind::cancelled: hog ? hogwild_cores = 0 : --sweep_running; break;
      default: return;
    }
    points.push_back({e.time, hogwild_cores, sweep_running});
  }
};

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5;
  std::int64_t limit = 60000;
  std::string model = "mlp";
  std::string trace_dir = "/tmp/bench_hogwild";
  bool elastic = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--rounds" && has_value) rounds = std::atoi(argv[++i]);
    else if (a == "--limit" && has_value) limit = std::atoll(argv[++i]);
    else if (a == "--model" && has_value) model = argv[++i];
    else if (a == "--trace" && has_value) trace_dir = argv[++i];
    else if (a == "--skip-elastic") elastic = false;
    else {
      std::fprintf(stderr, "usage: bench_hogwild [--rounds R] [--limit N] [--model NAME] [--trace DIR] [--skip-elastic]\n");
      return 2;
    }
  }
  const auto node = detect_node_resources();
  const int n = node.core_count();
  const auto d = data::shared_dataset("fashion-mnist");
  limit = std::min(limit, d->train.size());
  Executor executor(node.cores);

  std::printf("bench_hogwild: %s, %lld samples per measurement, %d round(s), %d core(s)\n", model.c_str(),
              static_cast<long long>(limit), rounds, n);
  std::vector<double> single, independent;
  std::map<int, std::vector<double>> hog;
  for (int r = 0; r < rounds; ++r) {
    // Alternate the order: odd rounds run the variants backwards.
    std::vector<int> order = {0};
    for (int w = 1; w <= n; ++w) order.push_back(w);
    order.push_back(-1);
    if (r % 2 == 1) std::reverse(order.begin(), order.end());
    for (int w : order) {
      if (w == 0) single.push_back(single_thread_samples_per_s(*d, model, limit, node.cores[0]));
      else if (w < 0) independent.push_back(independent_samples_per_s(*d, model, limit, node.cores));
      else hog[w].push_back(hogwild_samples_per_s(executor, node, d, model, limit, w));
    }
  }
  const double base = median(single);
  std::printf("\n%-26s %12s %10s\n", "", "samples/s", "vs loop");
  std::printf("%-26s %12.0f %9.2fx\n", "single-thread SGD loop", base, 1.0);
  for (int w = 1; w <= n; ++w) {
    const double v = median(hog[w]);
    std::printf("Hogwild, %2d worker(s)      %12.0f %9.2fx\n", w, v, v / base);
  }
  const double ceiling = median(independent);
  std::printf("%-26s %12.0f %9.2fx   (nothing shared: the machine's ceiling)\n",
              (std::to_string(n) + " independent loops").c_str(), ceiling, ceiling / base);
  std::printf("target: %d workers >= 1.7x on 2 cores; Hogwild x%d reaches %.0f%% of the ceiling\n", n, n,
              100 * median(hog[n]) / ceiling);
  if (!elastic || n < 2) return 0;

  // Part 2: a kfold sweep beside an elastic Hogwild job.
  std::printf("\nelastic: a kfold sweep (mlp, 4 folds, 2 epochs on 20000 samples) beside Hogwild (%s, 6 epochs, "
              "1..%d cores)\n",
              model.c_str(), n);
  JobRunner runner(executor, node);
  auto hog_job = hogwild::make_hogwild_job(
      d, hogwild::HogwildOptions().model(model).epochs(6).batch_size(kBatch).lr(kLr), 1, n);
  Timeline timeline;
  timeline.hogwild_id = hog_job.id();
  runner.add(hog_job);
  kfold::KFold sweep(d, kfold::KFoldOptions().folds(4).limit(20000).trainer(train::TrainOptions().epochs(2)));
  sweep.add_model("mlp");
  sweep.add_schedule(train::Schedule::cosine);
  for (auto& job : sweep.jobs()) runner.add(std::move(job));
  std::filesystem::create_directories(trace_dir);
  dashboard::RunDashboard dash(dashboard::DashboardOptions()
                                   .out_dir(trace_dir)
                                   .cores(node.cores)
                                   .meta({{"command", "bench_hogwild"}, {"metric", "val_top1"}}));
  RunOptions options;
  options.thread_budget = [](int threads) { at::set_num_threads(threads); };
  options.sinks = {&timeline, &dash};
  const auto summary = runner.run(options);
  dash.finish(summary);
  if (summary.done != static_cast<int>(summary.jobs.size())) {
    std::fprintf(stderr, "bench_hogwild: %d of %zu jobs done\n", summary.done, summary.jobs.size());
    return 1;
  }
  // The Hogwild job's share of the cores, in time slices of the run.
  const double end = summary.makespan_s;
  constexpr int kSlices = 10;
  std::printf("\n%-16s %14s %14s\n", "time (s)", "Hogwild cores", "sweep jobs");
  double sweep_end = 0;  // when the last sweep job ended
  for (std::size_t i = 1; i < timeline.points.size(); ++i)
    if (timeline.points[i].sweep_running == 0 && timeline.points[i - 1].sweep_running > 0)
      sweep_end = timeline.points[i].time;
  for (int s = 0; s < kSlices; ++s) {
    const double from = end * s / kSlices, to = end * (s + 1) / kSlices;
    // Time-weighted mean over the slice.
    double hog_area = 0, sweep_area = 0, t = from;
    Timeline::Point state{0, 0, 0};
    for (const auto& p : timeline.points) {
      if (p.time <= from) {
        state = p;
        continue;
      }
      if (p.time >= to) break;
      hog_area += state.hogwild_cores * (p.time - t);
      sweep_area += state.sweep_running * (p.time - t);
      t = p.time;
      state = p;
    }
    hog_area += state.hogwild_cores * (to - t);
    sweep_area += state.sweep_running * (to - t);
    std::printf("%6.1f - %6.1f  %14.2f %14.2f\n", from, to, hog_area / (to - from), sweep_area / (to - from));
  }
  const auto& hm = summary.jobs[0].metrics;
  std::printf("sweep's last job ended at %.1f s of %.1f s; Hogwild peak workers %d, test top-1 %.2f%%\n", sweep_end,
              end, hm.at("peak_workers").get<int>(), 100 * hm.at("test_top1").get<double>());
  std::printf("trace: %s/trace.json\n", trace_dir.c_str());
  return 0;
}
