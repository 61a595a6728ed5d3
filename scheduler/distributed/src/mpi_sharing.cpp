// The MPI implementation of work sharing (the protocol is in mpi_sharing.hpp).
#include <packtrain/distributed/mpi_sharing.hpp>

#include <packtrain/distributed/job_files.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/mutex.hpp>

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <list>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>

namespace packtrain::distributed {
namespace {

enum Tag : int { kStealRequest = 11, kStealReply = 12, kLifeline = 13, kLifelineGift = 14, kJobEnded = 15 };

// Empty answers in a row before a thief registers lifelines instead.
constexpr int kMaxFailedAsks = 2;

// The one place MPI return codes become errors.
void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS || len < 0 || len > MPI_MAX_ERROR_STRING)
    throw Error(std::string("MPI ") + what + ": error code " + std::to_string(rc));
  throw Error(std::string("MPI ") + what + ": " + std::string(text, static_cast<std::size_t>(len)));
}

}  // namespace

bool launched_by_mpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_RANK");
}

bool mpi_available() { return true; }

MpiSession::MpiSession(bool thread_multiple) {
  int provided = 0;
  const int wanted = thread_multiple ? MPI_THREAD_MULTIPLE : MPI_THREAD_SERIALIZED;
  check_mpi(MPI_Init_thread(nullptr, nullptr, wanted, &provided), "init");
  if (provided < wanted) {
    MPI_Finalize();
    throw Error(thread_multiple ? "this MPI library does not support MPI_THREAD_MULTIPLE, which gang jobs in a sweep "
                                  "(--ranks-per-job) need"
                                : "this MPI library does not support MPI_THREAD_SERIALIZED");
  }
  check_mpi(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "error handler");
  check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "rank");
  check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &size_), "size");
}

MpiSession::~MpiSession() {
  // A destructor cannot throw: a failed query or finalize is left as it is.
  int finalized = 0;
  if (MPI_Finalized(&finalized) == MPI_SUCCESS && !finalized) MPI_Finalize();
}

std::string MpiSession::broadcast(const std::string& text) {
  // The size goes first, and every rank checks it the same way: all of
  // them throw, or none does.
  unsigned long long n = text.size();
  check_mpi(MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD), "broadcast");
  if (n > static_cast<unsigned long long>(std::numeric_limits<int>::max()))
    throw Error("a broadcast of " + std::to_string(n) + " bytes is too large for one MPI call");
  std::string out = rank_ == 0 ? text : std::string(static_cast<std::size_t>(n), '\0');
  if (n > 0) check_mpi(MPI_Bcast(out.data(), static_cast<int>(n), MPI_CHAR, 0, MPI_COMM_WORLD), "broadcast");
  return out;
}

std::string mpi_version() {
  // MPI_Get_library_version may be called before MPI_Init.
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = "";
  int length = 0;
  if (MPI_Get_library_version(text, &length) != MPI_SUCCESS) return "MPI (version unknown)";
  std::string version(text, static_cast<std::size_t>(std::max(0, length)));
  version = version.substr(0, version.find_first_of(",\n"));
  return version;
}

bool MpiSession::all_ok(bool ok) {
  int mine = ok ? 1 : 0, all = 0;
  check_mpi(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD), "allreduce");
  return all == 1;
}

int MpiSession::min(int value) {
  int least = 0;
  check_mpi(MPI_Allreduce(&value, &least, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD), "allreduce");
  return least;
}

