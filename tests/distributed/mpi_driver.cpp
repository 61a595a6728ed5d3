// mpi_driver: runs a synthetic sweep under mpirun through MpiWorkSharing, for
// the `mpi` tests. Jobs burn CPU for a few milliseconds and compute a value
// from their spec; one "producer" job writes a file that four "consumer"
// jobs (which depend on it, and may run on other ranks) read back.
//
//   mpirun -np 3 mpi_driver --out DIR [--jobs 32] [--cores 1] [--scale 1] [--skew | --consumers-elsewhere]
//                           [--lose-a-file]
//
// --lose-a-file: the producer lists a file it never wrote, which its job
// end cannot carry: every rank must stop, with one line naming it.
//
// Every rank writes DIR/rank-R/ran.txt (the jobs it ran); rank 0 writes
// DIR/journal.sqlite and DIR/summary.json (records and sharing stats).
#include <packtrain/distributed/mpi_sharing.hpp>
#include <packtrain/scheduler/journal.hpp>
#include <packtrain/scheduler/results.hpp>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <mutex>
#include <sstream>

using namespace packtrain;

namespace {

void burn_cpu_ms(double ms) {
  timespec start{}, now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
  volatile double sink = 0;
  do {
    for (int i = 0; i < 1000; ++i) sink = sink + i;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  } while ((now.tv_sec - start.tv_sec) * 1e3 + (now.tv_nsec - start.tv_nsec) / 1e6 < ms);
}

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path out;
  int n_jobs = 32;
  bool skew = false, consumers_elsewhere = false, lose_a_file = false;
  int cores = 1;
  double scale = 1.0;  // job length multiplier
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
    else if (!std::strcmp(argv[i], "--jobs") && i + 1 < argc) n_jobs = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--skew")) skew = true;
    else if (!std::strcmp(argv[i], "--consumers-elsewhere")) consumers_elsewhere = true;
    else if (!std::strcmp(argv[i], "--lose-a-file")) lose_a_file = true;
    else if (!std::strcmp(argv[i], "--cores") && i + 1 < argc) cores = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--scale") && i + 1 < argc) scale = std::atof(argv[++i]);
    else {
      std::fprintf(stderr, "usage: mpi_driver --out DIR [--jobs N] [--skew | --consumers-elsewhere]\n");
      return 2;
    }
  }
  distributed::MpiSession mpi;
  const auto root = out / ("rank-" + std::to_string(mpi.rank()));
  std::filesystem::create_directories(root);

  // One core by default and unpinned: the tests oversubscribe 2 cores with 4 ranks.
  auto node = detect_node_resources(ResourceProbe{.requested_cores = cores});
  Executor executor(node.cores, ExecutorOptions{.pin = false});
  JobRunner runner(executor, node);
  std::mutex ran_mutex;
  std::ofstream ran(root / "ran.txt");

  for (int i = 0; i < n_jobs; ++i) {
    Job job;
    job.name = "work" + std::to_string(i);
    job.spec = {{"i", i}};
    job.cost = 1 + (i % 8);  // uneven: 5..40 ms
    job.run = [&, i, ms = scale * 5.0 * (1 + i % 8)](JobContext& ctx) {
      burn_cpu_ms(ms);
      {
        std::lock_guard lock(ran_mutex);
        ran << ctx.id() << "\n" << std::flush;
      }
      return JobOutcome{.metrics = {{"value", i * i + 7}, {"ran_on", ctx.rank()}}};
    };
    runner.add(job);
  }
  Job producer;
  producer.name = "producer";
  producer.spec = {{"producer", true}};
  producer.cost = 100;  // starts first
  producer.run = [&](JobContext& ctx) {
    const std::string rel = "artifacts/producer/payload.txt";
    write_file_atomically((std::filesystem::create_directories(root / "artifacts/producer"), root / rel),
                          "payload-from-rank-" + std::to_string(ctx.rank()));
    {
      std::lock_guard lock(ran_mutex);
      ran << ctx.id() << "\n" << std::flush;
    }
    std::vector<std::string> artifacts = {rel};
    if (lose_a_file) artifacts.push_back("artifacts/producer/never-written.txt");
    return JobOutcome{.metrics = {{"ran_on", ctx.rank()}}, .artifacts = artifacts};
  };
  const auto producer_id = runner.add(producer);
  for (int c = 0; c < 4; ++c) {
    Job consumer;
    consumer.name = "consumer" + std::to_string(c);
    consumer.spec = {{"consumer", c}};
    consumer.after = {producer_id};
    // --consumers-elsewhere pins each consumer to a rank other than 0 (a gang
    // of one, which work sharing never moves): dealt there and left there, a
    // rank 0 that runs out of work early cannot steal them all back, so at
    // least two run on another rank than the producer wherever it ran.
    if (consumers_elsewhere && mpi.size() > 1) consumer.gang_ranks = {1 + c % (mpi.size() - 1)};
    consumer.run = [&](JobContext& ctx) {
      std::ifstream in(root / "artifacts/producer/payload.txt");
      std::stringstream text;
      text << in.rdbuf();
      if (text.str().empty()) throw std::runtime_error("the producer's file is not here");
      {
        std::lock_guard lock(ran_mutex);
        ran << ctx.id() << "\n" << std::flush;
      }
      return JobOutcome{.metrics = {{"payload", text.str()}, {"ran_on", ctx.rank()}}};
    };
    runner.add(consumer);
  }

  std::unique_ptr<Journal> journal;
  if (mpi.rank() == 0) journal = Journal::open(out / "journal.sqlite");
  // --skew: rank 0 starts with every job; the others must steal.
  std::function<int(int)> deal;
  if (skew) deal = [](int) { return 0; };
  // --consumers-elsewhere: rank 0 starts with the producer and the work, the
  // consumers (pinned above) on the other ranks.
  if (consumers_elsewhere)
    deal = [n_jobs, size = mpi.size()](int j) { return j <= n_jobs ? 0 : 1 + (j - n_jobs - 1) % (size - 1); };
  distributed::MpiWorkSharing sharing(mpi, runner, root, deal);
  RunOptions options{.journal = journal.get(), .rank = mpi.rank(), .pin_threads = false, .sharing = &sharing};
  const auto summary = runner.run(options);
  sharing.finish();
  const auto stats = sharing.stats();
  std::printf("rank %d: done %d, steals %d, jobs received %d, given %d, lifelines %d, mpi %.3f s\n", mpi.rank(),
              summary.done, stats.steals, stats.jobs_received, stats.jobs_given, stats.lifelines_sent,
              stats.mpi_seconds);
  nlohmann::json s{{"rank", mpi.rank()},
                   {"done", summary.done},
                   {"makespan_s", summary.makespan_s},
                   {"steals", stats.steals},
                   {"jobs_received", stats.jobs_received},
                   {"jobs_given", stats.jobs_given},
                   {"mpi_seconds", stats.mpi_seconds}};
  nlohmann::json records = nlohmann::json::array();
  for (const auto& r : summary.jobs) records.push_back(record_to_json(r));
  s["records"] = records;
  write_file_atomically(root / "summary.json", s.dump());
  return summary.exit_code();
}
