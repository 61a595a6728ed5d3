#pragma once
// Lottery-ticket sweeps: iterative magnitude pruning with late resetting
// (Frankle & Carbin, ICLR 2019; Frankle et al., "Stabilizing the Lottery
// Ticket Hypothesis", 2019), as jobs packed onto the cores.
//
// The jobs and the files between them (all under the run folder DIR, paths
// relative to it, so another rank could be sent exactly these files):
//
//   dense     trains E epochs from the model's seeded init and saves
//             checkpoints/<dense id>/epoch-NNNN.pt at 0 (init), at every reset
//             epoch and at E. Its metrics list those files ("checkpoints").
//   retrain   one per (sparsity, reset epoch e), after the dense job: prunes
//             the dense final weights (masks/<stem>.pt), loads the epoch-e
//             weights, masks them (tickets/<stem>.pt: the ticket, a checkpoint
//             at epoch e with a fresh optimizer), and trains from epoch e to E
//             with the masked weights kept exactly zero after every step. The
//             LR schedule goes on as if the dense run had been restarted at
//             epoch e (step e x batches of E x batches), the momentum starts
//             from zero (as OpenLTH rewinds). Trained weights go to
//             checkpoints/<job id>/epoch-E.pt, the result to tickets/<stem>.json.
//   iterative (rounds R >= 1, prune rate p): per reset epoch a chain of R
//             retrains; round r removes p of the weights round r-1 kept, by
//             the magnitudes of round r-1's trained weights, and waits for it.
//   transfer  (optional) the winning ticket's mask and weights trained with
//             the mask on another dataset of the same input shape and classes
//             (Morcos et al., "One ticket to win them all", 2019), and the same
//             model trained dense from scratch for the same epochs. The ticket
//             job waits for every retrain and picks the winner from their
//             tickets/<stem>.json files, by the rule of choose_winner().
//
// Accuracy is top-1 on the dataset's test part ("test_top1"; the trainer's
// validation data is the test part here, so val_top1 is the same figure).
//
//   auto data = packtrain::data::shared_dataset("fashion-mnist");
//   packtrain::lth::LotteryTicketSweep sweep(data, LthOptions().model("mlp").reset_epochs({0, 1})
//       .sparsities({0.8, 0.9}).out_dir(dir).trainer(TrainOptions().epochs(5)));
//   auto result = sweep.run(runner, run_options);
//   std::printf("%s", packtrain::lth::format_report(result.report).c_str());
//
// Every job returns the files it made that later jobs read as its
// JobOutcome::artifacts (paths relative to the run folder): under MPI, the
// job-end message carries exactly these to the other ranks (no shared
// filesystem), so out_dir must be this process's own folder (the rank's,
// under mpirun).
#include <packtrain/data/dataset.hpp>
#include <packtrain/dataparallel/data_parallel.hpp>
#include <packtrain/lth/mask.hpp>
#include <packtrain/scheduler/job_runner.hpp>
#include <packtrain/train/options.hpp>

#include <torch/arg.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace packtrain::lth {

struct LthOptions {
  TORCH_ARG(std::string, model) = "mlp";
  // Epochs whose weights the tickets are reset to (0: the initial weights).
  TORCH_ARG(std::vector<int>, reset_epochs) = std::vector<int>{0};
  // One-shot: one retrain per sparsity, each in (0, 1).
  TORCH_ARG(std::vector<double>, sparsities) = std::vector<double>{0.5, 0.8, 0.9, 0.95};
  TORCH_ARG(Scope, scope) = Scope::global;
  // 0: one-shot; R >= 1: iterative, R rounds each removing prune_rate of what is left.
  TORCH_ARG(int, rounds) = 0;
  TORCH_ARG(double, prune_rate) = 0.2;
  // The winning ticket may be this much below the dense top-1 (0.005: half a point).
  TORCH_ARG(double, tolerance) = 0.005;
  TORCH_ARG(std::uint64_t, seed) = 1;     // recorded in the specs; job seeds come from RunOptions::base_seed
  TORCH_ARG(std::int64_t, limit) = 0;     // train on the first N training samples only (0: all)
  TORCH_ARG(int, cores_per_job) = 1;
  // Jobs with more than one core, or room to grow (max_cores_per_job above
  // cores_per_job: idle cores at the tail of the sweep, given back when a
  // waiting job needs them), train data-parallel replicas on micro_batch
  // samples (dataparallel/), the masks kept after every step: their numbers
  // depend on micro_batch, never on the cores they had. One-core jobs train
  // as before (train::Trainer). 0: cores_per_job.
  TORCH_ARG(int, max_cores_per_job) = 0;
  TORCH_ARG(std::int64_t, micro_batch) = dataparallel::kDefaultMicroBatch;
  // Each job's memory budget (Job::memory_mb; 0: none).
  TORCH_ARG(std::uint64_t, memory_mb_per_job) = 0;
  // Replicas or intra-op threads for jobs with several cores; none: the
  // model's default (dataparallel::default_parallelism). Threads do not grow.
  TORCH_ARG(std::optional<dataparallel::Parallelism>, parallelism) = std::nullopt;
  // Gang jobs (under mpirun, --ranks-per-job): the gang that trains job
  // `id` on this rank, null where one rank trains it alone. When set, every
  // job trains replicas on micro_batch samples (the same numbers whether a
  // gang or one rank runs it: dataparallel/gang.hpp).
  TORCH_ARG(dataparallel::GangOf, gangs) = nullptr;
  // Epochs, batch size, optimizer, lr and schedule of every job.
  TORCH_ARG(train::TrainOptions, trainer) = train::TrainOptions().epochs(10);
  // The run folder (required): checkpoints/, masks/, tickets/ go under it.
  TORCH_ARG(std::string, out_dir) = "";
  // Where under out_dir the masks/ and tickets/ folders go ("": out_dir
  // itself). Two sweeps in one run folder (packtrain batch) need their own:
  // those files are named by sparsity and round, not by job. Not part of a
  // job's identity.
  TORCH_ARG(std::string, files_dir) = "";
  // A dataset spec to transfer the winning ticket to ("mnist-digits"); empty: none.
  TORCH_ARG(std::string, transfer) = "";
  TORCH_ARG(int, print_every) = 1;        // progress events every N epochs (0: none)
};

