#include <packtrain/hogwild/hogwild.hpp>

#include <packtrain/data/seed.hpp>
#include <packtrain/models/models.hpp>
#include <packtrain/scheduler/at_scope_end.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/results.hpp>
#include <packtrain/scheduler/work_pool.hpp>
#include <packtrain/train/evaluate.hpp>
#include <packtrain/train/trainer.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>

namespace packtrain::hogwild {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Salts of the seeds derived from the job's seed (data::mix_seed).
constexpr std::uint64_t kOrderSalt = 1000;

void raise_to(std::atomic<int>& peak, int value) {
  int p = peak.load(std::memory_order_relaxed);
  while (value > p && !peak.compare_exchange_weak(p, value, std::memory_order_relaxed)) {
  }
}

// A work-pool slot, held for as long as this object lives: an exception
// cannot leave it taken (STYLE.md, "Ownership of a slot").
class PoolSlot {
 public:
  explicit PoolSlot(WorkPool& pool) : pool_(pool), slot_(pool.join()) {}
  ~PoolSlot() {
    if (slot_ >= 0) pool_.leave(slot_);  // what it was dealt and did not start stays for the others
  }
  PoolSlot(const PoolSlot&) = delete;
  PoolSlot& operator=(const PoolSlot&) = delete;
  int index() const { return slot_; }  // -1: every slot taken

 private:
  WorkPool& pool_;
  int slot_;
};


}  // namespace

// A worker's model: its parameters and buffers are views of the shared
// model's storage; their gradients are the worker's own.
struct HogwildTrainer::Replica {
  std::shared_ptr<models::Model> model;
  std::vector<at::Tensor> params;
};

std::shared_ptr<models::Model> make_replica(const std::string& name, const models::ModelOptions& shape,
                                            models::Model& shared) {
  auto replica = models::make_model(name, shape);
  std::vector<at::Tensor> mine = replica->parameters(), theirs = shared.parameters();
  for (auto& b : replica->buffers()) mine.push_back(b);
  for (auto& b : shared.buffers()) theirs.push_back(b);
  if (mine.size() != theirs.size()) throw Error("make_replica: model " + name + " does not match the shared model");
  for (std::size_t i = 0; i < mine.size(); ++i) {
    if (!mine[i].sizes().equals(theirs[i].sizes()))
      throw Error("make_replica: model " + name + " does not match the shared model");
    mine[i].set_data(theirs[i]);
  }
  replica->train();
  return replica;
}

nlohmann::json HogwildResult::metrics() const {
  const auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json per_epoch = nlohmann::json::array();
  std::int64_t not_once = 0;
  for (const auto& e : epochs) {
    per_epoch.push_back({{"epoch", e.epoch}, {"seconds", e.seconds}, {"minibatches", e.minibatches},
                         {"samples_per_s", number(e.seconds > 0 ? static_cast<double>(e.samples) / e.seconds : NAN)},
                         {"peak_workers", e.peak_workers}, {"train_loss", number(e.train_loss)},
                         {"test_top1", number(e.test_top1)}, {"test_loss", number(e.test_loss)}});
    not_once += e.not_once;
  }
  return {{"test_top1", number(test_top1)},
          {"test_loss", number(test_loss)},
          {"samples_per_s", number(samples_per_second)},
          {"peak_workers", peak_workers},
          {"epochs_completed", epochs.size()},
          {"minibatches_not_once", not_once},
          {"train_loss", epochs.empty() ? nlohmann::json(nullptr) : number(epochs.back().train_loss)},
          {"per_epoch", per_epoch}};
}

