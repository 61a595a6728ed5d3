// bench_step: the roofline of one training step. For each zoo model at
// each batch size, on one core with one intra-op thread: the step's time
// (zero_grad, forward, cross-entropy, backward, optimizer step: the
// trainer's own step without its loader), the FLOPs it does (3x the
// model's forward FLOPs per sample: forward, and backward's two products
// per layer), the GFLOP/s that makes against the core's peak (measured
// here by a loop of independent fused multiply-adds), where the time goes
// (phases, and the top-level operators by LibTorch's RecordFunction, the
// hook its profiler uses), and the same step in Debian's Python PyTorch
// (python3-torch, the same 1.13 build) when it is installed: a peer in
// the same run.
//
// The batch is random data of Fashion-MNIST's shape (1 x 28 x 28, 10
// classes): what a step costs does not depend on the pixels.
//
// Usage: bench_step [--models mlp,lenet5,...] [--batches 32,64,256]
//                   [--seconds S] [--optimizer adam|sgd] [--python PATH | --no-python]
//                   [--markdown] [--ops]
//   (defaults: every zoo model, batches 32, 64 and 256, 1.5 s a case,
//   Adam as in the seed study's sweep, /usr/bin/python3 when it has torch;
//   --ops adds the largest operators by name; --markdown a table for
//   docs/performance.md)
#include <packtrain/data/dataset.hpp>
#include <packtrain/models/models.hpp>
#include <packtrain/train/blas.hpp>
#include <packtrain/train/options.hpp>
#include <packtrain/train/trainer.hpp>

#include <common/args.hpp>
#include <common/process.hpp>
#include <common/stats.hpp>

#include <ATen/record_function.h>
#include <sched.h>
#include <torch/torch.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

using packtrain::bench::median;
using packtrain::bench::split_commas;

// --- the core's peak: fused multiply-adds with no dependency between them ---

