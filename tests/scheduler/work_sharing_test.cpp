// Two runners in one process sharing jobs through the WorkSharing hooks,
// with a mailman thread standing in for the MPI communication thread.
#include <packtrain/scheduler/job_runner.hpp>

#include "scheduler/runner_fixture.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

using namespace packtrain;
using packtrain::testing::VirtualRun;

namespace {

// Carries messages between two runners, one at a time, on its own thread.
class Mailman {
 public:
  struct Side final : WorkSharing {
    Mailman* mail = nullptr;
    int me = 0;
    std::function<bool(int)> initial;
    bool starts_with(int job) override { return initial(job); }
    void idle() override { mail->post([this] { mail->steal(me); }); }
    void ended(int job, const JobRecord& record) override {
      mail->post([this, job, record] { mail->runners[1 - me]->ended_elsewhere(job, record); });
    }
  };

  Mailman() : thread_([this] { loop(); }) {}
  ~Mailman() {
    post({});
    thread_.join();
  }

  void post(std::function<void()> fn) {
    std::lock_guard lock(m_);
    q_.push_back(std::move(fn));
    cv_.notify_one();
  }

  void steal(int thief) {
    auto* victim = runners[1 - thief];
    const auto given = victim->give_away();
    if (given.empty()) {
      // The victim has not started yet: ask again. (The MPI layer instead
      // registers a lifeline and is handed work when some appears.)
      if (!victim->running()) post([this, thief] { steal(thief); });
      return;
    }
    ++steals;
    handed[thief].insert(given.begin(), given.end());
    runners[thief]->take(given);
  }

  JobRunner* runners[2] = {nullptr, nullptr};
  int steals = 0;             // mailman thread only; read after join
  std::set<int> handed[2];    // jobs each side was handed (a side that runs dry first steals back)

