#pragma once
// Data-parallel training of one model on a job's cores (DESIGN.md decision
// 10): k cores run k synchronous replicas, one pinned thread and one
// intra-op thread each, and the trained bits do not depend on k.
//
// A step's global batch (TrainOptions::batch_size, the meaning it has for a
// one-core run) is cut into fixed micro-batches of `micro_batch` samples;
// the replicas take them through a work pool (step_sync.hpp), each computes
// one micro-batch's gradient into that micro-batch's buffer, with the loss
// scaled by (its samples / the step's samples) so the buffers add up to the
// gradient of the global batch's mean loss; a pairwise tree over the
// micro-batch indices sums them (reduction_tree.hpp), and one optimizer step
// updates the master weights, which every replica reads (its parameters
// share their storage). Hence:
//
// - The same bits. Final weights, losses and metrics are bitwise identical
//   for 1, 2, 3... replicas and whichever replica took which micro-batch:
//   a micro-batch's gradient is computed by one thread from the same inputs,
//   and the sum's order is the tree's. The micro-batch (not the core count)
//   is the unit of the arithmetic, so its default is fixed (kDefaultMicroBatch).
// - BatchNorm normalizes with each micro-batch's own statistics (as DDP does
//   without SyncBN). Running statistics: every micro-batch starts from the
//   master's and updates its replica's copy; the updated copies are summed
//   by the same tree and divided by the micro-batch count.
// - Randomness: the data order comes from (seed, epoch) and augmentation
//   from (seed, epoch, micro-batch number in the epoch): data::BatchLoader
//   with micro-batches for batches, so never from a replica or thread.
//   Models that draw from LibTorch's global generator (dropout) are refused.
// - Elastic: the job's own thread is a replica; cores lent by the runner
//   (Job::max_cores, JobContext::lend_cores_to) each run help(), one more
//   replica, until their lease is asked back, mid-step too: the replica
//   finishes the micro-batch in its hands and the ones dealt to it and not
//   started are taken by the others. Not a bit of the result changes.
// - Cost of synchronization, per epoch: replica-seconds spent computing
//   (forward and backward), reducing (tree sums, the optimizer step) and
//   waiting, and the share of the latter two (EpochCost).
//
// Large batches (Goyal et al., "Accurate, Large Minibatch SGD: Training
// ImageNet in 1 Hour", 2017), both off by default:
// - lr_scaling linear: the base learning rate x batch_size / reference_batch
//   (64: the batch the zoo's default rates were tuned for, TrainOptions'
//   default batch). The schedule (cosine, ...) then runs from that rate.
// - warmup_epochs W: for the first W epochs' steps s (of T = W x steps per
//   epoch) the scheduled rate is multiplied by r + (1 - r) s / T, with
//   r = min(1, reference_batch / batch_size): the rate grows linearly from
//   the one a reference batch would use (lr / k for a batch k times the
//   reference) to the scaled one, as in Goyal et al.; nothing to warm up
//   for a batch no larger than the reference.
//
//   // Inside any Job::run (kfold, lth, train): the job's cores become replicas.
//   auto result = packtrain::dataparallel::fit_in_job(ctx, shape, DataParallelOptions().model("lenet5")
//                     .train(TrainOptions().epochs(5).batch_size(256).seed(ctx.seed()))
//                     .lr_scaling(LrScaling::linear).warmup_epochs(1), train_data);
//   // Or a whole job, beside hogwild::make_hogwild_job:
//   runner.add(packtrain::dataparallel::make_data_parallel_job(data, options, /*min_cores=*/2, /*max_cores=*/8));
#include <packtrain/data/dataset.hpp>
#include <packtrain/dataparallel/gang.hpp>
#include <packtrain/dataparallel/step_sync.hpp>
#include <packtrain/models/models.hpp>
#include <packtrain/scheduler/job.hpp>
#include <packtrain/train/evaluate.hpp>
#include <packtrain/train/options.hpp>
#include <packtrain/train/trainer.hpp>

#include <nlohmann/json.hpp>
#include <torch/arg.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace packtrain::data {
class BatchLoader;
}

