#pragma once
// Hogwild: one job whose worker threads run SGD on one shared set of
// parameters without locks (Niu, Recht, Re, Wright, "HOGWILD!", NIPS 2011).
//
// Every worker has a replica of the model whose parameters and buffers are
// the shared tensors' storage (set_data), so it reads the weights the others
// write, while its gradients are its own. It computes a minibatch's gradient
// and adds -lr x gradient into the shared storage with no lock: the racy
// update is the algorithm (sparse-enough updates mostly touch different
// weights; dense ones still converge, as the tests show).
//
// An epoch's minibatches are a round of a WorkPool (scheduler/work_pool.hpp):
// each worker starts on its own share and steals from the others' when it
// runs dry, so a worker slowed by a busy core does not hold up the epoch.
// Workers join and leave mid-epoch: the job's own thread is one, and the
// runner lends it more cores while they would be idle (Job::max_cores,
// JobContext::lend_cores_to), each running HogwildTrainer::help until the
// core is wanted back. Nothing is lost or repeated when they come and go:
// each epoch's record counts how often every minibatch was trained on.
//
//   auto job = packtrain::hogwild::make_hogwild_job(data, HogwildOptions().model("mlp").epochs(5),
//                                                   /*min_cores=*/1, /*max_cores=*/16);
//   runner.add(job);
#include <packtrain/data/dataset.hpp>
#include <packtrain/models/models.hpp>
#include <packtrain/scheduler/job.hpp>

#include <torch/arg.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace packtrain {
class WorkPool;
}

namespace packtrain::hogwild {

struct HogwildOptions {
  TORCH_ARG(std::string, model) = "mlp";
  TORCH_ARG(int, epochs) = 5;
  TORCH_ARG(std::int64_t, batch_size) = 64;
  // Plain SGD: with no lock there is no shared momentum to keep consistent.
  TORCH_ARG(double, lr) = 0.05;
  TORCH_ARG(double, weight_decay) = 0.0;
  // Initial weights and every epoch's minibatch order.
  TORCH_ARG(std::uint64_t, seed) = 1;
  // Train on the first N training samples only (0: all).
  TORCH_ARG(std::int64_t, limit) = 0;
  // The most workers at once: slots of the work pool, replicas of the model.
  TORCH_ARG(int, max_workers) = 1;
};

struct EpochRecord {
  int epoch = 0;                 // 1-based
  double seconds = 0;            // training only, not the evaluation after it
  std::int64_t samples = 0;
  std::int64_t minibatches = 0;  // trained on this epoch
  std::int64_t not_once = 0;     // minibatches of the epoch trained on 0 or 2+ times (0 when correct)
  int peak_workers = 0;          // workers at once during the epoch
  double train_loss = 0;         // mean over the epoch's minibatches
  double test_top1 = 0, test_loss = 0;
};

struct HogwildResult {
  JobStatus status = JobStatus::done;  // done, diverged or cancelled
  std::vector<EpochRecord> epochs;
  double test_top1 = 0, test_loss = 0;
  double samples_per_second = 0;       // over the training time of every epoch
  int peak_workers = 0;
  std::shared_ptr<models::Model> model;
  nlohmann::json metrics() const;
};

class HogwildTrainer {
 public:
  // Throws packtrain::Error for an unknown model, bad limits or an empty training set.
  HogwildTrainer(std::shared_ptr<const data::DatasetSplit> data, HogwildOptions options);
  ~HogwildTrainer();
  HogwildTrainer(const HogwildTrainer&) = delete;
  HogwildTrainer& operator=(const HogwildTrainer&) = delete;

  // Trains on the calling thread (one worker), with every thread that calls
  // help() meanwhile; returns after the last epoch's evaluation. `ctx` (may
  // be null) gives the stop request (heard between minibatches, and while
  // waiting for the helpers' last minibatches of an epoch through
  // ctx->stop_token()) and receives each epoch's report.
  // Throws packtrain::Error naming the first failure of a helper's minibatch.
  HogwildResult run(const JobContext* ctx = nullptr);

  // One more worker, on the calling thread: trains minibatches until
  // lease.should_return() (after the training ends too: it sleeps until
  // the next epoch or the ask, which wakes it through lease.return_token()).
  // Any number of threads at once; those beyond max_workers return at once. If a minibatch throws,
  // the minibatch is counted, the worker's slot is given back, run() throws
  // packtrain::Error with the message (the job fails) and help rethrows.
  void help(const CoreLease& lease);

  // Workers training now (the run's own thread included).
  int workers() const { return workers_.load(std::memory_order_acquire); }
  // The shared model (its weights change while the training runs).
  std::shared_ptr<models::Model> model() const { return shared_; }

 private:
  struct Replica;
  Replica& replica(int slot);   // the slot's owner only
  void train_minibatch(int slot, std::int64_t epoch, std::int64_t index);
  // train_minibatch, counted even when it throws.
  void train_counted(int slot, std::int64_t epoch, std::int64_t index);
  void minibatch_done(std::int64_t epoch);
  void fail(const std::string& message);
  void wake(std::condition_variable& waiters);  // notifies under wake_mutex_
  [[noreturn]] void throw_failure();
  void enter();
  void leave();

  std::shared_ptr<const data::DatasetSplit> data_;
  HogwildOptions options_;
  models::ModelOptions shape_;
  std::int64_t train_size_ = 0;
  std::int64_t batches_ = 0;
  std::shared_ptr<models::Model> shared_;
  std::unique_ptr<WorkPool> pool_;
  std::vector<std::unique_ptr<Replica>> replicas_;  // one per slot, made by its first owner

  // Per epoch (index = epoch): the order of samples, written before the
  // epoch's round is dealt (the pool's deal publishes it), and the counts.
  std::vector<at::Tensor> order_;
  std::vector<std::unique_ptr<std::atomic<int>[]>> hits_;
  std::vector<std::unique_ptr<std::atomic<std::int64_t>>> trained_;  // minibatches done, per epoch
  std::vector<std::unique_ptr<std::atomic<double>>> loss_sum_;

  std::atomic<int> workers_{0};
  std::atomic<int> peak_workers_{0};
  std::atomic<bool> finished_{false};
  std::atomic<bool> failed_{false};             // a minibatch threw: the run fails
  std::mutex wake_mutex_;
  std::string failure_;                         // the first failure's message (guarded by wake_mutex_)
  // One condition per kind of waiter (STYLE.md, "Waiting"):
  std::condition_variable next_round_;          // helpers: a new epoch, the end or a failure
  std::condition_variable epoch_done_;          // the run's thread: the epoch's last minibatch or a failure
};

// A new model `name` of `shape` whose parameters and buffers are `shared`'s
// storage: a write through either is seen by both, while each keeps its own
// gradients (and autograd version counters). Throws Error when the models differ.
std::shared_ptr<models::Model> make_replica(const std::string& name, const models::ModelOptions& shape,
                                            models::Model& shared);

// A job training `data` with Hogwild: min_cores to start, up to max_cores
// while the node has idle cores. Its metrics: test_top1, test_loss,
// samples_per_s, peak_workers, epochs (one record each).
Job make_hogwild_job(std::shared_ptr<const data::DatasetSplit> data, HogwildOptions options, int min_cores,
                     int max_cores);

// The results.csv columns of a Hogwild run.
const std::vector<std::string>& result_columns();

}  // namespace packtrain::hogwild