NodeShare MpiSession::node_share(const std::vector<int>& usable, bool oversubscribe) {
  MPI_Comm node = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node), "split by node");
  // Freed however this ends (an Error from share_node_cores too).
  const struct Free {
    MPI_Comm* comm;
    ~Free() { MPI_Comm_free(comm); }
  } free_node{&node};
  int local_rank = 0, local_size = 1;
  check_mpi(MPI_Comm_rank(node, &local_rank), "node rank");
  check_mpi(MPI_Comm_size(node, &local_size), "node size");
  if (usable.size() > static_cast<std::size_t>(std::numeric_limits<int>::max() / std::max(local_size, 1)))
    throw Error("a core list of " + std::to_string(usable.size()) + " entries is too large to gather");
  const int mine = static_cast<int>(usable.size());
  std::vector<int> counts(static_cast<std::size_t>(local_size));
  check_mpi(MPI_Allgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, node), "gather core counts");
  std::vector<int> offsets(counts.size());
  int total = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] < 0) throw Error("rank " + std::to_string(i) + " of this node sent a negative core count");
    offsets[i] = total;
    total += counts[i];
  }
  std::vector<int> all(static_cast<std::size_t>(total));
  check_mpi(MPI_Allgatherv(usable.data(), mine, MPI_INT, all.data(), counts.data(), offsets.data(), MPI_INT, node),
            "gather cores");
  std::vector<std::vector<int>> by_rank(counts.size());
  for (std::size_t i = 0; i < counts.size(); ++i)
    by_rank[i].assign(all.begin() + offsets[i], all.begin() + offsets[i] + counts[i]);
  const auto shares = share_node_cores(by_rank, oversubscribe);
  // Cores an earlier rank of the node holds too (--oversubscribe) are counted once, by it.
  std::set<int> earlier;
  for (int i = 0; i < local_rank; ++i) earlier.insert(shares[i].begin(), shares[i].end());
  const auto& mine_share = shares[static_cast<std::size_t>(local_rank)];
  const auto shared = std::count_if(mine_share.begin(), mine_share.end(), [&](int c) { return earlier.count(c) > 0; });
  return NodeShare{.cores = mine_share, .processes = local_size, .shared_cores = static_cast<int>(shared)};
}

int MpiSession::sum(int value) {
  int total = 0;
  check_mpi(MPI_Allreduce(&value, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD), "allreduce");
  return total;
}

// --- a gang's communicator ------------------------------------------------------

struct MpiGangComm::Impl {
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_Comm control = MPI_COMM_NULL;  // a lane's: agree() only, on the job's thread
  int rank = 0;
  int size = 1;
  Mutex mutex;
  CondVar work;  // the thread: a task or quit
  CondVar done;  // the waiters: a task ran
  // Tasks started and not yet run, in order; task n (from 1) is ticket n.
  std::deque<std::function<void()>> tasks PACKTRAIN_GUARDED_BY(mutex);
  std::uint64_t started PACKTRAIN_GUARDED_BY(mutex) = 0;
  std::uint64_t finished PACKTRAIN_GUARDED_BY(mutex) = 0;
  std::map<std::uint64_t, std::exception_ptr> errors PACKTRAIN_GUARDED_BY(mutex);  // by ticket, until waited for
  bool quit PACKTRAIN_GUARDED_BY(mutex) = false;
  std::atomic<std::int64_t> exchanges{0};
  std::atomic<std::int64_t> bytes{0};
  std::atomic<std::int64_t> ns{0};
  std::thread thread;

  void start() {
    check_mpi(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN), "error handler");
    check_mpi(MPI_Comm_rank(comm, &rank), "rank");
    check_mpi(MPI_Comm_size(comm, &size), "size");
    thread = std::thread([this] { loop(); });
  }

  void loop() {
    while (true) {
      std::function<void()> next;
      {
        MutexLock lock(mutex);
        while (!quit && tasks.empty()) work.wait(mutex);
        if (quit) return;
        next = std::move(tasks.front());
        tasks.pop_front();
      }
      std::exception_ptr failure;
      const auto begin = std::chrono::steady_clock::now();
      try {
        next();
      } catch (...) {
        failure = std::current_exception();
      }
      ns.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - begin).count());
      MutexLock lock(mutex);
      ++finished;
      if (failure) errors[finished] = failure;
      done.notify_all();
    }
  }
};

MpiGangComm::MpiGangComm(MpiSession& session) : impl_(std::make_unique<Impl>()) {
  (void)session;  // MPI is initialized while it lives
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &impl_->comm), "duplicate the world for a gang");
  impl_->start();
}

MpiGangComm::MpiGangComm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) { impl_->start(); }

