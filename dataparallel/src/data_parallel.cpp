#include <packtrain/dataparallel/data_parallel.hpp>

#include <packtrain/data/loader.hpp>
#include <packtrain/models/scripted.hpp>
#include <packtrain/scheduler/at_scope_end.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/train/checkpoint.hpp>
#include <packtrain/train/evaluate.hpp>

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

namespace packtrain::dataparallel {
namespace {

using Clock = std::chrono::steady_clock;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::int64_t ns_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t).count();
}
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
double seconds(std::int64_t ns) { return static_cast<double>(ns) * 1e-9; }
double unix_seconds_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}


// One intra-op thread on the calling thread. LibTorch initializes a thread's
// count lazily from a process-wide value: trigger that first, then set ours.
void one_intra_op_thread() {
  (void)at::get_num_threads();
  at::set_num_threads(1);
}

// Dropout draws from LibTorch's global generator, whichever thread runs it:
// its masks would depend on the replica, not on (seed, step, micro-batch).
bool draws_from_global_generator(torch::nn::Module& model) {
  if (const auto* scripted = dynamic_cast<const models::ScriptedModel*>(&model)) return scripted->draws_random();
  for (const auto& m : model.modules()) {
    if (m->as<torch::nn::DropoutImpl>() || m->as<torch::nn::Dropout2dImpl>() || m->as<torch::nn::Dropout3dImpl>() ||
        m->as<torch::nn::AlphaDropoutImpl>() || m->as<torch::nn::FeatureAlphaDropoutImpl>())
      return true;
  }
  return false;
}

void check_replicable(torch::nn::Module& model, const std::string& name) {
  if (draws_from_global_generator(model))
    throw Error("model " + models::model_label(name) +
                " has dropout, whose masks would depend on the replica that draws them: it trains only with "
                "--parallelism threads, in one process");
  // Replicas exchange and step every parameter (a TorchScript file may freeze some).
  for (const auto& p : model.named_parameters())
    if (!p.value().requires_grad())
      throw Error("model " + models::model_label(name) + " has a frozen parameter (" + p.key() +
                  ", requires_grad False): it trains only with --parallelism threads, in one process");
}

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

// A gang exchange: every member's `payload` (all of one length), after
// checking that no member failed. Each member's packet: a failure flag, its
// message (cut to kMessageBytes), the payload; packets are padded to 8 bytes
// so that the doubles in a payload stay aligned. Throws, on every member
// alike, naming the first member that failed. The payloads land in `all`.
constexpr std::size_t kMessageBytes = 248;
constexpr std::size_t kPayloadOffset = 8 + kMessageBytes;
struct Payloads {
  const char* base;
  std::size_t stride;
  const char* operator[](int member) const { return base + static_cast<std::size_t>(member) * stride + kPayloadOffset; }
};
Payloads gang_exchange(Gang& gang, const std::string& failure, const std::vector<char>& payload, std::vector<char>& mine,
                       std::vector<char>& all) {
  const std::size_t stride = (kPayloadOffset + payload.size() + 7) / 8 * 8;
  mine.assign(stride, 0);
  const std::int64_t failed = failure.empty() ? 0 : 1;
  std::memcpy(mine.data(), &failed, 8);
  std::memcpy(mine.data() + 8, failure.data(), std::min(failure.size(), kMessageBytes - 1));
  if (!payload.empty()) std::memcpy(mine.data() + kPayloadOffset, payload.data(), payload.size());
  all.resize(stride * static_cast<std::size_t>(gang.size()));
  gang.allgather(mine.data(), stride, all.data());
  for (int r = 0; r < gang.size(); ++r) {
    const char* packet = all.data() + static_cast<std::size_t>(r) * stride;
    std::int64_t flag = 0;
    std::memcpy(&flag, packet, 8);
    if (flag != 0) {
      std::string message(packet + 8, kMessageBytes);
      message.resize(std::strlen(message.c_str()));
      throw Error("rank " + std::to_string(r) + " of the job's " + std::to_string(gang.size()) + ": " + message);
    }
  }
  return Payloads{all.data(), stride};
}

// Float tensors into and out of a flat buffer, in order: a gang's sums.
float* pack(float* to, const std::vector<at::Tensor>& tensors) {
  for (const auto& t : tensors) {
    const auto c = t.contiguous();
    std::memcpy(to, c.data_ptr<float>(), static_cast<std::size_t>(c.numel()) * sizeof(float));
    to += c.numel();
  }
  return to;
}
const float* unpack(const float* from, const std::vector<at::Tensor>& like, std::vector<at::Tensor>& out) {
  out.resize(like.size());
  for (std::size_t i = 0; i < like.size(); ++i) {
    out[i] = torch::empty_like(like[i], at::MemoryFormat::Contiguous);
    std::memcpy(out[i].data_ptr<float>(), from, static_cast<std::size_t>(out[i].numel()) * sizeof(float));
    from += out[i].numel();
  }
  return from;
}

template <typename T>
void append(std::vector<char>& bytes, const T& value) {
  const auto at = bytes.size();
  bytes.resize(at + sizeof(T));
  std::memcpy(bytes.data() + at, &value, sizeof(T));
}
template <typename T>
T read_at(const char* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

// FNV-1a over the tensors' bytes (a start-of-fit check, not a secret).
std::uint64_t hash_tensors(const std::vector<at::Tensor>& tensors, std::uint64_t h = 14695981039346656037ull) {
  for (const auto& t : tensors) {
    const auto c = t.detach().contiguous();
    const auto* p = static_cast<const unsigned char*>(c.data_ptr());
    const auto n = static_cast<std::size_t>(c.numel()) * c.element_size();
    for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  }
  return h;
}

}  // namespace

// --- options -----------------------------------------------------------------

std::uint64_t weights_hash(torch::nn::Module& model) {
  std::vector<at::Tensor> stats;
  for (const auto& b : model.buffers())
    if (b.is_floating_point()) stats.push_back(b);
  return hash_tensors(stats, hash_tensors(model.parameters()));
}

LrScaling lr_scaling_from_string(std::string_view name) {
  if (name == "none") return LrScaling::none;
  if (name == "linear") return LrScaling::linear;
  throw Error("unknown learning-rate scaling '" + std::string(name) + "' (known: none, linear)");
}

Parallelism parallelism_from_string(std::string_view name) {
  if (name == "replicas") return Parallelism::replicas;
  if (name == "threads") return Parallelism::threads;
  throw Error("unknown parallelism '" + std::string(name) + "' (known: replicas, threads)");
}

std::string_view to_string(LrScaling scaling) { return scaling == LrScaling::none ? "none" : "linear"; }
std::string_view to_string(Parallelism parallelism) {
  return parallelism == Parallelism::replicas ? "replicas" : "threads";
}

