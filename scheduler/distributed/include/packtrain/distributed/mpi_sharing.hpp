#pragma once
// Work sharing between processes (one per node, or per rank) over MPI.
//
// Protocol (DESIGN.md decisions 4, 6 and 8):
//  - Every rank builds the same job list (run setup checks it). Rank r
//    starts with the jobs at positions p = r, r + size, ... of the list
//    sorted longest first, so every rank starts with a mix of long and
//    short jobs.
//  - Messages name jobs by id (Job::id(), the hash of the job's spec),
//    never by a position in a list; each rank maps ids to its own jobs
//    once, when sharing starts.
//  - A rank whose runner has idle cores and nothing ready asks a random
//    other rank for work (kStealRequest). The victim answers with half of
//    its ready, unstarted jobs (kStealReply, a JSON list of ids, possibly
//    empty); the thief then owns them. After a few empty answers in a row
//    the thief stops asking and registers a lifeline with every other rank
//    (kLifeline): whoever next has jobs become ready hands it half of them,
//    unasked (kLifelineGift, a list of ids). A job ending anywhere may make
//    work ready, so it re-arms the asking.
//  - The rank that ran a job tells every other rank that it ended
//    (kJobEnded: a job-files message, job_files.hpp, whose header holds the
//    job's id and record, and which carries the files the record lists as
//    its artifacts, paths relative to the run's folder). Every
//    rank so knows every job's status: dependencies on jobs run elsewhere
//    resolve locally, with their files copied into this rank's own folder
//    (no shared filesystem is assumed) before the runner hears of the end,
//    and every rank knows when the run is over. Rank 0 writes the journal.
//  - Gang jobs (Job::gang_ranks, a sweep's --ranks-per-job): every rank
//    of the gang starts with the job and none gives it away; the gang's
//    first rank tells the ranks outside the gang that it ended (the others
//    ran it too), so it is recorded once.
//  - A rank whose communication fails aborts every rank (the others would
//    otherwise wait for its jobs forever): an MPI error, a file it cannot
//    read or write, or a message that does not check out (a size past its
//    end, bytes left over, a path leaving the run's folder, a job id not in
//    its list). The rank prints one line saying which.
//  - Shutdown: each rank, once its runner is done, waits until every job
//    end it owes is encoded and its own sends are received (they are
//    synchronous sends), then enters a non-blocking barrier and keeps
//    answering until the barrier completes: no message is left unmatched at
//    MPI_Finalize. It then lets the I/O thread write the last files it
//    received and stop.
//
// Two threads per process:
//  - The communication thread makes every MPI call (MPI is initialized
//    with MPI_THREAD_SERIALIZED, and only that thread calls it after
//    initialization): the runner's hooks only queue work for it. It checks
//    for incoming messages every millisecond while it has nothing else to
//    do; MPI offers no way to sleep until either a message or a local
//    event arrives.
//  - The I/O thread reads and writes the jobs' files, so that a large
//    checkpoint never stalls MPI progress: it encodes this rank's job ends
//    into messages for the communication thread, and decodes those
//    received (writes the files, then tells the runner the job ended). It
//    reports a failure to the communication thread, which aborts the run.
//    The runner's ended() hook only queues for it (the runner calls it with
//    its lock held, where no file may be read).
#include <packtrain/scheduler/job_runner.hpp>
#include <packtrain/scheduler/resources.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace packtrain::distributed {

// True when this process was started by mpirun/mpiexec/srun with MPI.
bool launched_by_mpi();
// True when packtrain was built with MPI support.
bool mpi_available();
// The MPI library packtrain was built with ("Open MPI v4.1.4"); empty without MPI.
std::string mpi_version();

// MPI for this process: initialized on construction (call it first in
// main's thread, before other threads), finalized on destruction.
// `thread_multiple`: gangs in a sweep (their lanes' threads call MPI while
// the work sharing's does); otherwise MPI_THREAD_SERIALIZED is enough.
class MpiSession {
 public:
  explicit MpiSession(bool thread_multiple = false);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }

  // Collective, before the communication thread starts: rank 0's `text`
  // reaches every rank.
  std::string broadcast(const std::string& text);
  // Collective: true on every rank when `ok` is true on every rank.
  bool all_ok(bool ok);
  // Collective: the sum of `value` over every rank (e.g. the run's cores).
  int sum(int value);
  // Collective: the smallest `value` over every rank.
  int min(int value);
  // Collective: this rank's share of the node it runs on. The ranks on one
  // node (MPI_COMM_TYPE_SHARED) gather the cores each found usable and
  // divide them (share_node_cores, scheduler/resources.hpp), so that no two
  // ranks use a core; every rank of the node gets the same Error when there
  // are fewer cores than ranks. For ResourceProbe::share.
  NodeShare node_share(const std::vector<int>& usable, bool oversubscribe = false);

 private:
  int rank_ = 0;
  int size_ = 1;
};