HogwildTrainer::HogwildTrainer(std::shared_ptr<const data::DatasetSplit> data, HogwildOptions options)
    : data_(std::move(data)), options_(std::move(options)) {
  if (!data_) throw Error("Hogwild needs a dataset");
  if (options_.epochs() < 1) throw Error("Hogwild: epochs must be at least 1");
  if (options_.batch_size() < 1) throw Error("Hogwild: the batch size must be at least 1");
  if (!(options_.lr() > 0)) throw Error("Hogwild: the learning rate must be above 0");
  if (!(options_.weight_decay() >= 0)) throw Error("Hogwild: weight decay must not be negative");
  if (options_.max_workers() < 1) throw Error("Hogwild: max_workers must be at least 1");
  if (options_.limit() < 0) throw Error("Hogwild: limit must not be negative");
  train_size_ = data_->train.size();
  if (options_.limit() > 0) train_size_ = std::min(train_size_, options_.limit());
  if (train_size_ == 0) throw Error("Hogwild: the training set is empty");
  batches_ = (train_size_ + options_.batch_size() - 1) / options_.batch_size();

  shape_ = {.channels = data_->channels, .height = data_->height, .width = data_->width, .classes = data_->classes,
            .seed = options_.seed()};
  shared_ = models::make_model(options_.model(), shape_);

  pool_ = std::make_unique<WorkPool>(options_.max_workers());
  replicas_.resize(static_cast<std::size_t>(options_.max_workers()));
  const auto epochs = static_cast<std::size_t>(options_.epochs()) + 1;  // index 0 unused
  order_.resize(epochs);
  for (std::size_t e = 0; e < epochs; ++e) {
    hits_.push_back(std::make_unique<std::atomic<int>[]>(static_cast<std::size_t>(batches_)));
    trained_.push_back(std::make_unique<std::atomic<std::int64_t>>(0));
    loss_sum_.push_back(std::make_unique<std::atomic<double>>(0.0));
  }
}

HogwildTrainer::~HogwildTrainer() = default;

HogwildTrainer::Replica& HogwildTrainer::replica(int slot) {
  // Only the slot's owner gets here, and a slot changes owner under the
  // pool's lock: no lock needed for the entry.
  auto& r = replicas_[static_cast<std::size_t>(slot)];
  if (!r) {
    r = std::make_unique<Replica>();
    r->model = make_replica(options_.model(), shape_, *shared_);
    r->params = r->model->parameters();
    // Layers that can step inside backward do (mlp's first layer): their
    // gradient is never written out, the shared weight read and written once.
    r->model->update_in_backward(models::Model::SgdInBackward{options_.lr(), options_.weight_decay()});
  }
  return *r;
}

void HogwildTrainer::train_minibatch(int slot, std::int64_t epoch, std::int64_t index) {
  auto& r = replica(slot);
  const auto e = static_cast<std::size_t>(epoch);
  const std::int64_t begin = index * options_.batch_size();
  const std::int64_t end = std::min(train_size_, begin + options_.batch_size());
  const auto idx = order_[e].slice(0, begin, end);
  const auto x = data_->train.images.index_select(0, idx);
  const auto y = data_->train.labels.index_select(0, idx);
  for (auto& p : r.params) p.mutable_grad().reset();
  const auto loss = torch::nn::functional::cross_entropy(r.model->forward(x), y);
  loss.backward();
  {
    // The lock-free update: other workers read and write these weights
    // meanwhile. (Weights stepped inside backward have no gradient here.)
    torch::NoGradGuard no_grad;
    const double lr = options_.lr(), decay = options_.weight_decay();
    for (auto& p : r.params) {
      auto& g = p.mutable_grad();
      if (!g.defined()) continue;
      if (decay > 0) g.add_(p, decay);
      p.add_(g, -lr);
    }
  }
  loss_sum_[e]->fetch_add(loss.item<double>(), std::memory_order_relaxed);
  hits_[e][static_cast<std::size_t>(index)].fetch_add(1, std::memory_order_relaxed);
}

void HogwildTrainer::train_counted(int slot, std::int64_t epoch, std::int64_t index) {
  // Counted however it ends, so the epoch's end never waits for it; after a
  // throw, counted once the failure is recorded (the handler runs first), so
  // whoever sees the count also sees the failure.
  const AtScopeEnd count([&] { minibatch_done(epoch); });
  try {
    train_minibatch(slot, epoch, index);
  } catch (const std::exception& e) {
    fail(e.what());
    throw;
  } catch (...) {
    fail("unknown exception");
    throw;
  }
}

void HogwildTrainer::minibatch_done(std::int64_t epoch) {
  // release: the epoch's end (acquire) sees this minibatch's counts.
  if (trained_[static_cast<std::size_t>(epoch)]->fetch_add(1, std::memory_order_release) + 1 < batches_) return;
  wake(epoch_done_);
}

void HogwildTrainer::wake(std::condition_variable& waiters) {
  // Under the mutex the waiters check their predicates under: a waiter is
  // either before its check (and sees the change) or asleep (and is woken).
  std::lock_guard lock(wake_mutex_);
  waiters.notify_all();
}