Parallelism default_parallelism(const std::string& model) {
  // bench_dataparallel on 2 cores (samples/s, 2 replicas vs 2 intra-op threads):
  //   mlp          batch 64: 26.5k vs 28.4k   batch 256: 38.3k vs 51.3k  -> threads
  //   lenet5       batch 64:  8.0k vs  7.1k   batch 256:  8.4k vs  8.5k  -> replicas
  //   mobilenetv2  batch 64:    46 vs    43   batch 256:    36 vs    13  -> replicas
  // The MLP's GEMMs gain more from whole batches than its replicas gain from
  // cores; replicas elsewhere (and where not measured: vgg11, resnet18),
  // which also keep the bits independent of the core count.
  // A TorchScript file: threads, which take any module (replicas refuse dropout).
  return model == "mlp" || models::is_model_file(model) ? Parallelism::threads : Parallelism::replicas;
}

void check_replicable(const std::string& model, const models::ModelOptions& shape) {
  if (!models::is_model_file(model)) return;  // the zoo's models have neither dropout nor frozen parameters
  check_replicable(*models::make_model(model, shape), model);
}

void check_sweep_cores(int cores_per_job, int max_cores_per_job, std::int64_t micro_batch, std::int64_t batch_size) {
  if (cores_per_job < 1) throw Error("--cores-per-job must be at least 1");
  if (max_cores_per_job != 0 && max_cores_per_job < cores_per_job)
    throw Error("--max-cores-per-job " + std::to_string(max_cores_per_job) + " is below --cores-per-job " +
                std::to_string(cores_per_job));
  if (micro_batch < 1 || batch_size % micro_batch != 0)
    throw Error("--micro-batch " + std::to_string(micro_batch) + " does not divide --batch-size " +
                std::to_string(batch_size) + " (a step's batch is cut into equal micro-batches)");
}

void DataParallelOptions::validate() const {
  train().validate();
  const auto batch = train().batch_size();
  if (micro_batch() < 1) throw Error("micro-batch must be at least 1, not " + std::to_string(micro_batch()));
  if (micro_batch() > batch)
    throw Error("micro-batch " + std::to_string(micro_batch()) + " is larger than the batch size " + std::to_string(batch));
  if (batch % micro_batch() != 0)
    throw Error("micro-batch " + std::to_string(micro_batch()) + " does not divide the batch size " + std::to_string(batch));
  if (max_replicas() < 1) throw Error("data-parallel training needs at least 1 replica");
  if (reference_batch() < 1) throw Error("the reference batch must be at least 1");
  if (warmup_epochs() < 0 || warmup_epochs() > train().epochs())
    throw Error("warm-up epochs must be in 0.." + std::to_string(train().epochs()) + ", not " +
                std::to_string(warmup_epochs()));
  if (!(width_multiplier() > 0)) throw Error("the width multiplier must be above 0");
  if (limit() < 0) throw Error("limit must not be negative");
  if (!(bucket_cap_mb() > 0) || bucket_cap_mb() > 1024)
    throw Error("the bucket cap must be above 0 and at most 1024 MiB, not " + std::to_string(bucket_cap_mb()));
}

double DataParallelOptions::lr_at(std::int64_t step, std::int64_t steps_per_epoch, std::int64_t total_steps) const {
  const auto batch = static_cast<double>(train().batch_size());
  const auto reference = static_cast<double>(reference_batch());
  double base = train().effective_lr();
  if (lr_scaling() == LrScaling::linear) base *= batch / reference;
  double lr = train::scheduled_lr(train().schedule(), base, step, total_steps);
  const std::int64_t warmup_steps = static_cast<std::int64_t>(warmup_epochs()) * steps_per_epoch;
  if (step < warmup_steps) {
    const double r = std::min(1.0, reference / batch);
    lr *= r + (1.0 - r) * static_cast<double>(step) / static_cast<double>(warmup_steps);
  }
  return lr;
}

nlohmann::json DataParallelOptions::spec() const {
  nlohmann::json spec = {{"epochs", train().epochs()},
                         {"batch_size", train().batch_size()},
                         {"micro_batch", micro_batch()},
                         {"optimizer", train::to_string(train().optimizer())},
                         {"lr", train().effective_lr()},
                         {"schedule", train::to_string(train().schedule())},
                         {"lr_scaling", to_string(lr_scaling())},
                         {"warmup_epochs", warmup_epochs()},
                         {"parallelism", to_string(parallelism())}};
  if (lr_scaling() == LrScaling::linear || warmup_epochs() > 0) spec["reference_batch"] = reference_batch();
  spec.update(models::model_spec(model()));  // its label, and a file's hash
  if (model() == "mobilenetv2") spec["width_multiplier"] = width_multiplier();
  if (train().augment()) spec["augment"] = true;
  if (limit() > 0) spec["limit"] = limit();
  return spec;
}

nlohmann::json DataParallelResult::metrics() const {
  auto m = train.metrics();
  double compute = 0, reduce = 0, wait = 0, secs = 0, samples = 0;
  nlohmann::json per_epoch = nlohmann::json::array();
  for (std::size_t i = 0; i < costs.size(); ++i) {
    const auto& c = costs[i];
    compute += c.compute_seconds;
    reduce += c.reduce_seconds;
    wait += c.wait_seconds;
    secs += c.seconds;
    samples += c.samples_per_second * c.seconds;
    nlohmann::json e = {{"epoch", c.epoch},
                        {"seconds", c.seconds},
                        {"compute_s", c.compute_seconds},
                        {"reduce_s", c.reduce_seconds},
                        {"wait_s", c.wait_seconds},
                        {"sync_share", number(c.sync_share)},
                        {"peak_replicas", c.peak_replicas},
                        {"samples_per_s", number(c.samples_per_second)}};
    if (i < train.history.size()) {
      const auto& h = train.history[i];
      e["train_loss"] = number(h.train_loss);
      e["val_top1"] = number(h.val_top1);
      e["val_loss"] = number(h.val_loss);
      e["lr"] = h.lr;
    }
    per_epoch.push_back(e);
  }
  const double busy = compute + reduce + wait;
  m["compute_seconds"] = compute;
  m["reduce_seconds"] = reduce;
  m["wait_seconds"] = wait;
  m["sync_share"] = number(busy > 0 ? (reduce + wait) / busy : kNaN);
  m["peak_replicas"] = peak_replicas;
  m["samples_per_s"] = number(secs > 0 ? samples / secs : kNaN);
  m["per_epoch"] = per_epoch;
  return m;
}

// --- the trainer ---------------------------------------------------------------

// A replica's model: its parameters are the master's storage (set_data), its
// gradients and buffers (BatchNorm statistics) its own.
struct DataParallelTrainer::Replica {
  std::shared_ptr<models::Model> model;
  std::vector<at::Tensor> params;
  std::vector<at::Tensor> buffers;  // all of them, in the master's order
  std::vector<at::Tensor> stats;    // the floating ones, in master_stats_'s order
  // A gang's overlap: the parameters' gradient accumulators, held so that
  // the hooks on them live, and whether this replica's backward is the one
  // that overlaps the exchange (the hooks act only then).
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  bool overlapping = false;
};

// A gang's bucket of parameters: what this member sends (its sum of the
// step's micro-batches for them) and receives (every member's, in rank order).
struct DataParallelTrainer::Bucket {
  std::vector<std::size_t> params;  // indices into master_params_
  std::int64_t floats = 0;
  std::vector<float> send, recv;
  std::size_t pending = 0;          // gradients not final yet in the overlapping backward
  bool ready = false;
  std::uint64_t ticket = 0;
};

