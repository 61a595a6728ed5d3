#include "run_setup.hpp"

#include "invocation.hpp"
#include "supervisor.hpp"

#include <packtrain/dashboard/live_server.hpp>
#include <packtrain/dashboard/rebuild.hpp>
#include <packtrain/distributed/job_files.hpp>
#include <packtrain/scheduler/console_sink.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/gang_plan.hpp>
#include <packtrain/scheduler/resources.hpp>
#include <packtrain/scheduler/results.hpp>
#include <packtrain/scheduler/shards.hpp>
#include <packtrain/train/memory_watch.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <sstream>
#include <tuple>

namespace packtrain::cli {

train::TrainOptions trainer_options(const CommonOptions& common) {
  auto options = train::TrainOptions()
                     .batch_size(common.batch_size)
                     .optimizer(train::optimizer_from_string(common.optimizer))
                     .lr(common.lr);
  options.validate();
  return options;
}

namespace {

// Resuming under MPI: the ids of the jobs done before, and the files they
// made, as one job-files message (packtrain/distributed/job_files.hpp, the
// codec job ends travel in too). Rank 0 has every job's files (the job-end
// messages brought them), and a job dealt to another rank now may need
// them there. A file missing here is an error naming the job and the file.
std::string pack_done_jobs(const std::vector<JobRecord>& records, const std::filesystem::path& root) {
  std::vector<JobRecord> done;
  auto ids = nlohmann::json::array();
  for (const auto& r : records)
    if (r.status == JobStatus::done) {
      done.push_back(r);
      ids.push_back(r.id);
    }
  return distributed::encode_job_files({{"done", ids}}, done, root);
}

std::vector<std::string> unpack_done_jobs(const std::string& message, const std::filesystem::path& root) {
  const auto header = distributed::decode_job_files(message, root);
  const auto it = header.find("done");
  if (it == header.end() || !it->is_array())
    throw Error("damaged job-files message from rank 0: no list of the jobs done before");
  std::vector<std::string> ids;
  for (const auto& id : *it) {
    if (!id.is_string()) throw Error("damaged job-files message from rank 0: a job id " + id.dump() + " is not text");
    ids.push_back(id.get<std::string>());
  }
  return ids;
}

// "i/n" from --shard, else SLURM's job array variables, else 0/1.
std::pair<int, int> parse_shard(const std::string& text) {
  std::string spec = text;
  if (spec.empty()) {
    const char* id = std::getenv("SLURM_ARRAY_TASK_ID");
    const char* count = std::getenv("SLURM_ARRAY_TASK_COUNT");
    const char* min = std::getenv("SLURM_ARRAY_TASK_MIN");
    if (!id || !count) return {0, 1};
    spec = std::to_string(std::atoi(id) - (min ? std::atoi(min) : 0)) + "/" + count;
  }
  int i = -1, n = 0;
  char slash = 0;
  std::istringstream in(spec);
  if (!(in >> i >> slash >> n) || slash != '/' || !in.eof() || n < 1 || i < 0 || i >= n)
    throw Error("--shard must be I/N with 0 <= I < N (got '" + spec + "')");
  return {i, n};
}

// The first flag whose value differs between a run's recorded flags and
// this command's, as "--folds 4 there, 2 here"; empty when none does.
std::string first_flag_difference(const nlohmann::json& there, const nlohmann::json& here) {
  const auto text = [](const nlohmann::json& flags, const std::string& key) -> std::string {
    if (!flags.contains(key)) return "(not given)";
    return flags[key].is_string() ? flags[key].get<std::string>() : flags[key].dump();
  };
  std::vector<std::string> keys;
  for (const auto& [key, value] : here.items()) keys.push_back(key);
  for (const auto& [key, value] : there.items())
    if (!here.contains(key)) keys.push_back(key);
  // The data first: a run of other data differs in every job.
  std::stable_partition(keys.begin(), keys.end(), [](const std::string& k) { return k == "data"; });
  for (const auto& key : keys) {
    const auto a = text(there, key), b = text(here, key);
    if (a != b) return "--" + key + " " + (a.empty() ? "''" : a) + " there, " + (b.empty() ? "''" : b) + " here";
  }
  return "";
}

// Where two job lists ([{"id", "name"}, ...]) first differ by id: an index
// into the longer one; none when they are the same.
std::optional<std::size_t> first_job_difference(const nlohmann::json& a, const nlohmann::json& b) {
  for (std::size_t k = 0; k < std::max(a.size(), b.size()); ++k) {
    const auto x = k < a.size() ? a[k].value("id", "") : "";
    const auto y = k < b.size() ? b[k].value("id", "") : "";
    if (x != y) return k;
  }
  return std::nullopt;
}

// Refuses (Error) to resume the run in `dir` unless it is this run: the
// same command, the same shard and the same job list. Reads the journal
// and changes nothing.
void check_same_run(const std::filesystem::path& dir, const std::string& command, const nlohmann::json& flags,
                    const std::string& shard, const nlohmann::json& jobs) {
  const auto journal = Journal::open_existing(dir / "journal.sqlite");
  const std::string refuse = "cannot --resume the run in " + dir.string() + ": ";
  const std::string advice = " (resume with its options, or choose another --out)";
  const auto their_command = journal->meta("command").value_or("");
  if (their_command != command)
    throw Error(refuse + "it is a " + (their_command.empty() ? std::string("unknown") : their_command) +
                " run, not " + command + advice);
  nlohmann::json their_flags = nlohmann::json::parse(journal->meta("flags").value_or("{}"), nullptr, false);
  if (!their_flags.is_object()) their_flags = nlohmann::json::object();
  nlohmann::json their_jobs = nlohmann::json::parse(journal->meta("sweep_jobs").value_or("null"), nullptr, false);
  if (!their_jobs.is_array()) {
    // A run by an older packtrain: its journal's rows are its jobs.
    their_jobs = nlohmann::json::array();
    for (const auto& r : journal->records()) their_jobs.push_back({{"id", r.id}, {"name", r.name}});
  }
  const auto their_shard = journal->meta("shard").value_or("0/1");
  const auto differ = first_job_difference(their_jobs, jobs);
  if (!differ && their_shard == shard) return;
  if (const auto flag = first_flag_difference(their_flags, flags); !flag.empty())
    throw Error(refuse + flag + advice);
  if (their_shard != shard) throw Error(refuse + "--shard " + their_shard + " there, " + shard + " here" + advice);
  // Same flags, other jobs: other data under the same name, or another version's jobs.
  const auto k = *differ;
  const std::string first =
      k < jobs.size() ? jobs[k].value("name", "") + " (" + jobs[k].value("id", "") + ")" : "job " + std::to_string(k + 1);
  throw Error(refuse + "its job list differs from this command's (first: " + first + ")" + advice);
}

// Under MPI every rank must have built the same job list (the same flags
// and data): rank 0's list goes to every rank, each finds where its own
// first differs, and the first difference anywhere is every rank's one-line
// error. Jobs travel between ranks by id, so ranks with other lists would
// run jobs nobody asked for, or wait for jobs that do not exist.
void check_same_jobs_on_every_rank(distributed::MpiSession& mpi, const nlohmann::json& jobs) {
  const auto theirs = nlohmann::json::parse(mpi.broadcast(mpi.rank() == 0 ? jobs.dump() : std::string()), nullptr, false);
  constexpr int kSame = std::numeric_limits<int>::max();
  int mine = kSame;
  if (!theirs.is_array()) {
    mine = 0;
  } else if (const auto k = first_job_difference(theirs, jobs)) {
    mine = static_cast<int>(std::min<std::size_t>(*k, kSame - 1));
  }
  const int first = mpi.min(mine);
  if (first == kSame) return;
  const auto k = static_cast<std::size_t>(first);
  const std::string name = theirs.is_array() && k < theirs.size()
                               ? theirs[k].value("name", "") + " (" + theirs[k].value("id", "") + ")"
                               : "the end of rank 0's list";
  throw Error("the ranks built different jobs (other flags or data on some rank?): job " + std::to_string(k + 1) +
              " is " + name + " on rank 0 but not on every rank; start every rank with the same command");
}

// Whether --out may hold this run, decided before anything is written:
// a new or empty folder, or (with --resume) a folder holding this same run.
// Returns true when the folder holds a run to resume.
bool check_out_dir(const std::filesystem::path& dir, bool resume, const std::string& command,
                   const nlohmann::json& flags, const std::string& shard, const nlohmann::json& jobs) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return false;
  if (!std::filesystem::is_directory(dir, ec)) throw Error("--out " + dir.string() + " exists and is not a folder");
  if (std::filesystem::exists(dir / "journal.sqlite", ec)) {
    if (!resume)
      throw Error("--out " + dir.string() +
                  " already holds a run (journal.sqlite): pass --resume to finish it, or choose another --out");
    check_same_run(dir, command, flags, shard, jobs);
    return true;
  }
  if (!std::filesystem::is_empty(dir, ec))
    throw Error("--out " + dir.string() +
                " is not empty and holds no packtrain run (no journal.sqlite): choose a new or empty folder");
  return false;
}

}  // namespace