namespace packtrain::dataparallel {

struct MicroBatch;

// Samples per micro-batch unless asked: the default batch (64) splits into
// two, so two cores help at the default batch, and a 32-sample micro-batch
// still keeps a core's GEMMs efficient (bench/dataparallel measures it).
inline constexpr std::int64_t kDefaultMicroBatch = 32;
// The batch whose learning rate the base rate is (TrainOptions' default batch).
inline constexpr std::int64_t kReferenceBatch = 64;
// A gang's gradient buckets (DDP's defaults): the first holds up to 1 MiB
// (or the cap, if smaller), the others up to the cap.
inline constexpr double kDefaultBucketCapMb = 25.0;
inline constexpr double kFirstBucketCapMb = 1.0;

enum class LrScaling { none, linear };
// replicas: this file. threads: a plain train::Trainer on the job's cores as
// intra-op threads (what a job with several cores did before; its bits
// depend on the thread count and micro_batch does not apply).
enum class Parallelism { replicas, threads };

LrScaling lr_scaling_from_string(std::string_view name);      // "none" | "linear", else Error
Parallelism parallelism_from_string(std::string_view name);  // "replicas" | "threads", else Error
std::string_view to_string(LrScaling scaling);
std::string_view to_string(Parallelism parallelism);
// The measured better choice for `model` on a multi-core job (bench_dataparallel
// on 2 cores): threads for mlp, replicas for the others.
Parallelism default_parallelism(const std::string& model);

// Replicas train `model` (theirs would be the only numbers that depend on
// which replica draws): throws packtrain::Error when its forward draws
// random numbers (dropout) from LibTorch's global generator.
void check_replicable(const std::string& model, const models::ModelOptions& shape);

// A sweep's jobs on several cores (kfold, lth: --cores-per-job,
// --max-cores-per-job, --micro-batch): throws packtrain::Error naming the
// first bad value (max_cores_per_job 0 means cores_per_job).
void check_sweep_cores(int cores_per_job, int max_cores_per_job, std::int64_t micro_batch, std::int64_t batch_size);

// FNV-1a over a model's parameters, then its floating buffers (BatchNorm
// statistics): what a gang's members check they all start from.
std::uint64_t weights_hash(torch::nn::Module& model);

struct DataParallelOptions {
  // What one core would do: epochs, the global batch, optimizer, lr,
  // schedule, seed (data order and augmentation), checkpoints, resume,
  // loss. `threads` and `prefetch` are ignored (one intra-op thread per replica).
  TORCH_ARG(train::TrainOptions, train) = {};
  // Model name (models::make_model). The trainer takes its shape, seed and
  // width from its ModelOptions; make_data_parallel_job builds them from the
  // data, the job's seed and width_multiplier.
  TORCH_ARG(std::string, model) = "mlp";
  TORCH_ARG(double, width_multiplier) = 1.0;
  // make_data_parallel_job: train on the first N training samples (0: all).
  TORCH_ARG(std::int64_t, limit) = 0;
  // Must divide the batch size.
  TORCH_ARG(std::int64_t, micro_batch) = kDefaultMicroBatch;
  // The most replicas at once (the job's max_cores; fit_in_job sets it).
  TORCH_ARG(int, max_replicas) = 1;
  TORCH_ARG(LrScaling, lr_scaling) = LrScaling::none;
  TORCH_ARG(std::int64_t, reference_batch) = kReferenceBatch;
  TORCH_ARG(int, warmup_epochs) = 0;
  // make_data_parallel_job only.
  TORCH_ARG(Parallelism, parallelism) = Parallelism::replicas;
  // Several processes train the job together (gang.hpp); none: this one alone.
  TORCH_ARG(std::shared_ptr<Gang>, gang) = nullptr;
  // A gang's gradients go to the others in buckets of parameters, in
  // reverse order (the last layer's first: backward finishes it first), of
  // up to this many MiB (the first up to kFirstBucketCapMb). With `overlap`
  // a bucket's exchange starts as soon as its gradients are final, while
  // backward goes on with the layers before it (where the member computes
  // the step's last micro-batch after the others are summed: always, with
  // one core a member); without, once the member's micro-batches are summed.
  // Neither changes a bit of the result.
  TORCH_ARG(double, bucket_cap_mb) = kDefaultBucketCapMb;
  TORCH_ARG(bool, overlap) = true;