// What one micro-batch of the step produced; after the tree, the sum of a
// node's micro-batches sits in the buffer of its first one.
struct DataParallelTrainer::Buffer {
  std::vector<at::Tensor> grads;  // one per parameter, scaled by samples / the step's samples
  std::vector<at::Tensor> stats;  // the replica's running statistics after this micro-batch
  double loss = 0;                // mean over its samples
  std::int64_t samples = 0;
};

DataParallelTrainer::DataParallelTrainer(models::ModelOptions shape, DataParallelOptions options)
    : shape_(shape), options_(std::move(options)) {
  options_.validate();
  master_ = models::make_model(options_.model(), shape_);
  check_replicable(*master_, options_.model());
  master_->train();
  master_params_ = master_->parameters();
  for (auto& b : master_->buffers()) (b.is_floating_point() ? master_stats_ : master_counts_).push_back(b);
  optimizer_ = train::make_optimizer(options_.train(), master_params_);
  const auto micro_batches = options_.train().batch_size() / options_.micro_batch();
  if (micro_batches > std::numeric_limits<int>::max() / 2) throw Error("data-parallel: too many micro-batches a step");
  // One shard per replica (at most one per micro-batch: a round deals at
  // most that many items), each the largest parameters first to the shard
  // with the fewest elements so far.
  const auto shards = std::min<std::int64_t>({options_.max_replicas(), micro_batches,
                                              static_cast<std::int64_t>(master_params_.size())});
  std::set<const void*> distinct;
  for (const auto& p : master_params_) distinct.insert(p.unsafeGetTensorImpl());
  // A tied parameter (listed twice) is stepped twice by one optimizer: kept whole.
  if (shards > 1 && distinct.size() == master_params_.size()) {
    std::vector<std::size_t> order(master_params_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [this](std::size_t a, std::size_t b) { return master_params_[a].numel() > master_params_[b].numel(); });
    std::vector<std::vector<at::Tensor>> share(static_cast<std::size_t>(shards));
    std::vector<std::int64_t> elements(static_cast<std::size_t>(shards), 0);
    for (const auto i : order) {
      const auto least = static_cast<std::size_t>(std::min_element(elements.begin(), elements.end()) - elements.begin());
      share[least].push_back(master_params_[i]);
      elements[least] += master_params_[i].numel();
    }
    for (auto& params : share) shards_.push_back(train::make_optimizer(options_.train(), std::move(params)));
  }
  if (const auto& gang = options_.gang()) {
    // Buckets in reverse parameter order, closed once they reach their cap.
    const double mib = 1024.0 * 1024.0;
    const double cap = options_.bucket_cap_mb() * mib;
    const double first_cap = std::min(kFirstBucketCapMb, options_.bucket_cap_mb()) * mib;
    bucket_of_.assign(master_params_.size(), 0);
    auto bucket = std::make_unique<Bucket>();
    for (std::size_t i = master_params_.size(); i-- > 0;) {
      bucket->params.push_back(i);
      bucket->floats += master_params_[i].numel();
      bucket_of_[i] = buckets_.size();
      if (static_cast<double>(bucket->floats) * sizeof(float) >= (buckets_.empty() ? first_cap : cap)) {
        buckets_.push_back(std::move(bucket));
        bucket = std::make_unique<Bucket>();
      }
    }
    if (!bucket->params.empty()) buckets_.push_back(std::move(bucket));
    for (auto& b : buckets_) {
      b->send.resize(static_cast<std::size_t>(b->floats));
      b->recv.resize(static_cast<std::size_t>(b->floats) * static_cast<std::size_t>(gang->size()));
    }
    // A tied parameter's one accumulator would be two entries: no overlap then.
    can_overlap_ = options_.overlap() && distinct.size() == master_params_.size();
  }
  sync_ = std::make_unique<StepSync>(options_.max_replicas(), static_cast<int>(micro_batches));
  replicas_.resize(static_cast<std::size_t>(options_.max_replicas()));
  for (std::int64_t i = 0; i < micro_batches; ++i) buffers_.push_back(std::make_unique<Buffer>());
}

DataParallelTrainer::~DataParallelTrainer() = default;

int DataParallelTrainer::replicas() const { return sync_->replicas(); }

DataParallelTrainer::Replica& DataParallelTrainer::replica(int slot) {
  // Only the seat's owner gets here, and a seat changes owner under the
  // pool's lock: no lock needed for the entry.
  auto& r = replicas_[static_cast<std::size_t>(slot)];
  if (!r) {
    auto made = std::make_unique<Replica>();
    made->model = models::make_model(options_.model(), shape_);
    made->params = made->model->parameters();
    PACKTRAIN_CHECK(made->params.size() == master_params_.size(), "data-parallel: a replica differs from the master");
    for (std::size_t i = 0; i < made->params.size(); ++i) made->params[i].set_data(master_params_[i]);
    made->buffers = made->model->buffers();
    for (auto& b : made->buffers)
      if (b.is_floating_point()) made->stats.push_back(b);
    PACKTRAIN_CHECK(made->stats.size() == master_stats_.size(), "data-parallel: a replica differs from the master");
    if (can_overlap_) {
      // After AccumulateGrad has put a parameter's gradient in .grad (as DDP hooks it).
      for (std::size_t i = 0; i < made->params.size(); ++i) {
        auto accumulator = torch::autograd::impl::grad_accumulator(made->params[i]);
        PACKTRAIN_CHECK(accumulator, "data-parallel: a parameter without a gradient accumulator");
        accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
            [this, replica = made.get(), i](const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) {
              if (replica->overlapping) gradient_final(*replica, i);
              return outputs;
            }));
        made->accumulators.push_back(std::move(accumulator));
      }
    }
    made->model->train();
    r = std::move(made);
  }
  return *r;
}