 private:
  void loop() {
    while (true) {
      std::function<void()> fn;
      {
        std::unique_lock lock(m_);
        cv_.wait(lock, [&] { return !q_.empty(); });
        fn = std::move(q_.front());
        q_.pop_front();
      }
      if (!fn) return;
      fn();
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
  std::thread thread_;
};

void add_jobs(JobRunner& runner, std::mutex& m, std::map<int, int>& runs, std::map<int, int>& where, int side) {
  for (int i = 0; i < 24; ++i) {
    Job job;
    job.name = "j" + std::to_string(i);
    job.spec = {{"i", i}};
    job.cost = 1 + i % 5;
    job.run = [&, i, side](JobContext&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(3 + i % 4));
      std::lock_guard lock(m);
      ++runs[i];
      where[i] = side;
      return JobOutcome{.metrics = {{"value", i}}};
    };
    runner.add(job);
  }
  // A chain across the list: 23 waits for 0, so a dependency may cross sides.
}

}  // namespace

TEST(WorkSharing, AnIdleRunnerStealsAndEveryJobRunsExactlyOnce) {
  VirtualRun a(1), b(1);
  std::mutex m;
  std::map<int, int> runs, where;
  add_jobs(*a.runner, m, runs, where, 0);
  add_jobs(*b.runner, m, runs, where, 1);
  RunSummary sa, sb;
  int steals = 0;
  std::set<int> handed_to_b;
  {
    Mailman mail;
    mail.runners[0] = a.runner.get();
    mail.runners[1] = b.runner.get();
    Mailman::Side side_a, side_b;
    side_a.mail = side_b.mail = &mail;
    side_a.me = 0;
    side_b.me = 1;
    side_a.initial = [](int) { return true; };   // a starts with every job
    side_b.initial = [](int) { return false; };  // b with none: it must steal
    a.options.sharing = &side_a;
    a.options.rank = 0;
    b.options.sharing = &side_b;
    b.options.rank = 1;
    std::thread tb([&] { sb = b.runner->run(b.options); });
    sa = a.runner->run(a.options);
    tb.join();
    mail.post([&] {
      steals = mail.steals;
      handed_to_b = mail.handed[1];
    });
  }
  ASSERT_EQ(runs.size(), 24u);
  for (const auto& [job, count] : runs) EXPECT_EQ(count, 1) << "job " << job;
  int on_b = 0;
  for (const auto& [job, side] : where) on_b += side;
  EXPECT_GT(steals, 0);
  EXPECT_GT(on_b, 0);
  EXPECT_LT(on_b, 24);
  // b started with nothing: everything it ran was handed to it.
  for (const auto& [job, side] : where) {
    if (side == 1) {
      EXPECT_EQ(handed_to_b.count(job), 1u) << "job " << job << " ran on b unasked";
    }
  }
  // Both runners end knowing every job's result, with the rank that ran it.
  for (const auto* s : {&sa, &sb}) {
    EXPECT_EQ(s->done, 24);
    EXPECT_EQ(s->exit_code(), 0);
    for (const auto& r : s->jobs) {
      const int i = std::stoi(r.name.substr(1));
      EXPECT_EQ(r.metrics["value"].get<int>(), i);
      EXPECT_EQ(r.rank, where[i]);
    }
  }
}

TEST(WorkSharing, DependentsWaitForAJobThatRanElsewhere) {
  VirtualRun a(1), b(1);
  std::mutex m;
  std::vector<std::string> order;
  auto add = [&](JobRunner& runner) {
    Job first;
    first.name = "first";
    first.spec = {{"n", 1}};
    first.run = [&](JobContext&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      std::lock_guard lock(m);
      order.push_back("first");
      return JobOutcome{};
    };
    const auto id = runner.add(first);
    Job second;
    second.name = "second";
    second.spec = {{"n", 2}};
    second.after = {id};
    second.run = [&](JobContext& ctx) {
      std::lock_guard lock(m);
      order.push_back("second@" + std::to_string(ctx.rank()));
      return JobOutcome{};
    };
    runner.add(second);
  };
  add(*a.runner);
  add(*b.runner);
  RunSummary sa, sb;
  {
    Mailman mail;
    mail.runners[0] = a.runner.get();
    mail.runners[1] = b.runner.get();
    Mailman::Side side_a, side_b;
    side_a.mail = side_b.mail = &mail;
    side_a.me = 0;
    side_b.me = 1;
    side_a.initial = [](int job) { return job == 0; };  // a runs "first"
    side_b.initial = [](int job) { return job == 1; };  // b owns "second"
    a.options.sharing = &side_a;
    b.options.sharing = &side_b;
    b.options.rank = 1;
    std::thread tb([&] { sb = b.runner->run(b.options); });
    sa = a.runner->run(a.options);
    tb.join();
  }
  EXPECT_EQ(order, (std::vector<std::string>{"first", "second@1"}));
  EXPECT_EQ(sa.done, 2);
  EXPECT_EQ(sb.done, 2);
}

// A job's end reported before run() begins releases its dependent once:
// it runs exactly once, and run() ends normally.
TEST(WorkSharing, AnEndReportedBeforeRunStartsReleasesItsDependentOnce) {
  struct NoSharing final : WorkSharing {
    bool starts_with(int job) override { return job == 1; }  // we own only the dependent
    void idle() override {}
    void ended(int, const JobRecord&) override {}
  } sharing;
  VirtualRun r(2);
  std::atomic<int> dependent_runs{0};
  Job first;
  first.name = "first";
  first.spec = {{"n", 1}};
  first.run = [](JobContext&) -> JobOutcome { throw std::runtime_error("runs elsewhere, never here"); };
  const auto id = r.runner->add(first);
  Job second;
  second.name = "second";
  second.spec = {{"n", 2}};
  second.after = {id};
  second.run = [&](JobContext&) {
    ++dependent_runs;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return JobOutcome{};
  };
  r.runner->add(second);
  JobRecord done;
  done.id = id;
  done.name = "first";
  done.status = JobStatus::done;
  done.rank = 1;
  r.runner->ended_elsewhere(0, done);  // before run()
  r.options.sharing = &sharing;
  const auto s = r.runner->run(r.options);
  EXPECT_EQ(dependent_runs.load(), 1);
  EXPECT_EQ(s.done, 2);
  EXPECT_EQ(s.jobs[0].rank, 1);
}