 public:
  // Throws packtrain::Error naming the first bad option (train's too).
  void validate() const;
  // The learning rate at optimizer step `step` (0-based) of `total_steps`,
  // `steps_per_epoch` a full epoch: scaling, schedule and warm-up (above).
  double lr_at(std::int64_t step, std::int64_t steps_per_epoch, std::int64_t total_steps) const;
  // What a job's spec records of these options (identity: never the cores).
  nlohmann::json spec() const;
};

// The cost of an epoch's synchronization, in replica-seconds (one replica
// busy for a second is 1): replicas x wall time = compute + reduce + wait.
struct EpochCost {
  int epoch = 0;
  double seconds = 0;          // wall time of the epoch's training (not its evaluation)
  double compute_seconds = 0;  // forward and backward of micro-batches
  double reduce_seconds = 0;   // tree sums, the optimizer step, BatchNorm statistics
  double wait_seconds = 0;     // a replica with nothing to take
  double sync_share = 0;       // (reduce + wait) / (compute + reduce + wait)
  int peak_replicas = 0;
  double samples_per_second = 0;
};

// One gang member's part of one optimizer step, for the trace's compute
// and allreduce tracks (Horovod's timeline). Unix seconds on the clock of
// the member that records it: each member sends its times as offsets from
// the end of the previous exchange, which ends on every member at about the
// same moment, so they are drawn on the recorder's clock from that anchor.
struct StepTiming {
  int rank = 0;            // the member (gang rank)
  std::int64_t step = 0;   // optimizer steps of the run, from 1
  double compute_begin = 0, compute_end = 0;  // its micro-batches and its in-node sum
  double sync_begin = 0, sync_end = 0;        // the exchange, waiting for the slowest member too, and the sum over members
};
// A fit records the first this many (member, step) timings; a longer run's
// later steps are not drawn (about 12 MB of trace.json).
constexpr std::size_t kMaxStepTimings = 100000;

struct DataParallelResult {
  train::TrainResult train;     // status, history, val metrics: as a one-core run's
  std::vector<EpochCost> costs;  // one per epoch trained
  int peak_replicas = 0;
  // train.metrics() (val_top1, ...: the train::result_columns()) and
  // compute_seconds, reduce_seconds, wait_seconds, sync_share, peak_replicas,
  // samples_per_s, micro_batch, and per_epoch (one object per epoch).
  nlohmann::json metrics() const;
};

struct DataParallelCallbacks {
  // On the leader after each epoch's validation: what train::Trainer reports, and the cost.
  std::function<void(const train::EpochMetrics&, const EpochCost&)> on_epoch;
  // Checked before every step; true ends the run as `cancelled`.
  std::function<bool()> should_stop;
  // Once, on the leader, after a resume's checkpoint was loaded and before
  // anything is saved or trained: the master model and its optimizer (load
  // other weights, attach a pruning mask: lth/).
  std::function<void(models::Model& master, torch::optim::Optimizer& optimizer)> before_fit;
  // After every optimizer step, on the master model (e.g. pruning masks).
  std::function<void(torch::nn::Module&)> after_step;
  // On the replica's thread before it computes a micro-batch (traces, tests).
  // `replica` is the replica's slot (0..max_replicas - 1), `step` counts from 1.
  std::function<void(std::int64_t step, int micro_batch, int replica)> on_micro_batch;
  // A gang's step timings, every member's, on every member: after each
  // epoch's steps and before its on_epoch, and when a stop or a divergence
  // ends the fit mid-epoch. Not called without a gang.
  std::function<void(const std::vector<StepTiming>&)> on_steps;
};

class DataParallelTrainer {
 public:
  // The master model is make_model(options.model(), shape). Throws
  // packtrain::Error for bad options, an unknown model or one with dropout.
  DataParallelTrainer(models::ModelOptions shape, DataParallelOptions options);
  ~DataParallelTrainer();
  DataParallelTrainer(const DataParallelTrainer&) = delete;
  DataParallelTrainer& operator=(const DataParallelTrainer&) = delete;