void DataParallelTrainer::compute(int slot, const MicroBatch& mb) {
  if (phase_ == Phase::optimize) {
    shards_[static_cast<std::size_t>(mb.index)]->step();
    return;
  }
  if (phase_ == Phase::train && callbacks_.on_micro_batch) callbacks_.on_micro_batch(step_, mb.index, slot);
  auto& r = replica(slot);
  if (!r.buffers.empty()) {
    // Every micro-batch starts from the master's running statistics.
    torch::NoGradGuard no_grad;
    const auto master = master_->buffers();
    for (std::size_t i = 0; i < r.buffers.size(); ++i) r.buffers[i].copy_(master[i]);
  }
  if (phase_ == Phase::evaluate) {
    // One evaluation batch, as train::evaluate computes it.
    const std::int64_t batch_size = options_.train().eval_batch_size();
    const std::int64_t b = eval_first_ + mb.index;
    const std::int64_t start = b * batch_size;
    const auto idx = eval_indices_.narrow(0, start, std::min(batch_size, eval_indices_.numel() - start));
    torch::NoGradGuard no_grad;
    r.model->eval();
    const AtScopeEnd back([&r] { r.model->train(); });
    eval_sums_[static_cast<std::size_t>(b)] =
        train::evaluate_batch([&r](const at::Tensor& x) { return r.model->forward(x); }, *eval_part_, idx);
    return;
  }
  auto& out = *buffers_[static_cast<std::size_t>(mb.index)];
  const auto batch = loader_->batch(first_batch_ + mb.index);
  const auto samples = batch.labels.size(0);
  for (auto& p : r.params) p.mutable_grad().reset();
  // A gang's last micro-batch of the step, every other one summed already:
  // its backward starts the buckets' exchanges (gradient_final).
  const std::int64_t finished = finished_in_round_.load(std::memory_order_acquire);
  const bool last = round_items_ == 1 || (finished >> kRoundShift == mb.step &&
                                          (finished & ((std::int64_t{1} << kRoundShift) - 1)) == round_items_ - 1);
  if (can_overlap_ && last) {
    overlap_leaf_.store(mb.index, std::memory_order_relaxed);
    out.grads.assign(r.params.size(), at::Tensor());
    r.overlapping = true;
  }
  const AtScopeEnd not_overlapping([&r] { r.overlapping = false; });
  const auto logits = r.model->forward(batch.images);
  const auto& loss_fn = options_.train().loss();
  const auto loss = loss_fn ? loss_fn(logits, batch.labels) : torch::nn::functional::cross_entropy(logits, batch.labels);
  // Scaled so the micro-batches' gradients add up to the step's mean-loss gradient.
  (loss * (static_cast<double>(samples) / static_cast<double>(step_samples_))).backward();
  out.loss = loss.item<double>();
  out.samples = samples;
  out.grads.resize(r.params.size());
  for (std::size_t i = 0; i < r.params.size(); ++i) {
    auto& g = r.params[i].mutable_grad();
    out.grads[i] = g.defined() ? std::move(g) : torch::zeros_like(r.params[i]);  // taken, not copied
    g = at::Tensor();
  }
  out.stats.resize(r.stats.size());
  for (std::size_t i = 0; i < r.stats.size(); ++i) out.stats[i] = r.stats[i].clone();
  if (r.overlapping) {
    // Buckets whose gradients never reached a hook (a parameter the loss
    // does not use: zeros above), while the tree's other buffers still hold
    // theirs (finish() clears them).
    for (; next_bucket_ < buckets_.size(); ++next_bucket_) post_bucket(next_bucket_, true);
  }
}

// A micro-batch of train round `round` is finished, its tree sums done.
void DataParallelTrainer::count_finished(std::int64_t round) {
  std::int64_t seen = finished_in_round_.load(std::memory_order_relaxed);
  for (;;) {
    const std::int64_t tag = seen >> kRoundShift;
    if (tag > round) return;  // a late count of an earlier round: not this one's
    const std::int64_t next = tag == round ? seen + 1 : (round << kRoundShift) + 1;
    if (finished_in_round_.compare_exchange_weak(seen, next, std::memory_order_acq_rel, std::memory_order_relaxed))
      return;
  }
}

void DataParallelTrainer::combine(int left, int right) {
  if (phase_ != Phase::train) return;  // evaluation: the leader adds the batches' sums up in order
  torch::NoGradGuard no_grad;
  auto& l = *buffers_[static_cast<std::size_t>(left)];
  auto& r = *buffers_[static_cast<std::size_t>(right)];
  // On an overlapping leaf's path the buckets sum the gradients (post_bucket).
  if (overlap_leaf_.load(std::memory_order_relaxed) < 0)
    for (std::size_t i = 0; i < l.grads.size(); ++i) l.grads[i].add_(r.grads[i]);
  for (std::size_t i = 0; i < l.stats.size(); ++i) l.stats[i].add_(r.stats[i]);
  r.grads.clear();
  r.stats.clear();
}

void DataParallelTrainer::compute_counted(int slot, const MicroBatch& mb) {
  try {
    // Read before finish(): once the round is reduced the leader may change it.
    const Phase phase = phase_;
    const auto started = Clock::now();
    compute(slot, mb);
    const auto computed = Clock::now();
    sync_->finish(mb, [this](int left, int right) { combine(left, right); });
    if (phase == Phase::train) count_finished(mb.step);
    // The epoch's costs are its training's: an optimizer shard is reducing.
    if (phase == Phase::train) {
      compute_ns_.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(computed - started).count(),
                            std::memory_order_relaxed);
      reduce_ns_.fetch_add(ns_since(computed), std::memory_order_relaxed);
    } else if (phase == Phase::optimize) {
      reduce_ns_.fetch_add(ns_since(started), std::memory_order_relaxed);
    }
  } catch (const std::exception& e) {
    sync_->fail(e.what());
    throw;
  } catch (...) {
    sync_->fail("unknown exception");
    throw;
  }
}

void DataParallelTrainer::apply_step(const StepSync::Seat& seat, int micro_batches) {
  auto started = Clock::now();
  auto& root = *buffers_[0];
  for (std::size_t i = 0; i < master_params_.size(); ++i) master_params_[i].mutable_grad() = std::move(root.grads[i]);
  root.grads.clear();
  if (shards_.empty()) {
    optimizer_->step();
  } else {
    // The shards on the replicas: the round's time counts as reducing (compute_counted).
    reduce_ns_.fetch_add(ns_since(started), std::memory_order_relaxed);
    phase_ = Phase::optimize;
    const AtScopeEnd back([this] { phase_ = Phase::train; });
    run_round(seat, static_cast<int>(shards_.size()));
    started = Clock::now();
    if (callbacks_.after_step) gather_optimizer_state();  // it may read or change the state
  }
  if (!master_stats_.empty() || !master_counts_.empty()) {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < master_stats_.size(); ++i) master_stats_[i].copy_(root.stats[i].div_(micro_batches));
    for (auto& c : master_counts_) c.add_(1);
    root.stats.clear();
  }
  reduce_ns_.fetch_add(ns_since(started), std::memory_order_relaxed);
}

// The optimizers key their per-parameter state by the parameter's
// TensorImpl (as lth's MaskedTraining reads it); a copied state holds the
// same tensors, so what one side changes in place the other sees.
void DataParallelTrainer::gather_optimizer_state() {
  auto& all = optimizer_->state();
  for (const auto& shard : shards_)
    for (const auto& [key, state] : shard->state()) all[key] = state->clone();
}

void DataParallelTrainer::scatter_optimizer_state() {
  const auto& all = optimizer_->state();
  PACKTRAIN_CHECK(shards_.empty() || optimizer_->param_groups().size() == 1,
                  "data-parallel: the optimizer's parameter groups changed before the fit");
  for (const auto& shard : shards_) {
    // The options too (momentum, decay, betas: before_fit may have changed them).
    shard->param_groups()[0].set_options(optimizer_->param_groups()[0].options().clone());
    auto& own = shard->state();
    own.clear();
    for (const auto& group : shard->param_groups())
      for (const auto& p : group.params()) {
        const auto key = c10::guts::to_string(p.unsafeGetTensorImpl());
        if (const auto it = all.find(key); it != all.end()) own[key] = it->second->clone();
      }
  }
}