#if defined(__x86_64__)
// 12 independent accumulators of 8 floats: enough to cover the FMA units'
// latency (4 cycles, 2 units) on the cores this runs on.
__attribute__((target("avx2,fma"))) double fma_loop(std::int64_t iterations) {
  constexpr int kAcc = 12;
  __m256 acc[kAcc];
  for (auto& a : acc) a = _mm256_set1_ps(0.0f);
  const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
  for (std::int64_t i = 0; i < iterations; ++i)
    for (int k = 0; k < kAcc; ++k) acc[k] = _mm256_fmadd_ps(acc[k], x, y);
  __m256 sum = acc[0];
  for (int k = 1; k < kAcc; ++k) sum = _mm256_add_ps(sum, acc[k]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  double total = 0;
  for (float f : lanes) total += f;
  return total;
}

// The same with AVX-512 registers (16 floats), where the CPU has them:
// OpenBLAS's SkylakeX kernels and oneDNN use them.
__attribute__((target("avx512f"))) double fma_loop_512(std::int64_t iterations) {
  constexpr int kAcc = 12;
  __m512 acc[kAcc];
  for (auto& a : acc) a = _mm512_set1_ps(0.0f);
  const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
  for (std::int64_t i = 0; i < iterations; ++i)
    for (int k = 0; k < kAcc; ++k) acc[k] = _mm512_fmadd_ps(acc[k], x, y);
  __m512 sum = acc[0];
  for (int k = 1; k < kAcc; ++k) sum = _mm512_add_ps(sum, acc[k]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  double total = 0;
  for (float f : lanes) total += f;
  return total;
}

// GFLOP/s of one core (a multiply-add counts 2), the best of a few tries
// at the widest vectors the CPU has.
double measure_peak_gflops() {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
  const bool wide = __builtin_cpu_supports("avx512f");
  const int lanes = wide ? 16 : 8;
  constexpr std::int64_t kIterations = 20'000'000;
  double best = 0, sink = 0;
  for (int t = 0; t < 5; ++t) {
    const auto start = Clock::now();
    sink += wide ? fma_loop_512(kIterations) : fma_loop(kIterations);
    const double s = seconds_since(start);
    best = std::max(best, 2.0 * lanes * 12 * static_cast<double>(kIterations) / s / 1e9);
  }
  if (sink == 12345.0) std::puts("");  // keeps the loop's result alive
  return best;
}
#else
double measure_peak_gflops() { return 0; }
#endif

// --- where the time goes: the outermost operators' times, by name ---

struct OpTimes {
  std::map<std::string, double> seconds;  // outermost RecordFunction scope's name -> time
  bool on = false;
};
OpTimes op_times;
thread_local int op_depth = 0;
thread_local Clock::time_point op_started;

std::unique_ptr<at::ObserverContext> op_enter(const at::RecordFunction&) {
  if (op_times.on && op_depth++ == 0) op_started = Clock::now();
  return nullptr;
}

void op_leave(const at::RecordFunction& fn, at::ObserverContext*) {
  if (!op_times.on || op_depth == 0) return;
  if (--op_depth == 0) op_times.seconds[fn.name()] += seconds_since(op_started);
}

// Operators and autograd nodes grouped into what a reader asks about.
// Backward work: autograd's nodes (…Backward0, and CppNode<…> for custom
// functions) and operators named for it.
std::string op_group(const std::string& name) {
  const auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  const std::string way = has("Backward") || has("backward") || has("CppNode") ? " bwd" : " fwd";
  if (has("onvolution") || has("conv")) return "conv" + way;
  if (has("Addmm") || has("Mm") || has("linear") || has("addmm") || has("matmul") || has("aten::mm") || has("Linear"))
    return "linear" + way;
  if (has("pool") || has("Pool")) return "pool" + way;
  if (has("batch_norm") || has("BatchNorm")) return "bn" + way;
  if (has("relu") || has("Relu") || has("hardtanh") || has("Hardtanh") || has("clamp") || has("threshold"))
    return "act" + way;
  if (has("AccumulateGrad")) return "grad accumulate";
  if (has("softmax") || has("Softmax") || has("nll") || has("Nll") || has("cross_entropy")) return "loss";
  if (has("contiguous") || has("copy") || has("Copy") || has("clone")) return "layout copies";
  return "other ops";
}

// --- one case ---

struct Phases {
  double zero = 0, forward = 0, backward = 0, step = 0;
};

struct Case {
  std::string model;
  std::int64_t batch = 0;
  double ms = 0;          // median step
  double gflop_step = 0;  // per step
  Phases phases;          // medians, ms
  double plain_ms = 0;    // the same step as before the speed work (Stepper)
  Phases plain_phases;
  std::map<std::string, double> groups;  // share of the profiled steps' time
  std::map<std::string, double> ops;     // the same by operator name
  double python_ms = 0;   // 0: not measured
  double eval_ms = 0;     // forward of 1000 images without gradients (0: random batches, not measured)
};

// A model and its optimizer, stepped on the batch it is given. `plain`:
// as the zoo and the trainer ran before their speed work (LibTorch's SGD
// and Adam; lenet5 as written by hand: ReLU then LibTorch's max pool,
// images in LibTorch's default layout), for a side-by-side ratio.
struct Stepper {
  std::shared_ptr<packtrain::models::Model> model;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::function<torch::Tensor(const torch::Tensor&)> forward;
  std::vector<double> total, zero, fwd, bwd, opt;

  Stepper(const std::string& name, packtrain::train::OptimizerKind kind, bool plain) {
    model = packtrain::models::make_model(name, {.channels = 1, .height = 28, .width = 28, .classes = 10, .seed = 7});
    model->train();
    const bool adam = kind == packtrain::train::OptimizerKind::adam;
    const auto options = packtrain::train::TrainOptions().optimizer(kind).lr(adam ? 1e-3 : 0.05);
    if (!plain)
      optimizer = packtrain::train::make_optimizer(options, model->parameters());
    else if (adam)
      optimizer = std::make_unique<torch::optim::Adam>(model->parameters(), torch::optim::AdamOptions(1e-3));
    else
      optimizer = std::make_unique<torch::optim::SGD>(
          model->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(5e-4));
    forward = [m = model.get()](const torch::Tensor& x) { return m->forward(x); };
    if (plain && name == "lenet5") {
      const auto c = model->named_children();
      forward = [conv1 = c["conv1"]->as<torch::nn::Conv2d>(), conv2 = c["conv2"]->as<torch::nn::Conv2d>(),
                 fc1 = c["fc1"]->as<torch::nn::Linear>(), fc2 = c["fc2"]->as<torch::nn::Linear>(),
                 fc3 = c["fc3"]->as<torch::nn::Linear>()](const torch::Tensor& images) {
        auto x = torch::max_pool2d(torch::relu(conv1->forward(images)), 2);
        x = torch::max_pool2d(torch::relu(conv2->forward(x)), 2).flatten(1);
        return fc3->forward(torch::relu(fc2->forward(torch::relu(fc1->forward(x)))));
      };
    }
  }

  void step(const torch::Tensor& images, const torch::Tensor& labels, bool record) {
    const auto t0 = Clock::now();
    optimizer->zero_grad();
    const auto t1 = Clock::now();
    const auto loss = torch::nn::functional::cross_entropy(forward(images), labels);
    const auto t2 = Clock::now();
    loss.backward();
    const auto t3 = Clock::now();
    optimizer->step();
    (void)loss.item<double>();
    const auto t4 = Clock::now();
    if (!record) return;
    const auto ms = [](Clock::time_point a, Clock::time_point b) {
      return 1e3 * std::chrono::duration<double>(b - a).count();
    };
    zero.push_back(ms(t0, t1));
    fwd.push_back(ms(t1, t2));
    bwd.push_back(ms(t2, t3));
    opt.push_back(ms(t3, t4));
    total.push_back(ms(t0, t4));
  }
};

Case run_case(const std::string& name, std::int64_t batch, double seconds, packtrain::train::OptimizerKind kind,
              const packtrain::data::Dataset* data) {
  Stepper mine(name, kind, false), plain(name, kind, true);
  torch::manual_seed(3);
  auto images = torch::rand({batch, 1, 28, 28});
  auto labels = torch::randint(0, 10, {batch}, torch::kLong);
  std::int64_t next = 0;
  // Real batches: the next `batch` images of a shuffled training set,
  // gathered before the step's clock starts.
  const auto order = data ? torch::randperm(data->size(), torch::kLong) : torch::Tensor();
  const auto draw = [&] {
    if (!data) return;
    if (next + batch > data->size()) next = 0;
    const auto idx = order.slice(0, next, next + batch);
    next += batch;
    images = data->images.index_select(0, idx);
    labels = data->labels.index_select(0, idx);
  };

  for (int w = 0; w < 3; ++w) {
    draw();
    mine.step(images, labels, false);
    plain.step(images, labels, false);
  }
  // Alternating rounds of a tenth of the time each, so that drift on a
  // shared machine hits both alike; the same batches for both.
  const auto start = Clock::now();
  while (mine.total.size() < 3 || seconds_since(start) < 2 * seconds) {
    const auto round = Clock::now();
    std::vector<std::pair<torch::Tensor, torch::Tensor>> batches;
    do {
      draw();
      batches.emplace_back(images, labels);
      mine.step(images, labels, true);
    } while (seconds_since(round) < seconds / 10);
    for (const auto& [x, y] : batches) plain.step(x, y, true);
  }

  // A few more steps with the operator hook on (it costs a little per
  // operator, so the timed steps above run without it).
  op_times.seconds.clear();
  const auto handle = at::addGlobalCallback(
      at::RecordFunctionCallback(op_enter, op_leave).scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION}));
  op_times.on = true;
  const auto profiled_start = Clock::now();
  int profiled = 0;
  while (profiled < 3 || seconds_since(profiled_start) < seconds / 3) {
    draw();
    mine.step(images, labels, false);
    ++profiled;
  }
  const double profiled_s = seconds_since(profiled_start);
  op_times.on = false;
  at::removeCallback(handle);

  // Evaluation as the trainer runs it: no gradients, batches of 1000.
  double eval_ms = 0;
  if (data) {
    torch::NoGradGuard no_grad;
    mine.model->eval();
    const auto x = data->images.slice(0, 0, 1000), y = data->labels.slice(0, 0, 1000);
    std::vector<double> times;
    const auto eval_start = Clock::now();
    while (times.size() < 3 || seconds_since(eval_start) < seconds / 3) {
      const auto t = Clock::now();
      const auto logits = mine.model->forward(x);
      (void)torch::nn::functional::cross_entropy(logits, y).item<double>();
      (void)logits.argmax(1).eq(y).sum().item<std::int64_t>();
      times.push_back(1e3 * seconds_since(t));
    }
    eval_ms = median(times);
    mine.model->train();
  }

  Case c;
  c.model = name;
  c.eval_ms = eval_ms;
  c.batch = batch;
  c.ms = median(mine.total);
  c.plain_ms = median(plain.total);
  c.gflop_step = 3.0 * mine.model->flops() * static_cast<double>(batch) / 1e9;
  c.phases = {median(mine.zero), median(mine.fwd), median(mine.bwd), median(mine.opt)};
  c.plain_phases = {median(plain.zero), median(plain.fwd), median(plain.bwd), median(plain.opt)};
  double in_ops = 0;
  for (const auto& [op, s] : op_times.seconds) {
    c.groups[op_group(op)] += s / profiled_s;
    c.ops[op] += s / profiled_s;
    in_ops += s;
  }
  c.groups["outside operators"] = std::max(0.0, 1.0 - in_ops / profiled_s);
  return c;
}

