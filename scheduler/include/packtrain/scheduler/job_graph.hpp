#pragma once
// The jobs of one run and what stands between them: dependencies, retries,
// who owns a job (work sharing) and where each job is in its life.
//
//   queued (waiting on dependencies, or ready) -> running -> ended
//                 ^--------- retried ------------'
//
// It knows jobs by their index, nothing about threads, cores or files, and
// never calls anyone: the runner (or a simulator) tells it what happened
// and carries out what it answers (DESIGN.md decision 11). Not thread-safe:
// the runner holds its lock around every call.
//
//   JobGraph graph({{.cost = 5}, {.after = {0}, .cost = 1}});
//   graph.ready();                 // {0}
//   graph.start(0);                // attempt 1
//   auto end = graph.end(0, JobStatus::done, /*may_retry=*/true);
//   end.released;                  // {1}: ready now
#include <packtrain/scheduler/job.hpp>

#include <optional>
#include <set>
#include <utility>
#include <vector>

namespace packtrain {

class JobGraph {
 public:
  struct Node {
    std::vector<int> after;    // indices of the jobs it waits for
    std::vector<int> follows;  // indices of jobs it starts after, once ended whatever their status (order only)
    double cost = 1.0;         // longest first
    int retries = 0;           // extra attempts after a failure
    bool done_before = false;  // done in an earlier run (resume): counts as ended, done
    // Recorded `crashed` in an earlier run (two crashes of its process while
    // it ran, DESIGN.md decision 13): counts as ended, crashed, and is never
    // run again; its dependents are skipped from the start.
    bool crashed_before = false;
    bool owned = true;         // this process runs it (work sharing may move it)
    bool pinned = false;       // never given away (a gang job)
  };

  // What ending a job changed.
  struct Ended {
    bool retried = false;                      // back in the ready queue for another attempt
    std::vector<int> released;                 // dependents that became ready here
    // Dependents that can no longer run, each with the job whose end
    // skipped it (the ended job, or a dependent skipped before it).
    std::vector<std::pair<int, int>> skipped;  // (job, because of)
  };

  JobGraph() = default;
  // Throws nothing: dependencies are checked (known, acyclic) by the caller.
  explicit JobGraph(std::vector<Node> nodes);

  // Jobs added while the graph is in use (Job::then), at indices size()...:
  // they may depend on any job, ended or not, and on each other (no cycle:
  // the caller checks). A job whose dependency has ended other than done
  // is skipped at once (in the answer, with its dependents), as are the
  // dependents of a job crashed before; those ready at once are released.
  Ended add(std::vector<Node> nodes);

  // The jobs the constructor skipped because a job crashed before
  // (Node::crashed_before), each with the job whose end skipped it, for the
  // caller to record as it records Ended::skipped.
  const std::vector<std::pair<int, int>>& skipped_at_start() const { return skipped_at_start_; }

  int size() const { return static_cast<int>(jobs_.size()); }
  // Ready jobs owned here, longest first (ties: lower index first).
  std::vector<int> ready() const;
  int ready_count() const { return static_cast<int>(ready_.size()); }
  int running() const { return running_; }
  int ended() const { return ended_; }
  bool all_ended() const { return ended_ == size(); }

  bool is_ended(int job) const { return jobs_[job].state == State::ended; }
  bool is_running(int job) const { return jobs_[job].state == State::running; }
  // The final status of an ended job (done for jobs done before).
  JobStatus status(int job) const { return jobs_[job].status; }
  int attempts(int job) const { return jobs_[job].attempts; }

  // A ready job starts; returns its attempt (1 for the first).
  int start(int job);
  // A running job's function returned `status` (done, failed, diverged or
  // cancelled). A failure is retried while attempts remain and `may_retry`
  // (false once a stop was asked for); otherwise the job has ended: a done
  // job releases its dependents, any other status skips them (and theirs).
  Ended end(int job, JobStatus status, bool may_retry);
  // One more attempt for a running job, not counted against its retries
  // (its GPU ran out of memory: it runs again elsewhere). Then end() it.
  void grant_retry(int job) { ++jobs_[job].node.retries; }
  // Another process ran `job` to `status`. Nothing (no value) when the job
  // has ended already or is running here: such an end is ignored.
  std::optional<Ended> end_elsewhere(int job, JobStatus status);

  // Work sharing: every other ready job that is not pinned, longest first,
  // which stops being ours (both sides keep a mix of long and short jobs).
  std::vector<int> give_away();
  // Jobs handed to us (valid indices); those with nothing to wait for
  // become ready. Returns how many became ready.
  int take(const std::vector<int>& jobs);

 private:
  enum class State { waiting, ready, running, ended };
  struct Entry {
    Node node;
    State state = State::waiting;
    JobStatus status = JobStatus::queued;
    int waiting_on = 0;          // dependencies not yet done, and jobs followed not yet ended
    int attempts = 0;
    std::vector<int> dependents;
    std::vector<int> followers;  // jobs that follow this one (Node::follows)
  };
  struct Longer {
    bool operator()(const std::pair<double, int>& a, const std::pair<double, int>& b) const {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    }
  };
  void make_ready(int job);
  void unready(int job);
  void finish(int job, JobStatus status, Ended& ended);
  void skip_dependents(int job, Ended& ended);
  void release_followers(int job, Ended& ended);
  void count_down(int job, Ended& ended);

  std::vector<Entry> jobs_;
  std::set<std::pair<double, int>, Longer> ready_;  // (cost, job), longest first
  int running_ = 0;
  int ended_ = 0;
  std::vector<std::pair<int, int>> skipped_at_start_;
};

}  // namespace packtrain