void DataParallelTrainer::save_if_due(int epoch) {
  if (!train::checkpoint_due(options_.train(), epoch)) return;
  gather_optimizer_state();
  train::save_checkpoint(train::checkpoint_path(options_.train().checkpoint_dir(), epoch), *master_, optimizer_.get(),
                         epoch);
}

void DataParallelTrainer::run_round(const StepSync::Seat& seat, int items) {
  sync_->begin_step(items);  // publishes the round's fields to the takers
  try {
    for (;;) {
      while (auto mb = sync_->take(seat)) compute_counted(seat.slot(), *mb);
      // After a failure: once no other replica still computes (they read
      // data that fit()'s caller owns, and the round's fields).
      const auto wake = sync_->wait_for_step();
      if (wake == StepSync::Wake::reduced) return;
      if (wake == StepSync::Wake::failed) throw Error("a data-parallel replica failed: " + sync_->failure());
    }
  } catch (...) {
    // The leader's own micro-batch threw: the same wait before unwinding.
    sync_->wait_until_none_in_hand();
    throw;
  }
}

train::EvalMetrics DataParallelTrainer::evaluate(const StepSync::Seat& seat, const data::Dataset& part,
                                                 const at::Tensor& indices) {
  const std::int64_t n = indices.defined() ? indices.numel() : 0;
  if (n == 0) return train::EvalMetrics{kNaN, kNaN, kNaN, 0};
  const std::int64_t batch_size = options_.train().eval_batch_size();
  const std::int64_t batches = (n + batch_size - 1) / batch_size;
  phase_ = Phase::evaluate;
  const AtScopeEnd back([this] { phase_ = Phase::train; });
  eval_part_ = &part;
  eval_indices_ = indices;
  eval_sums_.assign(static_cast<std::size_t>(batches), train::EvalSums{});
  const std::int64_t per_round = sync_->max_micro_batches();
  Gang* gang = options_.gang().get();
  const auto mine = gang ? block_of(batches, gang->rank(), gang->size()) : Block{0, batches};
  std::string failure = std::exchange(pending_failure_, std::string());  // since the last exchange
  try {
    if (failure.empty())
      for (eval_first_ = mine.first; eval_first_ < mine.first + mine.count; eval_first_ += per_round)
        run_round(seat, static_cast<int>(std::min(per_round, mine.first + mine.count - eval_first_)));
  } catch (const std::exception& e) {
    if (!gang) throw;
    failure = e.what();
  }
  if (gang) {
    // Every member's batches' sums, so that every member adds them up alike.
    const std::int64_t most = (batches + gang->size() - 1) / gang->size();
    std::vector<char> payload;
    for (std::int64_t b = 0; b < most; ++b) {
      const auto sums = b < mine.count ? eval_sums_[static_cast<std::size_t>(mine.first + b)] : train::EvalSums{};
      append(payload, sums.loss);
      append(payload, sums.top1);
      append(payload, sums.top5);
    }
    const auto payloads = gang_exchange(*gang, failure, payload, gang_mine_, gang_all_);
    gang_anchor_ = Clock::now();
    for (int r = 0; r < gang->size(); ++r) {
      const auto theirs = block_of(batches, r, gang->size());
      const char* p = payloads[r];
      for (std::int64_t b = 0; b < theirs.count; ++b, p += 24)
        eval_sums_[static_cast<std::size_t>(theirs.first + b)] =
            train::EvalSums{read_at<double>(p), read_at<std::int64_t>(p + 8), read_at<std::int64_t>(p + 16)};
    }
  }
  // Added up in batch order, as train::evaluate does.
  double loss_sum = 0;
  std::int64_t top1 = 0, top5 = 0;
  for (const auto& sums : eval_sums_) {
    loss_sum += sums.loss;
    top1 += sums.top1;
    top5 += sums.top5;
  }
  const auto count = static_cast<double>(n);
  return train::EvalMetrics{loss_sum / count, static_cast<double>(top1) / count, static_cast<double>(top5) / count, n};
}

template <typename Body>
void DataParallelTrainer::guarded(Body&& body) {
  if (!options_.gang()) {
    body();
    return;
  }
  try {
    body();
  } catch (const std::exception& e) {
    if (pending_failure_.empty()) pending_failure_ = e.what();
  }
}

bool DataParallelTrainer::check_same_start(const std::string& failure, bool stop) {
  Gang& gang = *options_.gang();
  std::vector<char> payload;
  append(payload, weights_hash(*master_));
  append(payload, static_cast<std::int64_t>(stop ? 1 : 0));
  const auto payloads = gang_exchange(gang, failure, payload, gang_mine_, gang_all_);
  gang_anchor_ = Clock::now();
  for (int r = 0; r < gang.size(); ++r)
    if (read_at<std::int64_t>(payloads[r] + 8) != 0) return true;
  const auto first = read_at<std::uint64_t>(payloads[0]);
  for (int r = 1; r < gang.size(); ++r) {
    const auto theirs = read_at<std::uint64_t>(payloads[r]);
    if (theirs != first) {
      char text[160];
      std::snprintf(text, sizeof text, "rank %d starts from other weights than rank 0 (hash %016llx, rank 0 %016llx)", r,
                    static_cast<unsigned long long>(theirs), static_cast<unsigned long long>(first));
      throw Error(std::string(text) + ": every rank must build the job from the same flags, seed and checkpoint");
    }
  }
  return false;
}

void DataParallelTrainer::arm_buckets(std::int64_t local_micro_batches) {
  round_items_ = static_cast<int>(local_micro_batches);
  finished_in_round_.store(0, std::memory_order_relaxed);  // published with the round's deal
  overlap_leaf_.store(-1, std::memory_order_relaxed);
  next_bucket_ = 0;
  for (auto& b : buckets_) {
    b->pending = b->params.size();
    b->ready = false;
  }
}

// On the overlapping replica's thread, inside its backward.
void DataParallelTrainer::gradient_final(Replica& r, std::size_t param) {
  auto& out = *buffers_[static_cast<std::size_t>(overlap_leaf_.load(std::memory_order_relaxed))];
  auto& g = r.params[param].mutable_grad();
  if (!g.defined()) g = torch::zeros_like(r.params[param]);
  out.grads[param] = g;  // the same tensor compute() takes afterwards
  auto& bucket = *buckets_[bucket_of_[param]];
  if (--bucket.pending > 0) return;
  bucket.ready = true;
  // In bucket order, so that every member starts the same exchanges in the same order.
  while (next_bucket_ < buckets_.size() && buckets_[next_bucket_]->ready) {
    post_bucket(next_bucket_, true);
    ++next_bucket_;
  }
}