namespace {
CapturedJobs* g_capture = nullptr;  // set only by the simulate command's thread, before any RunSetup

// The GPUs this process can use: none yet. Finding them (LibTorch, NVML)
// and training on them are to come in gpu/, built where LibTorch has CUDA
// (docs/gpu.md); the slots, their memory and the placement are built.
std::vector<GpuDevice> found_gpus() { return {}; }
// Why none were found, for the messages.
constexpr const char* kNoGpuWhy = PACKTRAIN_BUILD_HAS_CUDA
                                      ? "packtrain does not find or train on GPUs yet, docs/gpu.md"
                                      : "this packtrain's LibTorch has no CUDA: build it where PyTorch has CUDA, "
                                        "docs/gpu.md";

// --gpus, --gpu-slots and --gpu-memory-per-job: the GPUs the run's jobs may use. Throws Error.
std::vector<GpuDevice> run_gpus(const CommonOptions& common) {
  if (common.gpu_memory_per_job < 0)
    throw Error("--gpu-memory-per-job must be a count of MiB, not " + std::to_string(common.gpu_memory_per_job));
  GpuRequest request{.slots = common.gpu_slots,
                     .memory_per_job_mb = static_cast<std::uint64_t>(common.gpu_memory_per_job)};
  if (common.gpus == "all") {
    request.gpus = -1;
  } else if (!common.gpus.empty() && common.gpus.size() <= 4 &&
             common.gpus.find_first_not_of("0123456789") == std::string::npos) {
    request.gpus = std::stoi(common.gpus);
  } else {
    throw Error("--gpus must be 'all' or a count of GPUs, not '" + common.gpus + "'");
  }
  if (request.gpus == 0 && (common.gpu_slots != 0 || common.gpu_memory_per_job != 0))
    throw Error(std::string(common.gpu_slots != 0 ? "--gpu-slots" : "--gpu-memory-per-job") +
                " is for jobs on GPUs: give --gpus too");
  const auto found = found_gpus();
  if (found.empty() && request.gpus > 0)
    throw Error("--gpus " + common.gpus + ": no GPU found (" + kNoGpuWhy + ")");
  auto gpus = choose_gpus(found, request);
  if (request.gpus < 0 && gpus.empty() && !common.quiet)
    std::fprintf(stderr, "packtrain: --gpus all: no GPU found (%s); the jobs run on CPU cores\n", kNoGpuWhy);
  return gpus;
}
}  // namespace