std::vector<std::unique_ptr<MpiGangComm>> MpiGangComm::lanes(MpiSession& session, int ranks_per_job, int lanes) {
  PACKTRAIN_CHECK(ranks_per_job >= 1 && ranks_per_job <= session.size() && lanes >= 1,
                  "MpiGangComm::lanes: ranks per job outside 1..world or no lane");
  const int groups = session.size() / ranks_per_job;
  const int color = session.rank() < groups * ranks_per_job ? session.rank() / ranks_per_job : MPI_UNDEFINED;
  MPI_Comm group = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split(MPI_COMM_WORLD, color, session.rank(), &group), "split the ranks into gang groups");
  std::vector<std::unique_ptr<MpiGangComm>> out;
  if (group == MPI_COMM_NULL) return out;  // a solo rank
  for (int l = 0; l < lanes; ++l) {
    auto impl = std::make_unique<Impl>();
    int rc = MPI_Comm_dup(group, &impl->comm);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_dup(group, &impl->control);
    if (rc != MPI_SUCCESS) MPI_Comm_free(&group);
    check_mpi(rc, "duplicate a gang group's communicator for a lane");
    check_mpi(MPI_Comm_set_errhandler(impl->control, MPI_ERRORS_RETURN), "error handler");
    out.push_back(std::unique_ptr<MpiGangComm>(new MpiGangComm(std::move(impl))));
  }
  MPI_Comm_free(&group);
  return out;
}