void DataParallelTrainer::post_bucket(std::size_t b, bool has_sum) {
  auto& bucket = *buckets_[b];
  torch::NoGradGuard no_grad;
  const int leaf = overlap_leaf_.load(std::memory_order_relaxed);
  if (has_sum && leaf >= 0) {
    // The in-node tree's additions on the overlapping leaf's path (combine()
    // leaves them to the buckets), for this bucket's parameters: the same bits.
    ReductionTree::path_to_root(leaf, round_items_, [&](int left, int right) {
      auto& l = *buffers_[static_cast<std::size_t>(left)];
      auto& r = *buffers_[static_cast<std::size_t>(right)];
      for (const auto i : bucket.params) l.grads[i].add_(r.grads[i]);
    });
  }
  float* to = bucket.send.data();
  for (const auto i : bucket.params) {
    const auto n = static_cast<std::size_t>(master_params_[i].numel());
    if (has_sum) {
      const auto g = buffers_[0]->grads[i].contiguous();
      std::memcpy(to, g.data_ptr<float>(), n * sizeof(float));
    } else {
      std::fill(to, to + n, 0.0f);  // a member with no sum (none computed, or a failure the header carries)
    }
    to += n;
  }
  if (b == 0) first_post_ = Clock::now();
  bucket.ticket = options_.gang()->start_allgather(bucket.send.data(), bucket.send.size() * sizeof(float),
                                                   bucket.recv.data());
}

bool DataParallelTrainer::exchange_step(std::int64_t local_micro_batches, std::int64_t micro_batches,
                                        const std::string& failed, bool stop, std::vector<double>& losses) {
  Gang& gang = *options_.gang();
  auto& root = *buffers_[0];
  // What fails here on this member goes in the header like a failure before
  // it: every member makes every exchange, then every member throws.
  std::string failure = failed;
  const bool has_sum = failure.empty() && local_micro_batches > 0;
  // The buckets the backward did not start (all of them without overlap), in order.
  for (; next_bucket_ < buckets_.size(); ++next_bucket_) {
    try {
      post_bucket(next_bucket_, has_sum && failure.empty());
    } catch (const std::exception& e) {
      if (failure.empty()) failure = e.what();
      post_bucket(next_bucket_, false);  // zeros: only starting the exchange itself can throw, and then MPI is gone
    }
  }

  // The header: counts, stop, losses, the timeline, BatchNorm statistics.
  std::int64_t stats = 0;
  for (const auto& b : master_stats_) stats += b.numel();
  std::vector<char> payload;
  payload.reserve(static_cast<std::size_t>(40 + 16 * buffers_.size() + 4 * stats));
  append(payload, static_cast<std::int64_t>(has_sum ? local_micro_batches : 0));
  append(payload, static_cast<std::int64_t>(stop ? 1 : 0));
  // The timeline: this member's compute and the exchange's start, from the last exchange's end.
  const auto since_anchor = [this](Clock::time_point t) { return std::chrono::duration<double>(t - gang_anchor_).count(); };
  append(payload, since_anchor(compute_begin_));
  append(payload, since_anchor(compute_end_));
  append(payload, since_anchor(first_post_));  // bucket 0 has started by now
  constexpr std::size_t kLossesAt = 40;
  for (std::size_t j = 0; j < buffers_.size(); ++j) {
    const bool mine = has_sum && static_cast<std::int64_t>(j) < local_micro_batches;
    append(payload, mine ? buffers_[j]->loss : 0.0);
    append(payload, mine ? static_cast<double>(buffers_[j]->samples) : 0.0);
  }
  const auto floats_at = payload.size();
  payload.resize(floats_at + static_cast<std::size_t>(4 * stats), 0);
  if (has_sum) pack(reinterpret_cast<float*>(payload.data() + floats_at), root.stats);
  const auto started = Clock::now();
  // Synchronization: the exchanges (waiting for the slowest member too) and the sums over members.
  const AtScopeEnd counted([&] { reduce_ns_.fetch_add(ns_since(started), std::memory_order_relaxed); });

  // The members' sums, by the pairwise tree over members (reduction_tree.hpp's shape).
  const auto tree_sum = [](std::vector<at::Tensor>& sums) {
    torch::NoGradGuard no_grad;
    const auto n = sums.size();
    for (std::size_t span = 1; span < n; span *= 2)
      for (std::size_t left = 0; left + span < n; left += 2 * span) sums[left].add_(sums[left + span]);
  };
  // Which members computed micro-batches this step: the same deal on every member.
  std::vector<int> computed;
  for (int r = 0; r < gang.size(); ++r)
    if (block_of(micro_batches, r, gang.size()).count > 0) computed.push_back(r);
  PACKTRAIN_CHECK(!computed.empty(), "data-parallel: a gang step with no micro-batch");
  root.grads.resize(master_params_.size());
  for (auto& bucket : buckets_) {
    try {
      gang.wait(bucket->ticket);
    } catch (const std::exception& e) {
      if (failure.empty()) failure = e.what();
      continue;
    }
    if (!failure.empty()) continue;  // the header fails the step everywhere
    std::vector<at::Tensor> sums;
    for (const int r : computed)
      sums.push_back(torch::from_blob(bucket->recv.data() + static_cast<std::size_t>(r) * bucket->send.size(),
                                      {bucket->floats}, torch::kFloat32));
    tree_sum(sums);
    const float* from = sums[0].data_ptr<float>();
    for (const auto i : bucket->params) {
      root.grads[i] = torch::empty_like(master_params_[i], at::MemoryFormat::Contiguous);
      std::memcpy(root.grads[i].data_ptr<float>(), from, static_cast<std::size_t>(root.grads[i].numel()) * sizeof(float));
      from += root.grads[i].numel();
    }
  }

  const auto payloads = gang_exchange(gang, failure, payload, gang_mine_, gang_all_);
  bool any_stop = false;
  losses.clear();
  std::vector<at::Tensor> stat_sums;  // of the members that computed micro-batches, in rank order
  for (int r = 0; r < gang.size(); ++r) {
    const char* p = payloads[r];
    const auto count = read_at<std::int64_t>(p);
    any_stop = any_stop || read_at<std::int64_t>(p + 8) != 0;
    for (std::int64_t j = 0; j < count; ++j) {
      losses.push_back(read_at<double>(p + kLossesAt + 16 * j));
      losses.push_back(read_at<double>(p + kLossesAt + 8 + 16 * j));
    }
    if (count > 0 && stats > 0)
      stat_sums.push_back(torch::from_blob(const_cast<char*>(p) + floats_at, {stats}, torch::kFloat32));
  }
  if (any_stop) return true;
  if (stats > 0) {
    tree_sum(stat_sums);
    unpack(stat_sums[0].data_ptr<float>(), master_stats_, root.stats);
  }

  // Every member's step on this member's clock, anchored at the last exchange's end.
  // A member's offsets run from its own anchor, which a loaded machine can
  // put a little before this one's: they are kept within this step's span
  // (its exchange ends on every member at once), so no slice outlives it.
  const auto ended = Clock::now();
  const double ended_unix = unix_seconds_now();
  const double anchor_unix = ended_unix - std::chrono::duration<double>(ended - gang_anchor_).count();
  for (int r = 0; r < gang.size() && step_timings_kept_ < kMaxStepTimings; ++r, ++step_timings_kept_) {
    const char* p = payloads[r];
    const auto at = [&](std::size_t offset) {
      return std::clamp(anchor_unix + read_at<double>(p + offset), anchor_unix, ended_unix);
    };
    step_timings_.push_back(StepTiming{.rank = r, .step = step_,
                                       .compute_begin = at(16),
                                       .compute_end = at(24),
                                       .sync_begin = at(32),
                                       .sync_end = ended_unix});
  }
  gang_anchor_ = ended;
  return false;
}