void HogwildTrainer::fail(const std::string& message) {
  std::lock_guard lock(wake_mutex_);
  if (failure_.empty()) failure_ = message.substr(0, message.find('\n'));
  failed_.store(true, std::memory_order_release);
  epoch_done_.notify_all();
  next_round_.notify_all();
}

void HogwildTrainer::throw_failure() {
  std::lock_guard lock(wake_mutex_);
  throw Error("a Hogwild worker failed: " + failure_);
}

void HogwildTrainer::enter() {
  raise_to(peak_workers_, workers_.fetch_add(1, std::memory_order_acq_rel) + 1);
}

void HogwildTrainer::leave() { workers_.fetch_sub(1, std::memory_order_acq_rel); }

HogwildResult HogwildTrainer::run(const JobContext* ctx) {
  at::set_num_threads(1);  // one intra-op thread per worker: the workers are the parallelism
  const PoolSlot slot(*pool_);
  PACKTRAIN_CHECK(slot.index() >= 0, "Hogwild: no work pool slot for the run's own thread");
  enter();
  // However run ends (an exception too): the helpers stop, this worker leaves.
  const AtScopeEnd end([this] {
    {
      std::lock_guard lock(wake_mutex_);
      finished_.store(true, std::memory_order_release);
      next_round_.notify_all();
    }
    leave();
  });
  HogwildResult result;
  double train_seconds = 0;
  std::int64_t samples = 0;
  const auto stop = [ctx] { return ctx && ctx->stop_requested(); };
  // Ctrl-C wakes the epoch's hand-over below (a default token never asks).
  const std::stop_callback wake_on_stop(ctx ? ctx->stop_token() : std::stop_token(), [this] { wake(epoch_done_); });
  const auto failed = [this] { return failed_.load(std::memory_order_acquire); };
  for (int epoch = 1; epoch <= options_.epochs(); ++epoch) {
    if (stop()) {
      result.status = JobStatus::cancelled;
      break;
    }
    const auto e = static_cast<std::size_t>(epoch);
    auto generator = at::make_generator<at::CPUGeneratorImpl>(data::mix_seed(options_.seed(), kOrderSalt + e));
    order_[e] = torch::randperm(train_size_, generator, torch::kInt64);
    peak_workers_.store(workers(), std::memory_order_relaxed);
    const auto start = Clock::now();
    // The deal publishes order_[e] to whoever takes the round's items.
    pool_->deal(batches_);
    wake(next_round_);
    while (!stop() && !failed()) {
      const auto item = pool_->take(slot.index());
      if (!item) break;
      train_counted(slot.index(), item->round, item->index);
    }
    // The others finish the minibatches they hold; a helper that throws
    // counts its minibatch and says so; Ctrl-C wakes this wait too.
    {
      std::unique_lock lock(wake_mutex_);
      // acquire: pairs with minibatch_done's release; their counts are visible.
      epoch_done_.wait(lock, [&] {
        return trained_[e]->load(std::memory_order_acquire) >= batches_ || failed() || stop();
      });
    }
    if (failed()) throw_failure();
    if (stop()) {
      result.status = JobStatus::cancelled;
      break;
    }
    EpochRecord record;
    record.epoch = epoch;
    record.seconds = seconds_since(start);
    record.samples = train_size_;
    record.minibatches = trained_[e]->load(std::memory_order_acquire);
    for (std::int64_t b = 0; b < batches_; ++b)
      if (hits_[e][static_cast<std::size_t>(b)].load(std::memory_order_relaxed) != 1) ++record.not_once;
    record.peak_workers = peak_workers_.load(std::memory_order_relaxed);
    record.train_loss = loss_sum_[e]->load(std::memory_order_relaxed) / static_cast<double>(batches_);
    train_seconds += record.seconds;
    samples += record.samples;
    result.peak_workers = std::max(result.peak_workers, record.peak_workers);
    if (!std::isfinite(record.train_loss)) {
      result.epochs.push_back(record);
      result.status = JobStatus::diverged;
      break;
    }
    // Evaluated while the helpers wait for the next epoch.
    const auto m = train::evaluate(*shared_, data_->test, data::all_indices(data_->test));
    record.test_top1 = m.top1;
    record.test_loss = m.loss;
    result.epochs.push_back(record);
    if (ctx)
      ctx->report({{"epoch", epoch}, {"test_top1", m.top1}, {"test_loss", m.loss}, {"train_loss", record.train_loss},
                   {"workers", record.peak_workers}, {"samples_per_s", record.samples / record.seconds},
                   {"seconds", record.seconds}});
  }
  if (!result.epochs.empty()) {
    result.test_top1 = result.epochs.back().test_top1;
    result.test_loss = result.epochs.back().test_loss;
  }
  result.samples_per_second = train_seconds > 0 ? static_cast<double>(samples) / train_seconds : 0;
  result.model = shared_;
  return result;
}