void capture_jobs_for_simulation(CapturedJobs* into) { g_capture = into; }

RunSetup::RunSetup(const CommonOptions& common, std::string command, bool serial)
    : common_(common), command_(std::move(command)), out_(common.out) {
  if (common_.ranks_per_job < 1)
    throw Error("--ranks-per-job must be at least 1, not " + std::to_string(common_.ranks_per_job));
  if (g_capture) {
    if (common_.ranks_per_job > 1)
      throw Error("packtrain simulate does not model gang jobs (--ranks-per-job) yet: simulate the sweep without it");
    // A virtual node: the cores asked for, as much memory as the jobs ask.
    if (common_.cores && (*common_.cores < 1 || *common_.cores > g_capture->cores))
      throw Error("--cores " + std::to_string(*common_.cores) + " is not within the simulated node's 1.." +
                  std::to_string(g_capture->cores) + " cores");
    if (common_.gpus != "0")
      throw Error("--gpus " + common_.gpus + " in a simulated sweep: give packtrain simulate's --gpus and --gpu-speedup");
    const int cores = serial ? 1 : common_.cores.value_or(g_capture->cores);
    for (int c = 0; c < cores; ++c) node_.cores.push_back(c);
    node_.memory_mb = std::uint64_t{1} << 40;
    // A folder the jobs would write to, never created (the jobs never run;
    // no job's identity holds it).
    if (out_.empty()) out_ = std::filesystem::path("(simulated)");
    trainer_options(common_);
    return;
  }
  if (common_.out.empty()) throw Error("--out is required: the folder for the run's journal and results");
  train::watch_job_memory();  // jobs' budgets (Job::memory_mb) and peaks
  std::tie(shard_, shards_) = parse_shard(common_.shard);
  if (common_.oversubscribe && !distributed::launched_by_mpi())
    throw Error("--oversubscribe is for runs under mpirun (ranks on one node sharing its cores); this process has the "
                "node to itself");
  if (common_.ranks_per_job > 1 && !distributed::launched_by_mpi())
    throw Error("--ranks-per-job is for runs under mpirun or srun (each job trained by that many ranks at once); this "
                "process runs alone");
  if (distributed::launched_by_mpi()) {
    if (shards_ > 1) throw Error("--shard is for runs without MPI; under mpirun the ranks share the jobs");
    // Gang jobs' lanes call MPI on threads of their own beside the work sharing's.
    mpi_ = std::make_unique<distributed::MpiSession>(/*thread_multiple=*/common_.ranks_per_job > 1);
    rank_ = mpi_->rank();
    if (common_.ranks_per_job > mpi_->size())
      throw Error("--ranks-per-job " + std::to_string(common_.ranks_per_job) + " is more than the " +
                  std::to_string(mpi_->size()) + " rank(s) of this run");
    if (rank_ > 0) out_ = out_ / "ranks" / ("rank-" + std::to_string(rank_));
  }
  if (common_.serve_port < 0 || common_.serve_port > 65535)
    throw Error("--serve " + std::to_string(common_.serve_port) + " is not a port number");
  check_dashboard_access();
  if (common_.sample_ms < 10) throw Error("--sample-ms must be at least 10 (got " + std::to_string(common_.sample_ms) + ")");
  trainer_options(common_);  // validates batch size, optimizer and lr
  ResourceProbe probe{.requested_cores = common_.cores};
  // Ranks on one node divide its cores: each its own, none shared (unless --oversubscribe).
  if (mpi_)
    probe.share = [this](const std::vector<int>& usable) { return mpi_->node_share(usable, common_.oversubscribe); };
  node_ = detect_node_resources(probe);
  if (serial) node_.cores.resize(1);
  node_.gpus = run_gpus(common_);
  // A node's ranks divide its cores and memory (NodeShare) but not yet its GPUs: each would count every slot.
  if (mpi_ && !node_.gpus.empty())
    throw Error("--gpus under mpirun: a node's ranks do not divide its GPUs yet; run one rank a node, or no --gpus");
}