void DataParallelTrainer::flush_step_timings() {
  if (step_timings_.empty()) return;
  if (callbacks_.on_steps) callbacks_.on_steps(step_timings_);
  step_timings_.clear();
}

DataParallelResult DataParallelTrainer::fit(const train::TrainData& data, const DataParallelCallbacks& callbacks) {
  const auto started = Clock::now();
  PACKTRAIN_CHECK(!loader_, "DataParallelTrainer::fit called twice");
  train::check_data_fits(*master_, data);
  callbacks_ = callbacks;
  one_intra_op_thread();
  const auto& o = options_.train();

  DataParallelResult out;
  auto& result = out.train;
  result.val = train::EvalMetrics{kNaN, kNaN, kNaN, 0};
  result.train_loss = kNaN;
  int first_epoch = 0;
  guarded([&] {
    if (!o.resume_from().empty()) {
      first_epoch = train::load_checkpoint(o.resume_from(), *master_, optimizer_.get());
      if (first_epoch < 0 || first_epoch > o.epochs())
        throw Error("checkpoint " + o.resume_from() + " is at epoch " + std::to_string(first_epoch) +
                    ", outside this run's 0.." + std::to_string(o.epochs()));
    }
    if (callbacks.before_fit) callbacks.before_fit(*master_, *optimizer_);
    scatter_optimizer_state();  // what a resume or before_fit put there
    if (o.resume_from().empty()) save_if_due(0);
  });
  result.epochs_completed = first_epoch;

  // Micro-batches are the loader's batches: micro-batch j of step s of an
  // epoch is batch s x (batch / micro) + j, so the data order is a one-core
  // run's and augmentation comes from (seed, epoch, that number).
  loader_ = std::make_unique<data::BatchLoader>(
      data.train, data.train_idx,
      data::LoaderOptions().batch_size(options_.micro_batch()).seed(o.seed()).augment(o.augment()).prefetch(false));
  const std::int64_t samples = loader_->size();
  const std::int64_t batch = o.batch_size();
  const std::int64_t steps_per_epoch = (samples + batch - 1) / batch;
  const std::int64_t total_steps = steps_per_epoch * o.epochs();
  std::int64_t step = steps_per_epoch * first_epoch;
  double lr = options_.lr_at(step, steps_per_epoch, total_steps);

  Gang* gang = options_.gang().get();
  const StepSync::Seat seat(*sync_);
  PACKTRAIN_CHECK(seat.seated(), "data-parallel: no seat for the run's own thread");
  // However fit ends (an exception too): the helpers stop taking work.
  const AtScopeEnd end([this] { sync_->end(); });
  const auto finish = [&](JobStatus status, std::string message) {
    guarded([&] { flush_step_timings(); });
    gather_optimizer_state();
    result.status = status;
    result.message = std::move(message);
    result.seconds = seconds_since(started);
    master_->eval();
    return out;
  };

  if (gang) {
    const bool stop = callbacks.should_stop && callbacks.should_stop();
    const auto failure = std::exchange(pending_failure_, std::string());
    if (check_same_start(failure, stop))
      return finish(JobStatus::cancelled, "stopped before epoch " + std::to_string(first_epoch + 1));
  }
  for (int epoch = first_epoch; epoch < o.epochs(); ++epoch) {
    const auto epoch_started = Clock::now();
    loader_->start_epoch(epoch);
    const std::int64_t compute0 = compute_ns_.load(std::memory_order_relaxed);
    const std::int64_t reduce0 = reduce_ns_.load(std::memory_order_relaxed);
    const double present0 = sync_->replica_seconds();
    (void)sync_->take_peak();
    double loss_sum = 0;
    std::int64_t seen = 0;
    for (std::int64_t s = 0; s < steps_per_epoch; ++s) {
      const bool stop = callbacks.should_stop && callbacks.should_stop();
      const auto stopped = [&] {
        return finish(JobStatus::cancelled,
                      "stopped in epoch " + std::to_string(epoch + 1) + " after " + std::to_string(result.steps) + " steps");
      };
      if (stop && !gang) return stopped();  // a gang's members stop together, after the exchange
      lr = options_.lr_at(step, steps_per_epoch, total_steps);
      for (auto& group : optimizer_->param_groups()) group.options().set_lr(lr);
      for (auto& shard : shards_)
        for (auto& group : shard->param_groups()) group.options().set_lr(lr);
      const std::int64_t begin = s * batch;
      step_samples_ = std::min(batch, samples - begin);
      first_batch_ = begin / options_.micro_batch();
      const auto micro_batches = static_cast<int>((step_samples_ + options_.micro_batch() - 1) / options_.micro_batch());
      step_ = step + 1;
      // The step's loss, summed in micro-batch order.
      double step_loss = 0;
      if (gang) {
        const auto mine = block_of(micro_batches, gang->rank(), gang->size());
        first_batch_ += mine.first;
        std::string failure = std::exchange(pending_failure_, std::string());  // since the last exchange
        arm_buckets(mine.count);
        compute_begin_ = Clock::now();
        try {
          if (failure.empty() && mine.count > 0) run_round(seat, static_cast<int>(mine.count));
        } catch (const std::exception& e) {
          failure = e.what();
        }
        compute_end_ = Clock::now();
        if (exchange_step(mine.count, micro_batches, failure, stop, gang_losses_)) return stopped();
        for (std::size_t j = 0; j < gang_losses_.size(); j += 2) step_loss += gang_losses_[j] * gang_losses_[j + 1];
      } else {
        run_round(seat, micro_batches);
        for (int j = 0; j < micro_batches; ++j) {
          const auto& b = *buffers_[static_cast<std::size_t>(j)];
          step_loss += b.loss * static_cast<double>(b.samples);
        }
      }
      if (!std::isfinite(step_loss))
        return finish(JobStatus::diverged, "training loss became " + std::to_string(step_loss) + " in epoch " +
                                               std::to_string(epoch + 1) + " (lr " + std::to_string(lr) + ")");
      guarded([&] {
        apply_step(seat, micro_batches);
        if (callbacks.after_step) callbacks.after_step(*master_);
      });
      ++step;
      ++result.steps;
      loss_sum += step_loss;
      seen += step_samples_;
    }
    guarded([&] { flush_step_timings(); });  // a throw reaches the others at the evaluation's exchange
    EpochCost cost;
    cost.epoch = epoch + 1;
    cost.seconds = seconds_since(epoch_started);
    cost.compute_seconds = seconds(compute_ns_.load(std::memory_order_relaxed) - compute0);
    cost.reduce_seconds = seconds(reduce_ns_.load(std::memory_order_relaxed) - reduce0);
    cost.wait_seconds =
        std::max(0.0, sync_->replica_seconds() - present0 - cost.compute_seconds - cost.reduce_seconds);
    const double busy = cost.compute_seconds + cost.reduce_seconds + cost.wait_seconds;
    cost.sync_share = busy > 0 ? (cost.reduce_seconds + cost.wait_seconds) / busy : kNaN;
    cost.peak_replicas = sync_->take_peak();
    cost.samples_per_second = cost.seconds > 0 ? static_cast<double>(seen) / cost.seconds : kNaN;
    out.peak_replicas = std::max(out.peak_replicas, cost.peak_replicas);

    // On the replicas too: the same bits as train::evaluate(*master_, ...).
    const auto val = evaluate(seat, data.val, data.val_idx);
    if (val.samples > 0 && !std::isfinite(val.loss))
      return finish(JobStatus::diverged,
                    "validation loss became " + std::to_string(val.loss) + " after epoch " + std::to_string(epoch + 1));
    train::EpochMetrics metrics;
    metrics.epoch = epoch + 1;
    metrics.train_loss = loss_sum / static_cast<double>(seen);
    metrics.val_loss = val.loss;
    metrics.val_top1 = val.top1;
    metrics.val_top5 = val.top5;
    metrics.lr = lr;
    metrics.seconds = seconds_since(epoch_started);
    result.history.push_back(metrics);
    out.costs.push_back(cost);
    result.val = val;
    result.train_loss = metrics.train_loss;
    result.epochs_completed = epoch + 1;
    guarded([&] {
      save_if_due(epoch + 1);
      if (callbacks.on_epoch) callbacks.on_epoch(metrics, cost);
    });
  }
  if (gang) {
    // The last failures kept (a final checkpoint, on_epoch) reach every member.
    gang_exchange(*gang, std::exchange(pending_failure_, std::string()), {}, gang_mine_, gang_all_);
  }
  return finish(JobStatus::done, "");
}