// The communicator of one job trained by several ranks at once (a gang:
// dataparallel/gang.hpp), driven by a thread of its own that makes every
// MPI call on it; the job's thread hands it each exchange and waits. A
// `train` under mpirun has one, a duplicate of the world's, and no work
// sharing (MPI_THREAD_SERIALIZED holds); a sweep of gang jobs has one per
// lane, beside the work sharing's thread (MPI_THREAD_MULTIPLE).
class MpiGangComm {
 public:
  // Collective over every rank, on the thread that initialized MPI.
  explicit MpiGangComm(MpiSession& session);
  // The lanes of this rank's group when a sweep's jobs are gangs of
  // `ranks_per_job` ranks (scheduler/gang_plan.hpp): groups of consecutive
  // ranks, `lanes` communicators each, every lane with a thread of its own.
  // Collective over every rank, on the thread that initialized MPI, before
  // the work sharing starts; the session must be thread_multiple. Empty for
  // a rank past the last whole group.
  static std::vector<std::unique_ptr<MpiGangComm>> lanes(MpiSession& session, int ranks_per_job, int lanes);
  ~MpiGangComm();
  MpiGangComm(const MpiGangComm&) = delete;
  MpiGangComm& operator=(const MpiGangComm&) = delete;
  int rank() const;
  int size() const;
  // Collective: `bytes` bytes of every rank into `all` (size() x bytes, in
  // rank order). Throws packtrain::Error naming the MPI error.
  void allgather(const void* mine, std::size_t bytes, void* all);
  // The same, queued for the gang's thread, which makes the exchanges one
  // after another in the order they were started; wait(ticket) returns when
  // that one is done, rethrowing its error. Thread-safe.
  std::uint64_t start_allgather(const void* mine, std::size_t bytes, void* all);
  void wait(std::uint64_t ticket);
  // A lane's (lanes()): every member's `bytes` at `mine` into `all`, on a
  // communicator of its own beside the exchanges', called on one thread at
  // a time. A member that does not join within `seconds` (held in an
  // exchange this one will never make) ends every rank with one line
  // naming `what`: no rank waits for ever.
  void agree(const void* mine, std::size_t bytes, void* all, double seconds, const std::string& what);
  // True while an exchange started is not done.
  bool unfinished() const;
  // After a job: an exchange it left running would meet the next job's; end
  // every rank with one line instead (the journal stays as it is).
  void abort_if_unfinished(const std::string& job);
  // Exchanges so far, the bytes this rank sent in them, and the seconds
  // they took in MPI (waiting for the slowest rank too).
  std::int64_t exchanges() const;
  std::int64_t bytes_sent() const;
  double seconds() const;

 private:
  struct Impl;
  explicit MpiGangComm(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct SharingStats {
  int steal_requests_sent = 0;
  int steals = 0;             // requests answered with jobs
  int jobs_received = 0;      // through steals and lifelines
  int jobs_given = 0;
  int lifelines_sent = 0;
  std::int64_t bytes_sent = 0;
  double mpi_seconds = 0;     // time inside MPI calls on the communication thread
};

class MpiWorkSharing final : public WorkSharing {
 public:
  // `runner` must have every job added; `run_root` is this rank's folder,
  // which the paths of jobs' files are relative to. `first_owner` (job index ->
  // rank) replaces the longest-first round-robin deal, e.g. in tests.
  MpiWorkSharing(MpiSession& session, JobRunner& runner, std::filesystem::path run_root,
                 std::function<int(int job)> first_owner = {});
  ~MpiWorkSharing() override;
  MpiWorkSharing(const MpiWorkSharing&) = delete;
  MpiWorkSharing& operator=(const MpiWorkSharing&) = delete;

  // After runner.run() returned: drains and waits for every rank (collective).
  void finish();
  // Valid after finish().
  SharingStats stats() const;

  bool starts_with(int job) override;
  void idle() override;
  void ended(int job, const JobRecord& record) override;
  void work_available() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace packtrain::distributed