void RunSetup::check_dashboard_access() {
  constexpr std::size_t kShortestToken = 16;
  if (!common_.token.empty() && !common_.token_file.empty())
    throw Error("--token and --token-file are two ways to give one token: give one");
  if (!common_.token_file.empty()) {
    std::ifstream in(common_.token_file);
    if (!in) throw Error("--token-file " + common_.token_file + " cannot be read");
    std::getline(in, common_.token);
    while (!common_.token.empty() && (common_.token.back() == '\r' || common_.token.back() == ' '))
      common_.token.pop_back();
    if (common_.token.empty()) throw Error("--token-file " + common_.token_file + " holds no token on its first line");
  }
  const bool token = !common_.token.empty() || !common_.token_file.empty();
  if (token && common_.serve_port == 0) throw Error("--token is for the live dashboard: give --serve PORT too");
  if (token && common_.token.size() < kShortestToken)
    throw Error("the dashboard token has " + std::to_string(common_.token.size()) + " characters; give at least " +
                std::to_string(kShortestToken) + " (e.g. from 'openssl rand -hex 16')");
  if (common_.serve_port > 0 && !token && !dashboard::is_loopback(common_.bind))
    throw Error("--bind " + common_.bind +
                " lets other machines reach the dashboard: give --token or --token-file, which its requests must carry");
}

RunSetup::~RunSetup() {
  // The runner and executor go before the journal they write to, and the
  // communication thread before MPI is finalized.
  dashboard_.reset();
  sharing_.reset();
  runner_.reset();
  executor_.reset();
  gang_comm_.reset();
  gangs_.clear();
  gang_lanes_.clear();
}

namespace {

// dataparallel's view of the gang's MPI communicator.
class MpiGang final : public dataparallel::Gang {
 public:
  explicit MpiGang(distributed::MpiGangComm& comm) : comm_(comm) {}
  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  void allgather(const void* mine, std::size_t bytes, void* all) override { comm_.allgather(mine, bytes, all); }
  std::uint64_t start_allgather(const void* mine, std::size_t bytes, void* all) override {
    return comm_.start_allgather(mine, bytes, all);
  }
  void wait(std::uint64_t ticket) override { comm_.wait(ticket); }