// --- the Python peer ---

bool python_has_torch(const std::string& python) {
  const std::string command = python + " -c 'import torch' >/dev/null 2>&1";
  return std::system(command.c_str()) == 0;
}

// Median ms per step of the same model, batch and optimizer in Python
// PyTorch on one thread; 0 when it has no twin of the model or fails.
double python_step_ms(const std::string& python, const std::string& model, std::int64_t batch, double seconds,
                      const std::string& optimizer) {
  if (model != "mlp" && model != "lenet5") return 0;
  // The same BLAS kernels as this process runs (packtrain/train/blas.hpp).
  const auto core = packtrain::train::blas_core();
  const std::string blas = core.empty() ? "" : "OPENBLAS_CORETYPE=" + core + " ";
  const std::string command = blas + "taskset -c " + std::to_string(sched_getcpu()) + " " + python + " " + PACKTRAIN_STEP_PEER +
                              " --model " + model + " --batch " + std::to_string(batch) + " --seconds " +
                              std::to_string(seconds) + " --optimizer " + optimizer;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return 0;
  char line[256] = {0};
  double ms = 0;
  if (std::fgets(line, sizeof line, pipe)) ms = std::atof(line);
  if (pclose(pipe) != 0) return 0;
  return ms;
}

int usage(const char* problem) {
  std::fprintf(stderr,
               "bench_step: %s\nusage: bench_step [--models LIST] [--batches LIST] [--seconds S] [--optimizer adam|sgd] "
               "[--python PATH | --no-python] [--markdown] [--ops]\n",
               problem);
  return 2;
}