MpiGangComm::~MpiGangComm() {
  {
    MutexLock lock(impl_->mutex);
    if (impl_->started != impl_->finished) {
      // An exchange this member started and will not finish: the others
      // wait in it forever. End every rank (mpirun stops them), the journal intact.
      std::fprintf(stderr, "packtrain: a gang exchange was left unfinished on rank %d: ending every rank\n",
                   impl_->rank);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    impl_->quit = true;
  }
  impl_->work.notify_one();
  impl_->thread.join();
  MPI_Comm_free(&impl_->comm);  // a failure is left as it is (a destructor)
  if (impl_->control != MPI_COMM_NULL) MPI_Comm_free(&impl_->control);
}

bool MpiGangComm::unfinished() const {
  MutexLock lock(impl_->mutex);
  return impl_->started != impl_->finished;
}

void MpiGangComm::agree(const void* mine, std::size_t bytes, void* all, double seconds, const std::string& what) {
  PACKTRAIN_CHECK(impl_->control != MPI_COMM_NULL, "MpiGangComm::agree is for a lane's communicator");
  const int n = static_cast<int>(bytes);
  MPI_Request request = MPI_REQUEST_NULL;
  check_mpi(MPI_Iallgather(mine, n, MPI_BYTE, all, n, MPI_BYTE, impl_->control, &request), "gang agreement");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (int done = 0;;) {
    check_mpi(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "gang agreement");
    if (done) return;
    if (std::chrono::steady_clock::now() > deadline) {
      // A member is held elsewhere (in an exchange this one will never
      // make): end every rank rather than wait for ever; the journal stays.
      std::fprintf(stderr, "packtrain: rank %d: %s: the gang's other ranks did not answer within %.0f s; ending every rank\n",
                   impl_->rank, what.c_str(), seconds);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void MpiGangComm::abort_if_unfinished(const std::string& job) {
  if (!unfinished()) return;
  std::fprintf(stderr, "packtrain: rank %d: job %s left a gang exchange unfinished; ending every rank\n", impl_->rank,
               job.c_str());
  MPI_Abort(MPI_COMM_WORLD, 1);
}

int MpiGangComm::rank() const { return impl_->rank; }
int MpiGangComm::size() const { return impl_->size; }
std::int64_t MpiGangComm::exchanges() const { return impl_->exchanges.load(); }
std::int64_t MpiGangComm::bytes_sent() const { return impl_->bytes.load(); }
double MpiGangComm::seconds() const { return static_cast<double>(impl_->ns.load()) * 1e-9; }

std::uint64_t MpiGangComm::start_allgather(const void* mine, std::size_t bytes, void* all) {
  if (bytes > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw Error("a gang exchange of " + std::to_string(bytes) + " bytes is too large for one MPI message");
  impl_->exchanges.fetch_add(1);
  impl_->bytes.fetch_add(static_cast<std::int64_t>(bytes));
  MutexLock lock(impl_->mutex);
  impl_->tasks.push_back([this, mine, bytes, all] {
    const int n = static_cast<int>(bytes);
    check_mpi(MPI_Allgather(mine, n, MPI_BYTE, all, n, MPI_BYTE, impl_->comm), "gang allgather");
  });
  impl_->work.notify_one();
  return ++impl_->started;
}

void MpiGangComm::wait(std::uint64_t ticket) {
  std::exception_ptr error;
  {
    MutexLock lock(impl_->mutex);
    PACKTRAIN_CHECK(ticket >= 1 && ticket <= impl_->started, "MpiGangComm::wait: a ticket that was never given");
    while (impl_->finished < ticket) impl_->done.wait(impl_->mutex);
    if (const auto it = impl_->errors.find(ticket); it != impl_->errors.end()) {
      error = it->second;
      impl_->errors.erase(it);
    }
  }
  if (error) std::rethrow_exception(error);
}

void MpiGangComm::allgather(const void* mine, std::size_t bytes, void* all) { wait(start_allgather(mine, bytes, all)); }

struct MpiWorkSharing::Impl {
  using Buffer = std::shared_ptr<const std::string>;

  Impl(MpiSession& s, JobRunner& r, std::filesystem::path root, const std::function<int(int)>& deal)
      : session(s), runner(r), root(std::move(root)), rank(s.rank()), size(s.size()),
        rng(static_cast<unsigned>(s.rank()) * 7919u + 17u) {
    // Messages name jobs by id: map each id to its place in this rank's list.
    const auto& jobs = runner.jobs();
    for (std::size_t j = 0; j < jobs.size(); ++j) {
      ids.push_back(jobs[j].id());
      index.emplace(ids.back(), static_cast<int>(j));
    }
    // Deal the jobs, longest first, round-robin over the ranks.
    std::vector<int> order(jobs.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return jobs[a].cost > jobs[b].cost; });
    first_owner.resize(jobs.size());
    for (std::size_t p = 0; p < order.size(); ++p) first_owner[order[p]] = static_cast<int>(p % size);
    if (deal)
      for (std::size_t j = 0; j < jobs.size(); ++j) first_owner[j] = deal(static_cast<int>(j));
    // A gang job is every member's from the start; its first member reports its end.
    for (std::size_t j = 0; j < jobs.size(); ++j) {
      const auto& gang = jobs[j].gang_ranks;
      for (int member : gang) PACKTRAIN_CHECK(member >= 0 && member < size, "MpiWorkSharing: a gang rank outside the world");
      if (!gang.empty()) first_owner[j] = gang.front();
    }
    io_thread = std::thread([this] { io_loop(); });
    comm_thread = std::thread([this] { comm_loop(); });
  }

  // --- called by the runner (its lock held): only queue and notify ---
  void post_ended(int job, const JobRecord& record) PACKTRAIN_EXCLUDES(mutex) {
    if (size == 1) return;  // nobody to tell
    const auto& gang = gang_of(job);
    if (!gang.empty() && gang.front() != rank) return;  // the gang's first member tells the others
    MutexLock lock(mutex);
    to_encode.emplace_back(job, record);
    ++unsent_ends;
    io_wake.notify_one();
  }
  void post_flag(bool Impl::*flag) PACKTRAIN_EXCLUDES(mutex) {
    MutexLock lock(mutex);
    this->*flag = true;
    comm_wake.notify_one();
  }

  // After the communication thread has returned: the I/O thread finishes
  // what is queued and stops.
  void stop_io() PACKTRAIN_EXCLUDES(mutex) {
    {
      MutexLock lock(mutex);
      io_stop = true;
      io_wake.notify_one();
    }
    io_thread.join();
  }

  const std::vector<int>& gang_of(int job) const { return runner.jobs()[static_cast<std::size_t>(job)].gang_ranks; }
  bool in_gang(int job, int member) const {
    const auto& gang = gang_of(job);
    return std::find(gang.begin(), gang.end(), member) != gang.end();
  }

  // --- the job-list and job-end messages (job_files.hpp carries the files) ---
  int index_of(const nlohmann::json& id, int source) const {
    if (!id.is_string()) throw Error("rank " + std::to_string(source) + " sent a job id that is not text: " + id.dump());
    const auto it = index.find(id.get<std::string>());
    if (it == index.end())
      throw Error("rank " + std::to_string(source) + " sent job " + id.get<std::string>() +
                  ", which is not in this rank's job list");
    return it->second;
  }

  std::string encode_jobs(const std::vector<int>& jobs) const {
    auto list = nlohmann::json::array();
    for (int j : jobs) list.push_back(ids[static_cast<std::size_t>(j)]);
    return list.dump();
  }

  std::vector<int> decode_jobs(const std::string& bytes, int source) const {
    nlohmann::json list;
    try {
      list = nlohmann::json::parse(bytes);
    } catch (const nlohmann::json::exception& e) {
      throw Error("rank " + std::to_string(source) + " sent a job list that is not JSON (" + e.what() + ")");
    }
    if (!list.is_array()) throw Error("rank " + std::to_string(source) + " sent a job list that is not a list");
    std::vector<int> jobs;
    for (const auto& id : list) jobs.push_back(index_of(id, source));
    return jobs;
  }

  // I/O thread: reads the job's files.
  Buffer encode_end(int job, const JobRecord& record) const {
    return std::make_shared<const std::string>(encode_job_files(
        {{"job", ids[static_cast<std::size_t>(job)]}, {"record", record_to_json(record)}}, {&record, 1}, root));
  }

  // I/O thread: writes the job's files, then tells the runner.
  void decode_end(const std::string& bytes, int source) {
    const auto from = "a job end from rank " + std::to_string(source) + ": ";
    nlohmann::json header;
    try {
      header = decode_job_files(bytes, root);
    } catch (const Error& e) {
      throw Error(from + e.what());
    }
    const int job = index_of(header.contains("job") ? header["job"] : nlohmann::json(), source);
    JobRecord record;
    try {
      record = record_from_json(header.at("record"));
    } catch (const nlohmann::json::exception& e) {
      throw Error(from + "its record is damaged (" + e.what() + ")");
    }
    runner.ended_elsewhere(job, record);
  }

  // --- the I/O thread: file reads and writes, off the communication thread ---
  void io_loop() PACKTRAIN_EXCLUDES(mutex) {
    while (true) {
      std::optional<std::pair<int, JobRecord>> end;
      std::optional<Incoming> incoming;
      {
        MutexLock lock(mutex);
        while (to_encode.empty() && to_decode.empty() && !io_stop) io_wake.wait(mutex);
        if (!to_encode.empty()) {
          end = std::move(to_encode.front());
          to_encode.pop_front();
        } else if (!to_decode.empty()) {
          incoming = std::move(to_decode.front());
          to_decode.pop_front();
        } else {
          return;  // stopping, and nothing is left
        }
        io_busy = true;
      }
      Buffer buffer;
      std::string error;
      try {
        if (end) buffer = encode_end(end->first, end->second);
        else decode_end(incoming->bytes, incoming->source);
      } catch (const std::exception& e) {
        error = e.what();
      }
      MutexLock lock(mutex);
      io_busy = false;
      ++io_items_done;
      if (buffer) encoded.push_back({std::move(buffer), end->first});
      if (!error.empty() && io_error.empty()) io_error = error;
      comm_wake.notify_one();
      if (!error.empty()) return;  // the communication thread aborts every rank
    }
  }

  // --- communication thread only below ---
  template <typename F>
  void timed(F&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    stats.mpi_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  void send(int dest, int tag, Buffer buffer) {
    if (buffer->size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
      throw Error("a message of " + std::to_string(buffer->size()) + " bytes is too large for one MPI send");
    sends.push_back({MPI_REQUEST_NULL, buffer});
    auto& pending = sends.back();
    timed([&] {
      check_mpi(MPI_Issend(buffer->data(), static_cast<int>(buffer->size()), MPI_BYTE, dest, tag, MPI_COMM_WORLD,
                           &pending.request),
                "send");
    });
    stats.bytes_sent += static_cast<std::int64_t>(buffer->size());
  }

  void send_jobs(int dest, int tag, const std::vector<int>& jobs) {
    send(dest, tag, std::make_shared<const std::string>(encode_jobs(jobs)));
  }

  void hand_out_to_lifelines() {
    while (!lifelines.empty()) {
      const auto jobs = runner.give_away();
      if (jobs.empty()) return;
      const int dest = *lifelines.begin();
      lifelines.erase(lifelines.begin());
      stats.jobs_given += static_cast<int>(jobs.size());
      send_jobs(dest, kLifelineGift, jobs);
    }
  }

  void ask_for_work() {
    int victim = static_cast<int>(rng() % static_cast<unsigned>(size - 1));
    if (victim >= rank) ++victim;
    send(victim, kStealRequest, std::make_shared<const std::string>());
    ++stats.steal_requests_sent;
    request_outstanding = true;
  }

  void got_jobs(const std::vector<int>& jobs) {
    stats.jobs_received += static_cast<int>(jobs.size());
    failed_asks = 0;
    waiting_on_lifeline = false;
    runner.take(jobs);
  }

  bool handle_incoming() PACKTRAIN_EXCLUDES(mutex) {
    int flag = 0;
    MPI_Status status;
    timed([&] { check_mpi(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status), "probe"); });
    if (!flag) return false;
    const int source = status.MPI_SOURCE;
    int count = MPI_UNDEFINED;
    check_mpi(MPI_Get_count(&status, MPI_BYTE, &count), "message size");
    if (count < 0) throw Error("rank " + std::to_string(source) + " sent a message whose size in bytes MPI cannot tell");
    std::string bytes(static_cast<std::size_t>(count), '\0');
    timed([&] {
      check_mpi(MPI_Recv(bytes.data(), count, MPI_BYTE, source, status.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
                "receive");
    });
    switch (status.MPI_TAG) {
      case kStealRequest: {
        const auto jobs = runner.give_away();
        stats.jobs_given += static_cast<int>(jobs.size());
        send_jobs(source, kStealReply, jobs);
        break;
      }
      case kStealReply: {
        request_outstanding = false;
        const auto jobs = decode_jobs(bytes, source);
        if (!jobs.empty()) {
          ++stats.steals;
          got_jobs(jobs);
        } else if (++failed_asks >= kMaxFailedAsks) {
          for (int r = 0; r < size; ++r)
            if (r != rank) send(r, kLifeline, std::make_shared<const std::string>());
          stats.lifelines_sent += size - 1;
          waiting_on_lifeline = true;
        } else {
          want_more = true;  // try another victim
        }
        break;
      }
      case kLifeline:
        lifelines.insert(source);
        hand_out_to_lifelines();
        break;
      case kLifelineGift:
        got_jobs(decode_jobs(bytes, source));
        break;
      case kJobEnded: {
        MutexLock lock(mutex);
        to_decode.push_back({source, std::move(bytes)});
        io_wake.notify_one();
      }
        // A job ending anywhere may make work ready somewhere: ask again.
        if (waiting_on_lifeline) {
          waiting_on_lifeline = false;
          failed_asks = 0;
          want_more = true;
        }
        break;
      default:
        throw Error("rank " + std::to_string(source) + " sent a message with unknown tag " +
                    std::to_string(status.MPI_TAG));
    }
    return true;
  }

  void complete_sends() {
    for (auto it = sends.begin(); it != sends.end();) {
      int done = 0;
      timed([&] { check_mpi(MPI_Test(&it->request, &done, MPI_STATUS_IGNORE), "send completion"); });
      it = done ? sends.erase(it) : std::next(it);
    }
  }

  void comm_loop() PACKTRAIN_EXCLUDES(mutex) {
    try {
      bool barrier_started = false, barrier_done = false;
      MPI_Request barrier = MPI_REQUEST_NULL;
      while (true) {
        std::deque<Encoded> ends;
        bool fin = false, ends_unsent = false, io_idle = false;
        std::uint64_t io_seen = 0;
        {
          MutexLock lock(mutex);
          if (!io_error.empty()) throw Error(io_error);
          std::swap(ends, encoded);
          unsent_ends -= static_cast<int>(ends.size());
          ends_unsent = unsent_ends > 0;
          want_more |= want_work;
          want_work = false;
          if (work_ready) lifeline_check = true;
          work_ready = false;
          fin = finishing;
          io_idle = to_decode.empty() && !io_busy;
          io_seen = io_items_done;
        }
        if (barrier_done) {
          // Every message has arrived; the last job ends are being written.
          if (io_idle) return;
        } else {
          bool busy = !ends.empty();
          for (const auto& end : ends)
            for (int r = 0; r < size; ++r)
              if (r != rank && !in_gang(end.job, r)) send(r, kJobEnded, end.buffer);  // a gang's members ran it
          if (want_more && !request_outstanding && !waiting_on_lifeline && size > 1 && !fin) {
            want_more = false;
            ask_for_work();
            busy = true;
          }
          if (lifeline_check) {
            lifeline_check = false;
            hand_out_to_lifelines();
          }
          while (handle_incoming()) busy = true;
          complete_sends();
          if (fin) {
            // Every job end this rank owes is encoded and sent before the barrier.
            if (!barrier_started && !ends_unsent && sends.empty() && !request_outstanding) {
              timed([&] { check_mpi(MPI_Ibarrier(MPI_COMM_WORLD, &barrier), "barrier"); });
              barrier_started = true;
            }
            if (barrier_started) {
              int done = 0;
              timed([&] { check_mpi(MPI_Test(&barrier, &done, MPI_STATUS_IGNORE), "barrier"); });
              if (done) {
                // Every send was matched before the barrier could complete; finish them.
                for (auto& pending : sends) check_mpi(MPI_Wait(&pending.request, MPI_STATUS_IGNORE), "send completion");
                sends.clear();
                barrier_done = true;
                continue;
              }
            }
          }
          if (busy) continue;
        }
        // Nothing to do: sleep until the runner or the I/O thread has news,
        // or for a millisecond, to probe for messages again.
        MutexLock lock(mutex);
        if (encoded.empty() && !want_work && !work_ready && finishing == fin && io_error.empty() &&
            io_items_done == io_seen)
          comm_wake.wait_for(mutex, std::chrono::milliseconds(1));
      }
    } catch (const std::exception& e) {
      // The other ranks would wait forever for this rank's jobs: end the
      // whole run. (Not under `mutex`: the runner's hooks lock the runner
      // first, then `mutex`.)
      std::fprintf(stderr, "packtrain: rank %d: %s; aborting every rank\n", rank, e.what());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
  }

  MpiSession& session;
  JobRunner& runner;
  const std::filesystem::path root;
  const int rank, size;
  std::vector<int> first_owner;
  std::vector<std::string> ids;          // job index -> id; read-only after construction
  std::map<std::string, int> index;      // id -> job index; read-only after construction

  struct Incoming {
    int source = 0;
    std::string bytes;
  };
  Mutex mutex;
  CondVar io_wake;                         // the I/O thread waits here
  std::condition_variable_any comm_wake;   // the communication thread waits here (for at most 1 ms)
  std::deque<std::pair<int, JobRecord>> to_encode PACKTRAIN_GUARDED_BY(mutex);  // ends of jobs run here
  std::deque<Incoming> to_decode PACKTRAIN_GUARDED_BY(mutex);                 // kJobEnded messages received
  struct Encoded {
    Buffer buffer;
    int job = 0;
  };
  std::deque<Encoded> encoded PACKTRAIN_GUARDED_BY(mutex);                    // kJobEnded messages to send
  int unsent_ends PACKTRAIN_GUARDED_BY(mutex) = 0;      // posted by ended(), not yet taken by the comm thread
  bool io_busy PACKTRAIN_GUARDED_BY(mutex) = false;     // the I/O thread holds an item
  std::uint64_t io_items_done PACKTRAIN_GUARDED_BY(mutex) = 0;
  std::string io_error PACKTRAIN_GUARDED_BY(mutex);      // the I/O thread's first failure
  bool io_stop PACKTRAIN_GUARDED_BY(mutex) = false;
  bool want_work PACKTRAIN_GUARDED_BY(mutex) = false;
  bool work_ready PACKTRAIN_GUARDED_BY(mutex) = false;
  bool finishing PACKTRAIN_GUARDED_BY(mutex) = false;

  // Communication thread only:
  struct Send {
    MPI_Request request;
    Buffer buffer;
  };
  std::list<Send> sends;
  bool request_outstanding = false, waiting_on_lifeline = false, want_more = false, lifeline_check = false;
  int failed_asks = 0;
  std::set<int> lifelines;
  std::minstd_rand rng;
  SharingStats stats;
  std::thread io_thread, comm_thread;
};

MpiWorkSharing::MpiWorkSharing(MpiSession& session, JobRunner& runner, std::filesystem::path run_root,
                               std::function<int(int job)> first_owner)
    : impl_(std::make_unique<Impl>(session, runner, std::move(run_root), first_owner)) {}

MpiWorkSharing::~MpiWorkSharing() {
  if (impl_->comm_thread.joinable()) {
    impl_->post_flag(&Impl::finishing);
    impl_->comm_thread.join();
  }
  if (impl_->io_thread.joinable()) impl_->stop_io();
}

void MpiWorkSharing::finish() {
  impl_->post_flag(&Impl::finishing);
  impl_->comm_thread.join();
  impl_->stop_io();
}

SharingStats MpiWorkSharing::stats() const { return impl_->stats; }

bool MpiWorkSharing::starts_with(int job) {
  return impl_->gang_of(job).empty() ? impl_->first_owner[job] == impl_->rank : impl_->in_gang(job, impl_->rank);
}
void MpiWorkSharing::idle() { impl_->post_flag(&Impl::want_work); }
void MpiWorkSharing::ended(int job, const JobRecord& record) { impl_->post_ended(job, record); }
void MpiWorkSharing::work_available() { impl_->post_flag(&Impl::work_ready); }

}  // namespace packtrain::distributed