 private:
  distributed::MpiGangComm& comm_;
};

// A gang job's members check first that they all started the same job (a
// lane's order is the same on every member, by Job::follows: a mismatch is
// a bug, and the exchanges of two different jobs must not meet).
void check_same_gang_job(dataparallel::Gang& gang, const std::string& id, const std::vector<int>& ranks) {
  constexpr std::size_t kIdBytes = 16;  // Job::id(): 16 hex digits
  std::string mine = id;
  mine.resize(kIdBytes, ' ');
  std::string all(kIdBytes * static_cast<std::size_t>(gang.size()), '\0');
  gang.allgather(mine.data(), kIdBytes, all.data());
  for (int m = 0; m < gang.size(); ++m) {
    const auto theirs = all.substr(static_cast<std::size_t>(m) * kIdBytes, kIdBytes);
    if (theirs != mine)
      throw Error("rank " + std::to_string(ranks.at(static_cast<std::size_t>(m))) + " of this gang started job " +
                  theirs + " where this rank started " + id + ": the gang's ranks disagree on its jobs' order");
  }
}

// After a gang job, its members agree on how it ended (a failure outside
// the job's exchanges, a save in a rank's own folder say, is one member's
// alone): the first member whose end is the worst (failed, then cancelled,
// then diverged) decides it for all, with its message. A member that never
// comes (held in an exchange of the job) ends every rank after a minute.
void agree_gang_outcome(distributed::MpiGangComm& lane, JobOutcome& outcome, const std::vector<int>& ranks,
                        const std::string& name) {
  struct End {
    std::int32_t status;
    char message[252];
  };
  End mine{};
  mine.status = static_cast<std::int32_t>(outcome.status);
  const auto line = outcome.message.substr(0, outcome.message.find('\n'));
  std::memcpy(mine.message, line.data(), std::min(line.size(), sizeof mine.message - 1));
  std::vector<End> all(ranks.size());
  constexpr double kPatienceS = 60;
  lane.agree(&mine, sizeof mine, all.data(), kPatienceS, "the end of " + name);
  const auto badness = [](JobStatus s) {
    return s == JobStatus::failed ? 3 : s == JobStatus::cancelled ? 2 : s == JobStatus::diverged ? 1 : 0;
  };
  std::size_t worst = 0;
  for (std::size_t m = 1; m < all.size(); ++m)
    if (badness(static_cast<JobStatus>(all[m].status)) > badness(static_cast<JobStatus>(all[worst].status))) worst = m;
  const auto status = static_cast<JobStatus>(all[worst].status);
  if (badness(status) <= badness(outcome.status)) return;  // this member's end is as bad as any
  outcome.status = status;
  outcome.message = "rank " + std::to_string(ranks[worst]) + " of the gang: " +
                    std::string(all[worst].message, strnlen(all[worst].message, sizeof all[worst].message));
}

}  // namespace

void RunSetup::plan_gang_jobs(std::vector<Job>& jobs) {
  const int per_job = common_.ranks_per_job;
  int per_rank = 1;  // a gang job's cores on each of its ranks
  for (const auto& job : jobs) per_rank = std::max(per_rank, job.cores);
  // Lanes per group (gang jobs at once), the same on every rank: the fewest any rank has room for.
  std::uint64_t memory_mb = 0;  // and memory for, under budgets
  for (const auto& job : jobs) memory_mb = std::max(memory_mb, job.memory_mb);
  int room = node_.core_count() / per_rank;
  if (memory_mb > 0) room = static_cast<int>(std::min<std::uint64_t>(room, node_.memory_mb / memory_mb));
  const int lanes = std::max(1, mpi_->min(room));
  std::map<std::string, int> index;
  for (std::size_t j = 0; j < jobs.size(); ++j) index.emplace(jobs[j].id(), static_cast<int>(j));
  GangPlanInput in{.world = mpi_->size(), .ranks_per_job = per_job, .lanes = lanes, .solo_slots = lanes};
  for (const auto& job : jobs) {
    in.costs.push_back(job.cost);
    auto& after = in.after.emplace_back();
    for (const auto& id : job.after)
      if (const auto it = index.find(id); it != index.end()) after.push_back(it->second);  // else: the runner says
  }
  gang_plan_ = plan_gangs(in);
  gang_lanes_ = distributed::MpiGangComm::lanes(*mpi_, per_job, lanes);  // collective
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    if (gang_plan_->lane[j] < 0) continue;
    auto& job = jobs[j];
    job.gang_ranks = gang_plan_->ranks[j];
    job.retries = 0;  // a retry decided on one member alone would leave the others' lane behind
    if (const int before = gang_plan_->follows[j]; before >= 0) job.follows.push_back(jobs[before].id());
    if (std::find(job.gang_ranks.begin(), job.gang_ranks.end(), rank_) == job.gang_ranks.end()) continue;
    auto& lane = *gang_lanes_.at(static_cast<std::size_t>(gang_plan_->lane[j] % lanes));
    auto gang = std::make_shared<MpiGang>(lane);
    gangs_[job.id()] = gang;
    job.run = [inner = std::move(job.run), gang, &lane, ranks = job.gang_ranks, id = job.id(),
               name = job.name](JobContext& ctx) {
      JobOutcome outcome;
      std::exception_ptr error;
      try {
        check_same_gang_job(*gang, id, ranks);
        outcome = inner(ctx);
      } catch (const std::exception& e) {
        error = std::current_exception();
        outcome = {.status = JobStatus::failed, .message = e.what()};
      } catch (...) {
        error = std::current_exception();
        outcome = {.status = JobStatus::failed, .message = "unknown exception"};
      }
      lane.abort_if_unfinished(name);
      agree_gang_outcome(lane, outcome, ranks, name);  // every member ends the job alike
      if (error && outcome.status == JobStatus::failed) std::rethrow_exception(error);
      if (outcome.status == JobStatus::failed) throw Error(outcome.message);
      outcome.metrics["ranks"] = ranks.size();
      outcome.metrics["gang_ranks"] = ranks;
      return outcome;
    };
  }
}