std::string percent(double share) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.0f%%", 100 * share);
  return buf;
}

// The largest groups, largest first, as "conv bwd 41%, conv fwd 22%, ...".
std::string top_groups(const std::map<std::string, double>& groups, std::size_t n) {
  std::vector<std::pair<std::string, double>> sorted(groups.begin(), groups.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string out;
  for (std::size_t i = 0; i < std::min(n, sorted.size()); ++i) {
    if (sorted[i].second < 0.02) break;
    out += (out.empty() ? "" : ", ") + sorted[i].first + " " + percent(sorted[i].second);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> models = {"mlp", "lenet5", "resnet18", "vgg11", "mobilenetv2"};
  std::vector<std::int64_t> batches = {32, 64, 256};
  double seconds = 1.5;
  std::string optimizer = "adam", python = "/usr/bin/python3";
  bool markdown = false, ops = false, random = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--help" || a == "-h") {
      std::printf("bench_step: the roofline of one training step per zoo model and batch size on one pinned core "
                  "(docs/performance.md)\n"
                  "usage: bench_step [--models LIST] [--batches LIST] [--seconds S] [--optimizer adam|sgd] "
                  "[--python PATH | --no-python] [--markdown] [--ops]\n");
      return 0;
    }
    if (a == "--models" && has_value) {
      models = split_commas(argv[++i]);
    } else if (a == "--batches" && has_value) {
      batches.clear();
      for (const auto& b : split_commas(argv[++i])) batches.push_back(std::atoll(b.c_str()));
    } else if (a == "--seconds" && has_value) {
      seconds = std::atof(argv[++i]);
    } else if (a == "--optimizer" && has_value) {
      optimizer = argv[++i];
    } else if (a == "--python" && has_value) {
      python = argv[++i];
    } else if (a == "--no-python") {
      python.clear();
    } else if (a == "--markdown") {
      markdown = true;
    } else if (a == "--ops") {
      ops = true;
    } else if (a == "--random") {
      random = true;
    } else {
      return usage(("unknown or incomplete option " + a).c_str());
    }
  }
  if (models.empty() || batches.empty()) return usage("--models and --batches need at least one entry");
  for (auto b : batches)
    if (b < 1) return usage("a batch size must be at least 1");
  if (!(seconds > 0)) return usage("--seconds must be above 0");
  if (optimizer != "adam" && optimizer != "sgd") return usage("--optimizer must be adam or sgd");
  const auto& zoo = packtrain::models::model_names();
  for (const auto& m : models)
    if (std::find(zoo.begin(), zoo.end(), m) == zoo.end()) return usage(("unknown model " + m + " (the zoo's only)").c_str());
  const auto kind = packtrain::train::optimizer_from_string(optimizer);
  if (!python.empty() && !python_has_torch(python)) {
    std::printf("(no Python peer: %s cannot import torch; install python3-torch)\n", python.c_str());
    python.clear();
  }

  packtrain::data::DatasetSplit split;
  if (!random) split = packtrain::data::load_dataset("fashion-mnist");

  // One core, one thread: what a packed job gets.
  const int core = packtrain::bench::pin_to_this_cpu();
  at::set_num_threads(1);
  const double peak = measure_peak_gflops();
  const auto blas = packtrain::train::blas_core();
  std::printf("bench_step: 1 thread pinned to core %d, %s, %.1f s a case, %s batches; core peak %.1f GFLOP/s (FMA loop, %s); "
              "BLAS: %s\n\n",
              core, optimizer.c_str(), seconds, random ? "random" : "Fashion-MNIST", peak,
              __builtin_cpu_supports("avx512f") ? "AVX-512" : "AVX2",
              blas.empty() ? "not OpenBLAS" : ("OpenBLAS " + blas + " kernels").c_str());

  std::vector<Case> cases;
  for (const auto& m : models)
    for (auto b : batches) {
      auto c = run_case(m, b, seconds, kind, random ? nullptr : &split.train);
      if (!python.empty()) c.python_ms = python_step_ms(python, m, b, seconds, optimizer);
      cases.push_back(c);
      const double gflops = c.gflop_step / (c.ms / 1e3);
      std::printf("%-12s batch %4lld  %8.2f ms/step  %8.0f samples/s  %6.1f GFLOP/s  %4s of peak", m.c_str(),
                  static_cast<long long>(b), c.ms, static_cast<double>(b) / (c.ms / 1e3), gflops,
                  peak > 0 ? percent(gflops / peak).c_str() : "?");
      if (c.python_ms > 0) std::printf("  python %7.2f ms (%.2fx)", c.python_ms, c.python_ms / c.ms);
      std::printf("\n    plain LibTorch step %.2f ms: %.2fx faster now", c.plain_ms, c.plain_ms / c.ms);
      if (c.eval_ms > 0) std::printf("; evaluation %.1f ms per 1000 images", c.eval_ms);
      std::printf("\n");
      std::printf("    phases: zero_grad %.2f, forward+loss %.2f, backward %.2f, optimizer %.2f ms (plain: %.2f, %.2f, %.2f, %.2f)\n",
                  c.phases.zero, c.phases.forward, c.phases.backward, c.phases.step, c.plain_phases.zero,
                  c.plain_phases.forward, c.plain_phases.backward, c.plain_phases.step);
      std::printf("    time by operator: %s\n", top_groups(c.groups, 8).c_str());
      if (ops) std::printf("    operators: %s\n", top_groups(c.ops, 12).c_str());
      std::fflush(stdout);
    }

  if (markdown) {
    std::printf("\n| model | batch | ms/step | plain LibTorch ms/step | GFLOP/s | of peak | Python ms/step | forward / backward / optimizer ms | where the time goes |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|---|---|\n");
    for (const auto& c : cases) {
      const double gflops = c.gflop_step / (c.ms / 1e3);
      char py[32] = "-";
      if (c.python_ms > 0) std::snprintf(py, sizeof py, "%.2f", c.python_ms);
      std::printf("| %s | %lld | %.2f | %.2f | %.1f | %s | %s | %.2f / %.2f / %.2f | %s |\n", c.model.c_str(),
                  static_cast<long long>(c.batch), c.ms, c.plain_ms, gflops, peak > 0 ? percent(gflops / peak).c_str() : "?", py,
                  c.phases.forward, c.phases.backward, c.phases.step, top_groups(c.groups, 5).c_str());
    }
  }
  return 0;
}
