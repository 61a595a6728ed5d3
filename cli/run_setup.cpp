#include "run_setup.hpp"

#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/resources.hpp>
#include <packtrain/scheduler/results.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <numeric>
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
// made (JobRecord metrics "artifacts", relative to the run's folder), as
// one message: a 4-byte header length, the JSON header, the files' bytes.
// Rank 0 has every artifact (the job-end messages brought them), and a
// job dealt to another rank now may need them there.
std::string pack_done_jobs(const std::vector<JobRecord>& records, const std::filesystem::path& root) {
  nlohmann::json header{{"done", nlohmann::json::array()}, {"files", nlohmann::json::array()}};
  std::string bytes;
  for (const auto& r : records) {
    if (r.status != JobStatus::done) continue;
    header["done"].push_back(r.id);
    if (!r.metrics.is_object() || !r.metrics.contains("artifacts")) continue;
    for (const auto& path : r.metrics["artifacts"]) {
      std::ifstream in(root / path.get<std::string>(), std::ios::binary);
      if (!in) continue;  // a job needing it fails naming the file
      std::ostringstream data;
      data << in.rdbuf();
      header["files"].push_back({{"path", path}, {"size", data.str().size()}});
      bytes += data.str();
    }
  }
  const auto text = header.dump();
  const auto n = static_cast<std::uint32_t>(text.size());
  return std::string(reinterpret_cast<const char*>(&n), sizeof(n)) + text + bytes;
}

std::vector<std::string> unpack_done_jobs(const std::string& message, const std::filesystem::path& root) {
  std::uint32_t n = 0;
  std::memcpy(&n, message.data(), sizeof(n));
  const auto header = nlohmann::json::parse(message.substr(sizeof(n), n));
  std::size_t offset = sizeof(n) + n;
  for (const auto& f : header["files"]) {
    const auto size = f["size"].get<std::size_t>();
    const auto path = root / f["path"].get<std::string>();
    std::filesystem::create_directories(path.parent_path());
    write_file_atomically(path, message.substr(offset, size));
    offset += size;
  }
  return header["done"].get<std::vector<std::string>>();
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

}  // namespace

RunSetup::RunSetup(const CommonOptions& common, std::string command, bool serial)
    : common_(common), command_(std::move(command)), out_(common.out) {
  if (common_.out.empty()) throw Error("--out is required: the folder for the run's journal and results");
  std::tie(shard_, shards_) = parse_shard(common_.shard);
  if (distributed::launched_by_mpi()) {
    if (shards_ > 1) throw Error("--shard is for runs without MPI; under mpirun the ranks share the jobs");
    mpi_ = std::make_unique<distributed::MpiSession>();
    rank_ = mpi_->rank();
    if (rank_ > 0) out_ = out_ / "ranks" / ("rank-" + std::to_string(rank_));
  }
  if (common_.serve_port < 0 || common_.serve_port > 65535)
    throw Error("--serve " + std::to_string(common_.serve_port) + " is not a port number");
  if (common_.sample_ms < 10) throw Error("--sample-ms must be at least 10 (got " + std::to_string(common_.sample_ms) + ")");
  trainer_options(common_);  // validates batch size, optimizer and lr
  node_ = detect_node_resources(ResourceProbe{.requested_cores = common_.cores});
  if (serial) node_.cores.resize(1);
}

RunSetup::~RunSetup() {
  // The runner and executor go before the journal they write to, and the
  // communication thread before MPI is finalized.
  dashboard_.reset();
  sharing_.reset();
  runner_.reset();
  executor_.reset();
}

Journal& RunSetup::journal() {
  PACKTRAIN_CHECK(journal_ != nullptr, "the journal is rank 0's, after open_run()");
  return *journal_;
}

std::vector<std::string> shard_keys(const std::vector<Job>& jobs) {
  // Union-find over the `after` edges: a job and everything that depends on
  // it, directly or not, form one group.
  std::map<std::string, std::size_t> index;
  std::vector<std::string> ids;
  for (const auto& job : jobs) {
    index.emplace(job.id(), ids.size());
    ids.push_back(job.id());
  }
  std::vector<std::size_t> parent(jobs.size());
  std::iota(parent.begin(), parent.end(), std::size_t{0});
  const auto group_of = [&](std::size_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  for (std::size_t j = 0; j < jobs.size(); ++j)
    for (const auto& dep : jobs[j].after)
      if (const auto it = index.find(dep); it != index.end()) parent[group_of(j)] = group_of(it->second);
  // A group's key: the smallest id among its roots (jobs without `after`),
  // so every shard computes the same one whatever the order of the list.
  std::map<std::size_t, std::string> key;
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    if (!jobs[j].after.empty()) continue;
    auto& k = key[group_of(j)];
    if (k.empty() || ids[j] < k) k = ids[j];
  }
  std::vector<std::string> out(jobs.size());
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    const auto it = key.find(group_of(j));
    out[j] = it != key.end() ? it->second : ids[group_of(j)];  // a group without a root is a cycle: run() refuses it
  }
  return out;
}