std::shared_ptr<dataparallel::Gang> RunSetup::gang_for(const std::string& job_id) const {
  const auto it = gangs_.find(job_id);
  return it == gangs_.end() ? nullptr : it->second;
}

dataparallel::GangOf RunSetup::gangs() {
  if (common_.ranks_per_job <= 1) return nullptr;
  return [this](const std::string& id) { return gang_for(id); };
}

std::shared_ptr<dataparallel::Gang> RunSetup::gang() {
  if (!mpi_) return nullptr;
  PACKTRAIN_CHECK(!runner_, "RunSetup::gang() is called before open_run()");
  if (!gang_comm_) gang_comm_ = std::make_unique<distributed::MpiGangComm>(*mpi_);
  return std::make_shared<MpiGang>(*gang_comm_);
}

void RunSetup::gang_job_started() {
  MutexLock lock(gang_mutex_);
  gang_started_ = true;
  if (gang_stop_pending_) preempt_asked_.load() ? runner_->request_preempt() : runner_->request_stop();
}

std::int64_t RunSetup::gang_exchanges() const { return gang_comm_ ? gang_comm_->exchanges() : 0; }
std::int64_t RunSetup::gang_bytes() const { return gang_comm_ ? gang_comm_->bytes_sent() : 0; }
double RunSetup::gang_seconds() const { return gang_comm_ ? gang_comm_->seconds() : 0.0; }

Journal& RunSetup::journal() {
  PACKTRAIN_CHECK(journal_ != nullptr, "the journal is rank 0's, after open_run()");
  return *journal_;
}

RunSummary RunSetup::run() {
  if (mpi_ && !gang_comm_) {
    std::function<int(int)> deal;  // gangs: the plan's first owners
    if (gang_plan_) deal = [plan = *gang_plan_](int job) { return plan.first_rank.at(static_cast<std::size_t>(job)); };
    sharing_ = std::make_unique<distributed::MpiWorkSharing>(*mpi_, *runner_, out_, deal);
    run_options_.sharing = sharing_.get();
  }
  auto summary = runner_->run(run_options_);
  if (!summary.journal_error.empty()) {
    // Nothing more is written (finish, print_outputs): the disk that could
    // not take the journal would not take the results either.
    journal_failed_ = true;
    std::fprintf(stderr,
                 "packtrain %s: stopped: the journal cannot be written (%s); nothing more was started and what the "
                 "journal holds is intact: free space, then run the same command with --resume\n",
                 command_.c_str(), summary.journal_error.c_str());
  }
  if (summary.preempted && is_root()) {
    // One line a batch script's log shows, with the command that goes on.
    std::fprintf(stderr, "packtrain %s: preempted: the running jobs saved checkpoints; resume with: %s%s\n",
                 command_.c_str(), resume_line().c_str(),
                 mpi_ ? " (under mpirun or srun: the same launch, every rank with --resume)" : "");
  }
  if (sharing_) {
    sharing_->finish();
    const auto stats = sharing_->stats();
    if (!common_.quiet && stats.steal_requests_sent + stats.jobs_given > 0)
      std::fprintf(stderr, "rank %d: %d steal(s) bringing %d job(s), gave %d, %.3f s in MPI\n", rank_, stats.steals,
                   stats.jobs_received, stats.jobs_given, stats.mpi_seconds);
  }
  return summary;
}

std::shared_ptr<const data::DatasetSplit> RunSetup::load_data() {
  auto data = data::shared_dataset(common_.data);
  if (g_capture) g_capture->data = data;
  normalization_ = {{"mean", data->normalization.mean}, {"std", data->normalization.stddev}};
  return data;
}

