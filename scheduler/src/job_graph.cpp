#include <packtrain/scheduler/job_graph.hpp>

#include <packtrain/scheduler/error.hpp>

namespace packtrain {

JobGraph::JobGraph(std::vector<Node> nodes) {
  jobs_.resize(nodes.size());
  for (std::size_t j = 0; j < nodes.size(); ++j) jobs_[j].node = std::move(nodes[j]);
  for (int j = 0; j < size(); ++j) {
    auto& e = jobs_[j];
    if (e.node.done_before || e.node.crashed_before) {
      e.state = State::ended;
      e.status = e.node.done_before ? JobStatus::done : JobStatus::crashed;
      ++ended_;
    }
    for (int d : e.node.after) {
      PACKTRAIN_CHECK(d >= 0 && d < size(), "JobGraph: a dependency out of range");
      jobs_[d].dependents.push_back(j);
      if (!jobs_[d].node.done_before) ++e.waiting_on;
    }
    for (int f : e.node.follows) {
      PACKTRAIN_CHECK(f >= 0 && f < size(), "JobGraph: a job followed out of range");
      jobs_[f].followers.push_back(j);
      if (!jobs_[f].node.done_before && !jobs_[f].node.crashed_before) ++e.waiting_on;
    }
  }
  // Before any job is made ready: a skipped job never is.
  Ended at_start;
  for (int j = 0; j < size(); ++j)
    if (jobs_[j].node.crashed_before && !jobs_[j].node.done_before) skip_dependents(j, at_start);
  skipped_at_start_ = std::move(at_start.skipped);
  for (int j = 0; j < size(); ++j)
    if (jobs_[j].state == State::waiting && jobs_[j].waiting_on == 0 && jobs_[j].node.owned) make_ready(j);
}

JobGraph::Ended JobGraph::add(std::vector<Node> nodes) {
  const int first = size();
  for (auto& n : nodes) {
    Entry e;
    e.node = std::move(n);
    if (e.node.done_before || e.node.crashed_before) {
      e.state = State::ended;
      e.status = e.node.done_before ? JobStatus::done : JobStatus::crashed;
      ++ended_;
    }
    jobs_.push_back(std::move(e));
  }
  std::vector<std::pair<int, int>> blocked;  // (job, its dependency that ended other than done)
  for (int j = first; j < size(); ++j) {
    for (int d : jobs_[j].node.after) {
      PACKTRAIN_CHECK(d >= 0 && d < size(), "JobGraph::add: a dependency out of range");
      jobs_[d].dependents.push_back(j);
      if (jobs_[d].state != State::ended) ++jobs_[j].waiting_on;
      else if (jobs_[d].status != JobStatus::done) blocked.emplace_back(j, d);
    }
    for (int f : jobs_[j].node.follows) {
      PACKTRAIN_CHECK(f >= 0 && f < size(), "JobGraph::add: a job followed out of range");
      jobs_[f].followers.push_back(j);
      if (jobs_[f].state != State::ended) ++jobs_[j].waiting_on;
    }
  }
  Ended ended;
  for (const auto& [j, because] : blocked) {
    auto& e = jobs_[j];
    if (e.state == State::ended) continue;
    e.state = State::ended;
    e.status = JobStatus::skipped;
    ++ended_;
    ended.skipped.emplace_back(j, because);
    release_followers(j, ended);
    skip_dependents(j, ended);
  }
  for (int j = first; j < size(); ++j)
    if (jobs_[j].node.crashed_before && !jobs_[j].node.done_before) skip_dependents(j, ended);
  for (int j = first; j < size(); ++j)
    if (jobs_[j].state == State::waiting && jobs_[j].waiting_on == 0 && jobs_[j].node.owned) {
      make_ready(j);
      ended.released.push_back(j);
    }
  return ended;
}

std::vector<int> JobGraph::ready() const {
  std::vector<int> jobs;
  jobs.reserve(ready_.size());
  for (const auto& [cost, j] : ready_) jobs.push_back(j);
  return jobs;
}

void JobGraph::make_ready(int j) {
  jobs_[j].state = State::ready;
  ready_.emplace(jobs_[j].node.cost, j);
}

void JobGraph::unready(int j) {
  if (jobs_[j].state != State::ready) return;
  ready_.erase({jobs_[j].node.cost, j});
  jobs_[j].state = State::waiting;
}

int JobGraph::start(int j) {
  PACKTRAIN_CHECK(jobs_[j].state == State::ready, "JobGraph::start: the job is not ready");
  unready(j);
  jobs_[j].state = State::running;
  ++running_;
  return ++jobs_[j].attempts;
}

JobGraph::Ended JobGraph::end(int j, JobStatus status, bool may_retry) {
  auto& e = jobs_[j];
  PACKTRAIN_CHECK(e.state == State::running, "JobGraph::end: the job is not running");
  --running_;
  Ended ended;
  if (status == JobStatus::failed && may_retry && e.attempts <= e.node.retries) {
    ended.retried = true;
    make_ready(j);  // it ran here, so it is ours
    return ended;
  }
  finish(j, status, ended);
  return ended;
}

std::optional<JobGraph::Ended> JobGraph::end_elsewhere(int j, JobStatus status) {
  auto& e = jobs_[j];
  if (e.state == State::ended || e.state == State::running) return std::nullopt;
  unready(j);
  e.node.owned = false;
  Ended ended;
  finish(j, status, ended);
  return ended;
}

void JobGraph::finish(int j, JobStatus status, Ended& ended) {
  jobs_[j].state = State::ended;
  jobs_[j].status = status;
  ++ended_;
  release_followers(j, ended);
  if (status != JobStatus::done) {
    skip_dependents(j, ended);  // failed, diverged, cancelled or skipped: dependents cannot run
    return;
  }
  for (int d : jobs_[j].dependents) count_down(d, ended);
}

void JobGraph::count_down(int d, Ended& ended) {
  auto& dep = jobs_[d];
  if (--dep.waiting_on == 0 && dep.state == State::waiting && dep.node.owned) {
    make_ready(d);
    ended.released.push_back(d);
  }
}

void JobGraph::release_followers(int j, Ended& ended) {
  for (int f : jobs_[j].followers) count_down(f, ended);
}

void JobGraph::skip_dependents(int j, Ended& ended) {
  for (int d : jobs_[j].dependents) {
    auto& dep = jobs_[d];
    if (dep.state == State::ended) continue;
    PACKTRAIN_CHECK(dep.state != State::running, "JobGraph: a dependent ran before its dependency ended");
    unready(d);
    dep.state = State::ended;
    dep.status = JobStatus::skipped;
    ++ended_;
    ended.skipped.emplace_back(d, j);
    release_followers(d, ended);
    skip_dependents(d, ended);
  }
}

std::vector<int> JobGraph::give_away() {
  std::vector<int> given;
  bool give = false;
  for (auto it = ready_.begin(); it != ready_.end();) {
    if (jobs_[it->second].node.pinned) {
      ++it;
      continue;
    }
    if (give) {
      const int j = it->second;
      given.push_back(j);
      jobs_[j].state = State::waiting;
      jobs_[j].node.owned = false;
      it = ready_.erase(it);
    } else {
      ++it;
    }
    give = !give;
  }
  return given;
}

int JobGraph::take(const std::vector<int>& jobs) {
  int ready = 0;
  for (int j : jobs) {
    auto& e = jobs_[j];
    e.node.owned = true;
    if (e.state == State::waiting && e.waiting_on == 0) {
      make_ready(j);
      ++ready;
    }
  }
  return ready;
}

}  // namespace packtrain