// One finished retrain, as the report sees it.
struct TicketPoint {
  std::string job;
  int reset_epoch = 0;
  int round = 0;                  // 0 for one-shot
  double requested = 0;           // the sparsity asked for (one-shot), else the actual one
  double sparsity = 0;            // the mask's actual sparsity
  double test_top1 = 0;
  std::string mask;               // files, relative to the run folder
  std::string ticket;
};

struct LthReport {
  std::optional<double> dense_top1;
  double tolerance = 0.005;
  std::vector<TicketPoint> points;          // in the order the jobs were added
  std::optional<TicketPoint> winner;
  std::string transfer;                     // the transfer dataset, if any
  std::optional<double> transfer_ticket_top1, transfer_scratch_top1;
};

struct LthResult {
  RunSummary run;
  LthReport report;
  double speedup = 0;  // the jobs' own time / makespan
};

// The sparsest point whose test top-1 is at least dense - tolerance; among
// equally sparse ones the most accurate. None without any such point.
std::optional<TicketPoint> choose_winner(double dense_top1, const std::vector<TicketPoint>& points, double tolerance);

class LotteryTicketSweep {
 public:
  // Checks everything (model, epochs, reset epochs, sparsities, rounds,
  // rate, tolerance, the transfer dataset) and throws Error naming the first
  // problem. Writes nothing.
  LotteryTicketSweep(std::shared_ptr<const data::DatasetSplit> data, LthOptions options);

  // The dense job first, then the retrains (per reset epoch, per sparsity or
  // round), then the transfer jobs.
  std::vector<Job> jobs() const;
  std::string dense_id() const;

  // Adds jobs() to `runner`, runs them, and returns result_of() the run.
  // The CLI instead adds jobs() itself (shards, MPI) and calls result_of().
  LthResult run(JobRunner& runner, const RunOptions& options) const;
  // The report (winning ticket by this sweep's tolerance) and speedup of a
  // finished run of this sweep's jobs; under MPI, any rank's RunSummary
  // holds every rank's records.
  LthResult result_of(RunSummary run) const;
  const LthOptions& options() const { return options_; }

 private:
  Job dense_job() const;
  Job retrain_job(int reset_epoch, double sparsity, int round, const std::string& previous) const;
  std::vector<Job> transfer_jobs(const std::vector<std::string>& retrains) const;
  nlohmann::json base_spec() const;
  // Cores, growth and (for replicas) the spec's parallelism and micro-batch.
  void set_cores(Job& job) const;
  bool replicas() const;

  std::shared_ptr<const data::DatasetSplit> data_;
  std::shared_ptr<const data::DatasetSplit> transfer_data_;
  LthOptions options_;
  double flops_ = 0;
};

// The report of a run's records (a finished run's journal works as well).
LthReport summarize(const std::vector<JobRecord>& records, double tolerance);

// The terminal table: test top-1 against sparsity, one line per reset epoch,
// the dense figure and the tolerance line, the winning ticket, the transfer.
std::string format_report(const LthReport& report);

// The columns results.csv gets: kResultColumns plus the lottery ones.
const std::vector<std::string>& result_columns();

}  // namespace packtrain::lth