bool RunSetup::simulating() { return g_capture != nullptr; }

std::optional<std::string> RunSetup::resumed_meta(const std::string& key) {
  bool resuming = false;
  std::string value;
  if (rank_ == 0 && common_.resume) {
    const auto path = out_ / "journal.sqlite";
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec)) {
      resuming = true;
      try {
        value = Journal::open_existing(path)->meta(key).value_or("");
      } catch (const std::exception&) {
        // open_run's check of the folder says what is wrong with it.
      }
    }
  }
  if (mpi_) {
    const auto sent = mpi_->broadcast(rank_ == 0 ? (resuming ? "1" : "0") + value : std::string());
    resuming = !sent.empty() && sent[0] == '1';
    value = sent.empty() ? "" : sent.substr(1);
  }
  return resuming ? std::optional<std::string>(value) : std::nullopt;
}

int RunSetup::cores_in_all() {
  return mpi_ ? mpi_->sum(node_.core_count() - node_.shared_cores) : node_.core_count();
}

void RunSetup::open_run(const nlohmann::json& meta, std::vector<Job> jobs, const std::vector<std::string>& columns) {
  apply_crash_test_hook(jobs);  // PACKTRAIN_TEST_CRASH_JOB: for the supervisor's tests only
  const std::string shard = std::to_string(shard_) + "/" + std::to_string(shards_);
  nlohmann::json job_list = nlohmann::json::array();
  for (const auto& job : jobs) job_list.push_back({{"id", job.id()}, {"name", job.name}});

  if (g_capture) {
    for (const auto& job : jobs)
      if (job.cores > node_.core_count())
        throw Error(job.name + " needs " + std::to_string(job.cores) + " cores; a simulated node has " +
                    std::to_string(node_.core_count()));
    g_capture->command = command_;
    g_capture->jobs = std::move(jobs);
    g_capture->meta = meta;
    throw JobsCaptured{};
  }
  if (mpi_) check_same_jobs_on_every_rank(*mpi_, job_list);
  // A gang's communicator takes one exchange at a time: one job.
  PACKTRAIN_CHECK(!gang_comm_ || jobs.size() <= 1, "a gang run holds one job");

  // Everything that can refuse the run, before anything is written.
  std::string problem;
  std::vector<int> share;
  try {
    for (const auto& job : jobs)
      if (job.cores > node_.core_count())
        throw Error(job.name + " needs " + std::to_string(job.cores) + " cores; this run has " +
                    std::to_string(node_.core_count()));
    share = deal_shards(jobs, shards_);
    if (rank_ == 0) {
      check_out_dir(out_, common_.resume, command_, common_.flags, shard, job_list);
      if (common_.serve_port > 0) dashboard::check_can_listen(common_.bind, common_.serve_port);
    }
  } catch (const std::exception& e) {
    problem = e.what();
  }
  if (mpi_) {
    // Every rank goes on, or none does.
    if (!mpi_->all_ok(problem.empty()))
      throw Error(problem.empty() ? "another rank could not start the run (rank 0 says why)" : problem);
  } else if (!problem.empty()) {
    throw Error(problem);
  }

  // Then the run's folder and journal.
  try {
    create_output_dir(out_);
    if (rank_ == 0) {
      journal_ = Journal::open(out_ / "journal.sqlite");
      journal_->set_meta("command", command_);
      for (const auto& [key, value] : meta.items())
        journal_->set_meta(key, value.is_string() ? value.get<std::string>() : value.dump());
      journal_->set_meta("flags", common_.flags.dump());
      journal_->set_meta("columns", nlohmann::json(columns).dump());
      journal_->set_meta("cores", nlohmann::json(node_.cores).dump());
      // The whole sweep and this run's share of it: --resume and
      // `packtrain report --merge` check that a folder belongs to it.
      journal_->set_meta("sweep_jobs", job_list.dump());
      journal_->set_meta("shard", shard);
      tell_supervisor_journal(journal_->path());  // where a crash is recorded from now on
    }
  } catch (const std::exception& e) {
    problem = e.what();
  }
  total_cores_ = node_.core_count();
  if (mpi_) {
    if (!mpi_->all_ok(problem.empty()))
      throw Error(problem.empty() ? "another rank could not start the run (rank 0 says why)" : problem);
    total_cores_ = cores_in_all();  // each core once
    // Resuming: rank 0 tells the others which jobs are done and sends the
    // files those made (rank 0 itself resumes from its journal). Each step
    // that can fail on one rank is followed by a collective check, so no
    // rank waits for one that has stopped.
    std::string done;
    if (rank_ == 0) {
      try {
        done = pack_done_jobs(common_.resume ? journal_->records() : std::vector<JobRecord>{}, out_);
      } catch (const Error& e) {
        problem = e.what();
      }
    }
    if (!mpi_->all_ok(problem.empty()))
      throw Error(problem.empty() ? "rank 0 could not send the jobs done before (rank 0 says why)" : problem);
    done = mpi_->broadcast(done);
    if (rank_ > 0) {
      try {
        run_options_.already_done = unpack_done_jobs(done, out_);
      } catch (const Error& e) {
        problem = e.what();
      }
    }
    if (!mpi_->all_ok(problem.empty()))
      throw Error(problem.empty() ? "another rank could not take the jobs done before (it says why)" : problem);
  } else if (!problem.empty()) {
    throw Error(problem);
  }
  // Gang jobs (--ranks-per-job): which run as gangs, in which lane and order (collective).
  if (mpi_ && common_.ranks_per_job > 1 && !gang_comm_) plan_gang_jobs(jobs);
  executor_ = std::make_unique<Executor>(node_.cores);
  runner_ = std::make_unique<JobRunner>(*executor_, node_);
  for (std::size_t j = 0; j < jobs.size(); ++j)
    if (share[j] == shard_) runner_->add(std::move(jobs[j]));
  interrupts_.on_interrupt([this, runner = runner_.get()](StopSignal why) {
    if (why == StopSignal::preempt) preempt_asked_.store(true);
    if (gang_comm_) {
      MutexLock lock(gang_mutex_);
      if (!gang_started_) {
        gang_stop_pending_ = true;  // gang_job_started() stops it
        return;
      }
    }
    why == StopSignal::preempt ? runner->request_preempt() : runner->request_stop();
  });
  console_ = std::make_unique<ConsoleSink>(
      ConsoleOptions{.quiet = common_.quiet || rank_ > 0, .metric = meta.value("metric", std::string())});
  run_options_.journal = journal_.get();
  run_options_.resume = common_.resume;
  run_options_.base_seed = common_.seed;
  run_options_.rank = rank_;
  run_options_.sinks = {console_.get()};
  if (rank_ == 0) {
    auto options = dashboard::DashboardOptions()
                       .out_dir(out_)
                       .cores(node_.cores)
                       .rank(0)
                       .sample_ms(common_.sample_ms)
                       .bind(common_.bind)
                       .token(common_.token)
                       .journal(journal_.get());
    if (common_.serve_port > 0) options.serve_port(common_.serve_port);
    dashboard_ = std::make_unique<dashboard::RunDashboard>(options);
    run_options_.sinks.push_back(dashboard_.get());
    if (dashboard_->port() && !common_.quiet)
      std::fprintf(stderr, "dashboard: %s%s\n", dashboard_->url().c_str(),
                   common_.token.empty() ? "" : " (open it with ?token=TOKEN)");
  }
}