void HogwildTrainer::help(const CoreLease& lease) {
  const auto over = [this] {
    return finished_.load(std::memory_order_acquire) || failed_.load(std::memory_order_acquire);
  };
  const PoolSlot slot(*pool_);
  if (slot.index() < 0) return;  // max_workers already at work
  at::set_num_threads(1);
  enter();
  const AtScopeEnd left([this] { leave(); });
  // The ask wakes the wait below; it runs on the asking thread (the runner's).
  const std::stop_callback wake_on_ask(lease.return_token(), [this] { wake(next_round_); });
  // Until the lease is asked back, also once the training is over: the job
  // is then ending and its runner asks every lease back at once, while a
  // helper that returned by itself would be lent the same idle core again
  // and again until then.
  while (!lease.should_return()) {
    const std::int64_t dealt = pool_->dealt();  // before take: a deal after it is not missed
    if (!over()) {
      if (auto item = pool_->take(slot.index())) {
        train_counted(slot.index(), item->round, item->index);  // a throw leaves the slot (PoolSlot) and fails the job
        continue;
      }
    }
    // Between epochs or after the end: sleep until the next deal or the ask.
    std::unique_lock lock(wake_mutex_);
    next_round_.wait(lock, [&] { return lease.should_return() || (!over() && pool_->dealt() != dealt); });
  }
}

Job make_hogwild_job(std::shared_ptr<const data::DatasetSplit> data, HogwildOptions options, int min_cores,
                     int max_cores) {
  if (!data) throw Error("make_hogwild_job: no dataset");
  if (min_cores < 1) throw Error("Hogwild: --min-threads must be at least 1");
  if (max_cores < min_cores)
    throw Error("Hogwild: --threads (" + std::to_string(max_cores) + ") is below --min-threads (" +
                std::to_string(min_cores) + ")");
  // Fail here, not inside the job, on a bad model or options.
  HogwildTrainer check(data, HogwildOptions(options).max_workers(1));
  const std::int64_t train_size =
      options.limit() > 0 ? std::min(options.limit(), data->train.size()) : data->train.size();
  Job job;
  job.name = models::model_label(options.model()) + "/hogwild";
  job.spec = {{"sweep", "hogwild"},       {"data", data->name},
              {"epochs", options.epochs()},
              {"batch_size", options.batch_size()}, {"lr", options.lr()},
              {"weight_decay", options.weight_decay()}, {"limit", options.limit()},
              {"seed", options.seed()}};
  job.spec.update(models::model_spec(options.model()));  // its label, and a file's hash
  job.cores = min_cores;
  job.max_cores = max_cores;
  job.cost = train::job_cost(check.model()->flops(), static_cast<double>(train_size),
                             static_cast<double>(data->test.size()), options.epochs());  // evaluated each epoch
  job.run = [data = std::move(data), options](JobContext& ctx) {
    auto trainer = std::make_shared<HogwildTrainer>(
        data, HogwildOptions(options).seed(ctx.seed()).max_workers(ctx.max_cores()));
    // The helpers hold the trainer: it outlives this function until the
    // runner has taken every lent core back.
    ctx.lend_cores_to([trainer](const CoreLease& lease) { trainer->help(lease); });
    const auto result = trainer->run(&ctx);
    return JobOutcome{.status = result.status, .metrics = result.metrics()};
  };
  return job;
}

const std::vector<std::string>& result_columns() {
  static const std::vector<std::string> columns = {"job",      "status",        "model",     "epochs",
                                                   "test_top1", "test_loss",    "samples_per_s", "peak_workers",
                                                   "seconds",  "cores",         "rank"};
  return columns;
}

}  // namespace packtrain::hogwild