  // Trains on the calling thread (a replica, the leader) with every thread
  // in help() meanwhile; returns after the last epoch. Throws
  // packtrain::Error for data the model cannot take, or naming the first
  // failure of a replica (every helper then stops taking work). Once.
  DataParallelResult fit(const train::TrainData& data, const DataParallelCallbacks& callbacks = {});

  // One more replica on the calling thread: computes micro-batches until
  // lease.should_return() (also after the training ends: the runner asks
  // every lease back then). Threads beyond max_replicas return at once. If a
  // micro-batch throws, the job fails: fit() throws with the message and
  // help rethrows; its work-pool seat is given back either way.
  void help(const CoreLease& lease);

  // Replicas computing now (the leader included).
  int replicas() const;
  // The master model (its weights change while fit() runs).
  std::shared_ptr<models::Model> model() const { return master_; }
  const DataParallelOptions& options() const { return options_; }

 private:
  struct Replica;
  struct Buffer;
  struct Bucket;
  Replica& replica(int slot);
  void compute(int slot, const MicroBatch& mb);
  void compute_counted(int slot, const MicroBatch& mb);
  void combine(int left, int right);
  void apply_step(const StepSync::Seat& seat, int micro_batches);
  void gather_optimizer_state();
  void scatter_optimizer_state();
  void save_if_due(int epoch);
  void run_round(const StepSync::Seat& seat, int items);
  // A gang's step of `micro_batches`: this member's share of them (computed
  // already, summed in buffers_[0], some buckets on their way) and its
  // losses, exchanged: the buckets not started yet are, every bucket's sums
  // are added over the members, then a header carries the losses, the
  // BatchNorm statistics and the timeline. Afterwards buffers_[0] holds
  // every member's sum, added in the tree's order, and `losses` every
  // micro-batch's loss x samples in index order. A member's failure
  // (`failure`, empty if none) or wish to stop reaches every member: returns
  // true if any member asked to stop; throws naming a member that failed.
  bool exchange_step(std::int64_t local_micro_batches, std::int64_t micro_batches, const std::string& failure,
                     bool stop, std::vector<double>& losses);
  // A gang's buckets (DataParallelOptions::bucket_cap_mb): arm them before
  // a step's round of `local_micro_batches`; a parameter's gradient of the
  // overlapping micro-batch is final (autograd's hook); complete a bucket
  // (its in-node sum, when a micro-batch overlapped) and start its exchange,
  // in bucket order.
  void arm_buckets(std::int64_t local_micro_batches);
  void gradient_final(Replica& r, std::size_t param);
  void post_bucket(std::size_t b, bool has_sum);
  // At the start of a gang's fit: no member failed to set up (`failure`),
  // every member holds the same weights; returns true if any member asked
  // to stop (`stop`). Throws, on every member alike, otherwise.
  bool check_same_start(const std::string& failure, bool stop);
  // A gang's members must make the same exchanges: what throws between two
  // of them on one member (a checkpoint that cannot be written, a callback)
  // is kept here and sent with the next exchange, which then fails the job
  // on every member. Without a gang it throws at once.
  template <typename Body>
  void guarded(Body&& body);
  std::string pending_failure_;
  train::EvalMetrics evaluate(const StepSync::Seat& seat, const data::Dataset& part, const at::Tensor& indices);