nlohmann::json RunSetup::summary_json(const RunSummary& run) const {
  return {{"command", command_}, {"ranks", ranks()}, {"shard", std::to_string(shard_) + "/" + std::to_string(shards_)},     {"cores", total_cores_}, {"done", run.done},
          {"failed", run.failed},    {"diverged", run.diverged},    {"skipped", run.skipped}, {"crashed", run.crashed},
          {"cancelled", run.cancelled}, {"resumed", run.resumed},   {"makespan_s", run.makespan_s},
          {"job_seconds", run.job_seconds}, {"interrupted", run.interrupted}, {"preempted", run.preempted}, {"data", common_.data},
          // Per channel, what the images were normalized with (the training part's figures).
          {"data_normalization", normalization_}};
}

void RunSetup::finish(const RunSummary& run, const nlohmann::json& summary) {
  if (!is_root() || journal_failed_) return;
  journal_->set_meta("summary", summary.dump());
  // From the journal, as `packtrain report DIR` rebuilds them.
  dashboard::write_results(dashboard::read_run(out_, *journal_));
  if (dashboard_) dashboard_->finish(run);  // trace.json, report.html
}

int RunSetup::ranks() const { return mpi_ ? mpi_->size() : 1; }

std::string RunSetup::speed_line(const RunSummary& run) const { return format_speedup(run, total_cores_, ranks()); }

void RunSetup::print_outputs() const {
  if (common_.quiet || !is_root() || journal_failed_) return;
  std::printf("results: %s  (also results.json, report.html, trace.json, journal.sqlite)\n",
              (out_ / "results.csv").c_str());
}

}  // namespace packtrain::cli