void DataParallelTrainer::help(const CoreLease& lease) {
  const StepSync::Seat seat(*sync_);
  if (!seat.seated()) return;  // max_replicas already at work
  one_intra_op_thread();
  // Until the lease is asked back, also once the training is over (the
  // runner then asks every lease back; a helper returning by itself would
  // be lent the same idle core again and again).
  while (!lease.should_return()) {
    if (auto mb = sync_->take(seat)) {
      compute_counted(seat.slot(), *mb);  // a throw gives the seat back (Seat) and fails the job
      continue;
    }
    sync_->wait_for_work(lease.return_token());  // woken by a deal, the lease's ask

  }
}

// --- jobs ------------------------------------------------------------------------

DataParallelResult fit_in_job(JobContext& ctx, models::ModelOptions shape, DataParallelOptions options,
                              const train::TrainData& data, DataParallelCallbacks callbacks) {
  options.max_replicas(std::max(1, ctx.max_cores()));
  // The helpers hold the trainer: it outlives this call until the runner
  // has taken every lent core back.
  auto trainer = std::make_shared<DataParallelTrainer>(shape, std::move(options));
  ctx.lend_cores_to([trainer](const CoreLease& lease) { trainer->help(lease); });
  auto user_stop = std::move(callbacks.should_stop);
  callbacks.should_stop = [&ctx, user_stop] { return ctx.stop_requested() || (user_stop && user_stop()); };
  auto user_epoch = std::move(callbacks.on_epoch);
  callbacks.on_epoch = [&ctx, user_epoch](const train::EpochMetrics& m, const EpochCost& c) {
    ctx.report({{"epoch", m.epoch},
                {"train_loss", number(m.train_loss)},
                {"val_top1", number(m.val_top1)},
                {"val_loss", number(m.val_loss)},
                {"seconds", m.seconds},
                {"replicas", c.peak_replicas},
                {"compute_s", c.compute_seconds},
                {"sync_s", c.reduce_seconds + c.wait_seconds},
                {"sync_share", number(c.sync_share)},
                {"samples_per_s", number(c.samples_per_second)}});
    if (user_epoch) user_epoch(m, c);
  };
  auto user_steps = std::move(callbacks.on_steps);
  callbacks.on_steps = [&ctx, user_steps](const std::vector<StepTiming>& steps) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& t : steps)
      rows.push_back({t.rank, t.step, t.compute_begin, t.compute_end, t.sync_begin, t.sync_end});
    ctx.report({{"step_timings", std::move(rows)}});
    if (user_steps) user_steps(steps);
  };
  return trainer->fit(data, callbacks);
}

Job make_data_parallel_job(std::shared_ptr<const data::DatasetSplit> data, DataParallelOptions options, int min_cores,
                           int max_cores) {
  if (!data) throw Error("make_data_parallel_job: no dataset");
  options.validate();
  if (min_cores < 1) throw Error("data-parallel: --cores must be at least 1, not " + std::to_string(min_cores));
  if (max_cores < min_cores)
    throw Error("data-parallel: --max-cores (" + std::to_string(max_cores) + ") is below --cores (" +
                std::to_string(min_cores) + ")");
  const models::ModelOptions shape{.channels = data->channels, .height = data->height, .width = data->width,
                                   .classes = data->classes, .width_multiplier = options.width_multiplier()};
  const double flops = models::estimate_flops(options.model(), shape);  // Error: unknown model, inputs it cannot take
  if (options.parallelism() == Parallelism::threads && options.warmup_epochs() > 0)
    throw Error("data-parallel: warm-up needs --parallelism replicas");
  const std::int64_t samples = options.limit() > 0 ? std::min(options.limit(), data->train.size()) : data->train.size();
  Job job;
  job.name = models::model_label(options.model()) + "/dataparallel";
  job.spec = options.spec();
  job.spec["sweep"] = "dataparallel";
  job.spec["data"] = data->name;
  job.cores = min_cores;
  job.max_cores = options.parallelism() == Parallelism::replicas ? max_cores : 0;
  job.cost = train::job_cost(flops, static_cast<double>(samples), static_cast<double>(data->test.size()),
                             options.train().epochs());
  job.run = [data = std::move(data), options, shape, samples](JobContext& ctx) {
    auto model_shape = shape;
    model_shape.seed = ctx.seed();
    auto train_options = options.train();
    train_options.seed(ctx.seed());
    auto train_data = train::TrainData::train_test(*data);
    train_data.train_idx = train_data.train_idx.slice(0, 0, samples);
    nlohmann::json metrics;
    JobOutcome outcome;
    if (options.parallelism() == Parallelism::threads) {
      if (options.lr_scaling() == LrScaling::linear)
        train_options.lr(train_options.effective_lr() * static_cast<double>(train_options.batch_size()) /
                         static_cast<double>(options.reference_batch()));
      train::Trainer trainer(models::make_model(options.model(), model_shape), train_options.threads(ctx.threads()));
      train::TrainCallbacks callbacks;
      callbacks.should_stop = [&ctx] { return ctx.stop_requested(); };
      const auto result = trainer.fit(train_data, callbacks);
      outcome = {.status = result.status, .metrics = result.metrics(), .message = result.message};
    } else {
      const auto result = fit_in_job(ctx, model_shape, DataParallelOptions(options).train(train_options), train_data);
      outcome = {.status = result.train.status, .metrics = result.metrics(), .message = result.train.message};
    }
    outcome.metrics["epochs"] = options.train().epochs();
    return outcome;
  };
  return job;
}

}  // namespace packtrain::dataparallel