  models::ModelOptions shape_;
  DataParallelOptions options_;
  std::shared_ptr<models::Model> master_;
  std::vector<at::Tensor> master_params_;
  std::vector<at::Tensor> master_stats_;   // floating buffers (BatchNorm running statistics)
  std::vector<at::Tensor> master_counts_;  // integer buffers (num_batches_tracked)
  // The optimizer over every master parameter: what checkpoints save and
  // load, and what before_fit is given. With several replicas the step runs
  // on shards_ instead, one optimizer per share of the parameters, stepped
  // by the replicas at once (an optimizer updates each parameter from its
  // own gradient and state only: the same bits whoever steps which share);
  // their per-parameter state is gathered into optimizer_ (the same
  // tensors) after every step that has an after_step callback and before a
  // checkpoint, and scattered back after a resume's load.
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<std::unique_ptr<torch::optim::Optimizer>> shards_;
  std::unique_ptr<StepSync> sync_;
  std::vector<std::unique_ptr<Replica>> replicas_;  // per seat, made by its first owner
  std::vector<std::unique_ptr<Buffer>> buffers_;    // per micro-batch index of a step
  std::vector<std::unique_ptr<Bucket>> buckets_;    // a gang's, in the order they are exchanged
  std::vector<std::size_t> bucket_of_;              // per parameter
  bool can_overlap_ = false;                        // a gang, overlap on, no tied parameters
  // The step's round: micro-batches this member computes, those finished
  // (their tree sums done: the round's StepSync number << kRoundShift, plus
  // the count, so that a late count of an earlier round is never taken for
  // this one's), the one computed last whose backward overlaps the exchange
  // (-1: none), buckets started, when the first started.
  static constexpr int kRoundShift = 24;
  int round_items_ = 0;
  std::atomic<std::int64_t> finished_in_round_{0};
  void count_finished(std::int64_t round);
  std::atomic<int> overlap_leaf_{-1};
  std::size_t next_bucket_ = 0;
  std::chrono::steady_clock::time_point first_post_;

  // The round being computed: written by the leader before its deal (which
  // publishes them), read by the replicas that take its items. A round is a
  // training step's micro-batches, up to max-micro-batches evaluation
  // batches (the evaluation is spread over the replicas too), or the step's
  // optimizer shards.
  enum class Phase { train, evaluate, optimize };
  Phase phase_ = Phase::train;
  std::unique_ptr<data::BatchLoader> loader_;
  std::int64_t step_ = 0;          // optimizer steps so far, this one included (on_micro_batch)
  std::int64_t first_batch_ = 0;   // the loader's batch number of micro-batch 0
  std::int64_t step_samples_ = 0;  // samples in the step
  const data::Dataset* eval_part_ = nullptr;
  at::Tensor eval_indices_;
  std::int64_t eval_first_ = 0;            // the evaluation batch of item 0
  std::vector<train::EvalSums> eval_sums_;  // per evaluation batch, added up in order by the leader
  std::vector<char> gang_mine_, gang_all_;  // a gang's exchanges (exchange_step, evaluate)
  std::vector<double> gang_losses_;         // a gang's step: loss, samples per micro-batch
  // A gang's timeline (StepTiming): the end of the last exchange, this
  // step's compute on this member, the timings not yet given to on_steps.
  std::chrono::steady_clock::time_point gang_anchor_, compute_begin_, compute_end_;
  std::vector<StepTiming> step_timings_;
  std::size_t step_timings_kept_ = 0;
  void flush_step_timings();
  DataParallelCallbacks callbacks_;

  std::atomic<std::int64_t> compute_ns_{0};
  std::atomic<std::int64_t> reduce_ns_{0};
};

// Trains inside a running job: the job's cores (and, for an elastic job,
// lent ones) become replicas; `options.max_replicas` is set from
// ctx.max_cores(), and `shape.seed` is used as given. The trainer outlives
// this call until the runner has taken every lent core back. Reports each
// epoch through ctx.report (epoch, train_loss, val_top1, val_loss,
// seconds, replicas, compute_s, sync_s, sync_share), and a gang's step
// timings as a progress report {"step_timings": [[rank, step,
// compute_begin, compute_end, sync_begin, sync_end], ...]} (the dashboard
// draws them), and stops on ctx's stop request.
DataParallelResult fit_in_job(JobContext& ctx, models::ModelOptions shape, DataParallelOptions options,
                              const train::TrainData& data, DataParallelCallbacks callbacks = {});

// A job training options.model() on `data` (its train part, the first
// limit() samples; validated on its test part): min_cores to start, up to
// max_cores while the node has idle cores (Parallelism::threads: exactly
// min_cores intra-op threads, not elastic). Its spec records the options
// (DataParallelOptions::spec) but not the cores, so its id and seed, and
// its results, are the same on any number of cores. Its metrics:
// DataParallelResult::metrics(), with `epochs`.
Job make_data_parallel_job(std::shared_ptr<const data::DatasetSplit> data, DataParallelOptions options, int min_cores,
                           int max_cores);

}  // namespace packtrain::dataparallel