bool RunSetup::in_shard(const std::string& key) const {
  return shards_ == 1 || static_cast<int>(stable_hash(key) % static_cast<std::uint64_t>(shards_)) == shard_;
}

void RunSetup::add_jobs(std::vector<Job> jobs) {
  if (journal_) {
    // The whole sweep and this run's share of it: `packtrain report --merge`
    // checks that shards belong to one sweep and names the jobs none ran.
    nlohmann::json all = nlohmann::json::array();
    for (const auto& job : jobs) all.push_back({{"id", job.id()}, {"name", job.name}});
    journal_->set_meta("sweep_jobs", all.dump());
    journal_->set_meta("shard", std::to_string(shard_) + "/" + std::to_string(shards_));
  }
  const auto keys = shard_keys(jobs);
  for (std::size_t j = 0; j < jobs.size(); ++j)
    if (in_shard(keys[j])) runner_->add(std::move(jobs[j]));
}

RunSummary RunSetup::run() {
  if (mpi_) {
    sharing_ = std::make_unique<distributed::MpiWorkSharing>(*mpi_, *runner_, out_);
    run_options_.sharing = sharing_.get();
  }
  auto summary = runner_->run(run_options_);
  if (sharing_) {
    sharing_->finish();
    const auto stats = sharing_->stats();
    if (!common_.quiet && stats.steal_requests_sent + stats.jobs_given > 0)
      std::fprintf(stderr, "rank %d: %d steal(s) bringing %d job(s), gave %d, %.3f s in MPI\n", rank_, stats.steals,
                   stats.jobs_received, stats.jobs_given, stats.mpi_seconds);
  }
  return summary;
}

std::shared_ptr<const data::DatasetSplit> RunSetup::load_data() { return data::shared_dataset(common_.data); }

void RunSetup::open_run(const nlohmann::json& meta) {
  std::string problem;
  try {
    if (rank_ == 0) {
      prepare_output_dir(out_, common_.resume);
      journal_ = Journal::open(out_ / "journal.sqlite");
      journal_->set_meta("command", command_);
      for (const auto& [key, value] : meta.items())
        journal_->set_meta(key, value.is_string() ? value.get<std::string>() : value.dump());
    } else {
      std::filesystem::create_directories(out_);
    }
  } catch (const std::exception& e) {
    problem = e.what();
  }
  if (mpi_) {
    // Every rank goes on, or none does.
    if (!mpi_->all_ok(problem.empty()))
      throw Error(problem.empty() ? "another rank could not start the run (rank 0 says why)" : problem);
    // Resuming: rank 0 tells the others which jobs are done and sends the
    // files those made (rank 0 itself resumes from its journal).
    std::string done;
    if (rank_ == 0) done = pack_done_jobs(common_.resume ? journal_->records() : std::vector<JobRecord>{}, out_);
    done = mpi_->broadcast(done);
    if (rank_ > 0) run_options_.already_done = unpack_done_jobs(done, out_);
  } else if (!problem.empty()) {
    throw Error(problem);
  }
  executor_ = std::make_unique<Executor>(node_.cores);
  runner_ = std::make_unique<JobRunner>(*executor_, node_);
  interrupts_.on_interrupt([runner = runner_.get()] { runner->request_stop(); });
  console_ = std::make_unique<ConsoleSink>(ConsoleOptions{.quiet = common_.quiet || rank_ > 0});
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
                       .journal(journal_.get());
    if (common_.serve_port > 0) options.serve_port(common_.serve_port);
    dashboard_ = std::make_unique<dashboard::RunDashboard>(options);
    run_options_.sinks.push_back(dashboard_.get());
    if (dashboard_->port() && !common_.quiet) std::fprintf(stderr, "dashboard: %s\n", dashboard_->url().c_str());
  }
}

nlohmann::json RunSetup::summary_json(const RunSummary& run) const {
  return {{"command", command_}, {"ranks", mpi_ ? mpi_->size() : 1}, {"shard", std::to_string(shard_) + "/" + std::to_string(shards_)},     {"cores", node_.core_count()}, {"done", run.done},
          {"failed", run.failed},    {"diverged", run.diverged},    {"skipped", run.skipped},
          {"cancelled", run.cancelled}, {"resumed", run.resumed},   {"makespan_s", run.makespan_s},
          {"job_seconds", run.job_seconds}, {"interrupted", run.interrupted}, {"data", common_.data}};
}

void RunSetup::finish(const RunSummary& run, const nlohmann::json& summary, const std::vector<std::string>& columns) {
  if (!is_root()) return;
  journal_->set_meta("summary", summary.dump());
  write_results_csv(out_ / "results.csv", run.jobs, columns);
  write_results_json(out_ / "results.json", run.jobs, summary, columns);
  if (dashboard_) dashboard_->finish(run);
}

void RunSetup::print_outputs() const {
  if (common_.quiet || !is_root()) return;
  std::printf("results: %s  (also results.json, report.html, trace.json, journal.sqlite)\n",
              (out_ / "results.csv").c_str());
}

}  // namespace packtrain::cli
