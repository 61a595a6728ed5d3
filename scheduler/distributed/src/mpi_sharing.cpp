// The MPI implementation of work sharing (the protocol is in mpi_sharing.hpp).
#include <packtrain/distributed/mpi_sharing.hpp>

#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/results.hpp>

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <limits>
#include <list>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <thread>

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
  MPI_Error_string(rc, text, &len);
  throw Error(std::string("MPI ") + what + ": " + std::string(text, static_cast<std::size_t>(len)));
}

std::string read_whole(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read job artifact " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

bool launched_by_mpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_RANK");
}

bool mpi_available() { return true; }

MpiSession::MpiSession() {
  int provided = 0;
  check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "init");
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    throw Error("this MPI library does not support MPI_THREAD_SERIALIZED");
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "rank");
  check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &size_), "size");
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

std::string MpiSession::broadcast(const std::string& text) {
  long long n = static_cast<long long>(text.size());
  check_mpi(MPI_Bcast(&n, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD), "broadcast");
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

int MpiSession::sum(int value) {
  int total = 0;
  check_mpi(MPI_Allreduce(&value, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD), "allreduce");
  return total;
}

struct MpiWorkSharing::Impl {
  Impl(MpiSession& s, JobRunner& r, std::filesystem::path root, const std::function<int(int)>& deal)
      : session(s), runner(r), root(std::move(root)), rank(s.rank()), size(s.size()),
        rng(static_cast<unsigned>(s.rank()) * 7919u + 17u) {
    // Deal the jobs, longest first, round-robin over the ranks.
    const auto& jobs = runner.jobs();
    std::vector<int> order(jobs.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return jobs[a].cost > jobs[b].cost; });
    first_owner.resize(jobs.size());
    for (std::size_t p = 0; p < order.size(); ++p) first_owner[order[p]] = static_cast<int>(p % size);
    if (deal)
      for (std::size_t j = 0; j < jobs.size(); ++j) first_owner[j] = deal(static_cast<int>(j));
    thread = std::thread([this] { loop(); });
  }

  // --- called by the runner (its lock held): only queue and notify ---
  void post_ended(int job, const JobRecord& record) {
    std::lock_guard lock(mutex);
    ended_queue.emplace_back(job, record);
    cv.notify_one();
  }
  void post_flag(bool Impl::*flag) {
    std::lock_guard lock(mutex);
    this->*flag = true;
    cv.notify_one();
  }

  // --- communication thread only below ---
  template <typename F>
  void timed(F&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    stats.mpi_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  void send(int dest, int tag, std::shared_ptr<const std::vector<char>> buffer) {
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
    auto buffer = std::make_shared<std::vector<char>>(jobs.size() * sizeof(int));
    if (!jobs.empty()) std::memcpy(buffer->data(), jobs.data(), buffer->size());
    send(dest, tag, buffer);
  }

  std::vector<int> jobs_of(const std::vector<char>& bytes) {
    std::vector<int> jobs(bytes.size() / sizeof(int));
    if (!jobs.empty()) std::memcpy(jobs.data(), bytes.data(), jobs.size() * sizeof(int));
    return jobs;
  }

  void broadcast_ended(int job, const JobRecord& record) {
    nlohmann::json header{{"job", job}, {"record", record_to_json(record)}, {"files", nlohmann::json::array()}};
    std::string files;
    if (record.metrics.is_object() && record.metrics.contains("artifacts")) {
      for (const auto& path : record.metrics["artifacts"]) {
        const auto data = read_whole(root / path.get<std::string>());
        header["files"].push_back({{"path", path}, {"size", data.size()}});
        files += data;
      }
    }
    const auto text = header.dump();
    auto buffer = std::make_shared<std::vector<char>>(sizeof(std::uint32_t) + text.size() + files.size());
    const auto n = static_cast<std::uint32_t>(text.size());
    std::memcpy(buffer->data(), &n, sizeof(n));
    std::memcpy(buffer->data() + sizeof(n), text.data(), text.size());
    std::memcpy(buffer->data() + sizeof(n) + text.size(), files.data(), files.size());
    for (int r = 0; r < size; ++r)
      if (r != rank) send(r, kJobEnded, buffer);
  }

  void receive_ended(const std::vector<char>& bytes) {
    std::uint32_t n = 0;
    std::memcpy(&n, bytes.data(), sizeof(n));
    const auto header = nlohmann::json::parse(std::string(bytes.data() + sizeof(n), n));
    std::size_t offset = sizeof(n) + n;
    for (const auto& f : header["files"]) {
      const auto size_bytes = f["size"].get<std::size_t>();
      const auto path = root / f["path"].get<std::string>();
      std::filesystem::create_directories(path.parent_path());
      write_file_atomically(path, std::string(bytes.data() + offset, size_bytes));
      offset += size_bytes;
    }
    runner.ended_elsewhere(header["job"].get<int>(), record_from_json(header["record"]));
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
    send_jobs(victim, kStealRequest, {});
    ++stats.steal_requests_sent;
    request_outstanding = true;
  }

  void got_jobs(const std::vector<int>& jobs) {
    stats.jobs_received += static_cast<int>(jobs.size());
    failed_asks = 0;
    waiting_on_lifeline = false;
    runner.take(jobs);
  }

  bool handle_incoming() {
    int flag = 0;
    MPI_Status status;
    timed([&] { check_mpi(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status), "probe"); });
    if (!flag) return false;
    int count = 0;
    MPI_Get_count(&status, MPI_BYTE, &count);
    std::vector<char> bytes(static_cast<std::size_t>(count));
    timed([&] {
      check_mpi(MPI_Recv(bytes.data(), count, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE),
                "receive");
    });
    const int source = status.MPI_SOURCE;
    switch (status.MPI_TAG) {
      case kStealRequest: {
        const auto jobs = runner.give_away();
        stats.jobs_given += static_cast<int>(jobs.size());
        send_jobs(source, kStealReply, jobs);
        break;
      }
      case kStealReply: {
        request_outstanding = false;
        const auto jobs = jobs_of(bytes);
        if (!jobs.empty()) {
          ++stats.steals;
          got_jobs(jobs);
        } else if (++failed_asks >= kMaxFailedAsks) {
          for (int r = 0; r < size; ++r)
            if (r != rank) send_jobs(r, kLifeline, {});
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
        got_jobs(jobs_of(bytes));
        break;
      case kJobEnded:
        receive_ended(bytes);
        // A job ending anywhere may make work ready somewhere: ask again.
        if (waiting_on_lifeline) {
          waiting_on_lifeline = false;
          failed_asks = 0;
          want_more = true;
        }
        break;
      default:
        PACKTRAIN_CHECK(false, "unknown MPI tag " + std::to_string(status.MPI_TAG));
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

  void loop() {
    try {
      bool barrier_started = false;
      MPI_Request barrier = MPI_REQUEST_NULL;
      while (true) {
        std::deque<std::pair<int, JobRecord>> ended;
        bool fin;
        {
          std::lock_guard lock(mutex);
          std::swap(ended, ended_queue);
          want_more |= want_work;
          want_work = false;
          if (work_ready) lifeline_check = true;
          work_ready = false;
          fin = finishing;
        }
        bool busy = !ended.empty();
        for (const auto& [job, record] : ended) broadcast_ended(job, record);
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
          if (!barrier_started && sends.empty() && !request_outstanding) {
            timed([&] { check_mpi(MPI_Ibarrier(MPI_COMM_WORLD, &barrier), "barrier"); });
            barrier_started = true;
          }
          if (barrier_started) {
            int done = 0;
            timed([&] { check_mpi(MPI_Test(&barrier, &done, MPI_STATUS_IGNORE), "barrier"); });
            if (done) {
              // Every send was matched before the barrier could complete; finish them.
              for (auto& pending : sends) MPI_Wait(&pending.request, MPI_STATUS_IGNORE);
              sends.clear();
              return;
            }
          }
        }
        if (!busy) {
          std::unique_lock lock(mutex);
          cv.wait_for(lock, std::chrono::milliseconds(1),
                      [&] { return !ended_queue.empty() || want_work || work_ready || finishing != fin; });
        }
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
  std::filesystem::path root;
  const int rank, size;
  std::vector<int> first_owner;

  std::mutex mutex;
  std::condition_variable cv;
  std::deque<std::pair<int, JobRecord>> ended_queue;  // guarded by mutex
  bool want_work = false;                              // guarded by mutex
  bool work_ready = false;                             // guarded by mutex
  bool finishing = false;                              // guarded by mutex

  // Communication thread only:
  struct Send {
    MPI_Request request;
    std::shared_ptr<const std::vector<char>> buffer;
  };
  std::list<Send> sends;
  bool request_outstanding = false, waiting_on_lifeline = false, want_more = false, lifeline_check = false;
  int failed_asks = 0;
  std::set<int> lifelines;
  std::minstd_rand rng;
  SharingStats stats;
  std::thread thread;
};

MpiWorkSharing::MpiWorkSharing(MpiSession& session, JobRunner& runner, std::filesystem::path run_root,
                               std::function<int(int job)> first_owner)
    : impl_(std::make_unique<Impl>(session, runner, std::move(run_root), first_owner)) {}

MpiWorkSharing::~MpiWorkSharing() {
  if (impl_->thread.joinable()) {
    impl_->post_flag(&Impl::finishing);
    impl_->thread.join();
  }
}

void MpiWorkSharing::finish() {
  impl_->post_flag(&Impl::finishing);
  impl_->thread.join();
}

SharingStats MpiWorkSharing::stats() const { return impl_->stats; }

bool MpiWorkSharing::starts_with(int job) { return impl_->first_owner[job] == impl_->rank; }
void MpiWorkSharing::idle() { impl_->post_flag(&Impl::want_work); }
void MpiWorkSharing::ended(int job, const JobRecord& record) { impl_->post_ended(job, record); }
void MpiWorkSharing::work_available() { impl_->post_flag(&Impl::work_ready); }

}  // namespace packtrain::distributed
