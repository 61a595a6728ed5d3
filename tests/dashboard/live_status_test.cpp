#include <packtrain/dashboard/live_status.hpp>

#include "dashboard/prometheus_parser.hpp"

#include <gtest/gtest.h>

#include <cmath>

using namespace packtrain;
using namespace packtrain::dashboard;
using packtrain::testing::Exposition;

namespace {

JobEvent event(EventKind kind, const std::string& id, std::vector<int> cores = {}, double cost = 0) {
  JobEvent e;
  e.kind = kind;
  e.job_id = id;
  e.name = "job " + id;
  e.cores = std::move(cores);
  e.cost = cost;
  e.attempt = 1;
  e.status = kind == EventKind::finished ? JobStatus::done : kind == EventKind::retried ? JobStatus::failed : JobStatus::running;
  return e;
}

}  // namespace

TEST(LiveStatus, CountsJobsByStateFromEvents) {
  LiveStatus live(0, {0, 1}, 250);
  live.run_start({.total_jobs = 5, .already_done = 1, .cores = {0, 1}, .total_cost = 40}, 100);
  for (const char* id : {"a", "b", "c", "d"}) live.event(event(EventKind::queued, id), 100);
  live.event(event(EventKind::started, "a", {0}, 10), 101);
  live.event(event(EventKind::started, "b", {1}, 10), 101);
  live.event(event(EventKind::retried, "b", {1}, 10), 102);
  live.event(event(EventKind::finished, "a", {0}, 10), 103);
  auto skipped = event(EventKind::skipped, "d");
  skipped.status = JobStatus::skipped;
  live.event(skipped, 103);
  const auto c = live.counts();
  EXPECT_EQ(c.total, 5);
  EXPECT_EQ(c.done, 2);  // a, and the resumed one
  EXPECT_EQ(c.queued, 2);  // b (retried) and c
  EXPECT_EQ(c.running, 0);
  EXPECT_EQ(c.skipped, 1);
  EXPECT_EQ(c.retried, 1);
  EXPECT_EQ(c.resumed, 1);
}

TEST(LiveStatus, EtaFollowsTheCostDoneSoFar) {
  LiveStatus live(0, {0}, 250);
  live.run_start({.total_jobs = 3, .cores = {0}, .total_cost = 30}, 100);
  EXPECT_FALSE(live.eta_seconds(104).has_value());  // nothing ended yet
  live.event(event(EventKind::started, "a", {0}, 10), 100);
  live.event(event(EventKind::finished, "a", {0}, 10), 105);
  // 10 of 30 cost units in 5 s: 20 left at 2 per second.
  ASSERT_TRUE(live.eta_seconds(105).has_value());
  EXPECT_DOUBLE_EQ(*live.eta_seconds(105), 10.0);
  EXPECT_DOUBLE_EQ(*live.eta_seconds(110), 20.0);  // slower than thought: 10 units in 10 s
  live.run_end(111);
  EXPECT_DOUBLE_EQ(*live.eta_seconds(200), 0.0);
  EXPECT_DOUBLE_EQ(live.elapsed_seconds(200), 11.0);  // frozen at the end
}

TEST(LiveStatus, StatusJsonShowsEachCoresJobAndHistory) {
  LiveStatus live(3, {4, 5}, 100, 3);
  live.set_command("kfold");
  live.run_start({.total_jobs = 1, .cores = {4, 5}, .total_cost = 1}, 10);
  live.event(event(EventKind::started, "w", {4, 5}, 1), 11);
  auto progress = event(EventKind::progress, "w");
  progress.data = {{"epoch", 1}, {"samples_per_s", 250.5}, {"replicas", 2}, {"sync_share", 0.125}};
  live.event(progress, 12);
  const std::vector<Series> series = {{SeriesKind::core_busy, 4}, {SeriesKind::core_busy, 5}, {SeriesKind::memory_mb, 0}};
  for (int i = 0; i < 5; ++i) live.sample(series, {.time = 11.0 + i, .values = {0.1 * i, 1.0, 500.0 + i}});
  const auto s = live.status_json(13);
  EXPECT_EQ(s["rank"], 3);
  EXPECT_EQ(s["state"], "running");
  EXPECT_EQ(s["command"], "kfold");
  EXPECT_EQ(s["jobs"]["running"], 1);
  ASSERT_EQ(s["cores"].size(), 2u);
  EXPECT_EQ(s["cores"][0]["core"], 4);
  EXPECT_NEAR(s["cores"][0]["busy"].get<double>(), 0.4, 1e-9);
  EXPECT_EQ(s["cores"][0]["history"].size(), 3u);  // the last 3 kept
  EXPECT_NEAR(s["cores"][0]["history"][0].get<double>(), 0.2, 1e-6);
  EXPECT_EQ(s["cores"][1]["job"]["name"], "job w");  // a 2-core job shows on both
  EXPECT_DOUBLE_EQ(s["cores"][1]["job"]["running_s"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(s["samples_per_s"].get<double>(), 250.5);
  EXPECT_DOUBLE_EQ(s["cores"][0]["job"]["replicas"].get<double>(), 2);  // a data-parallel job's sync cost
  EXPECT_DOUBLE_EQ(s["cores"][1]["job"]["sync_share"].get<double>(), 0.125);
  EXPECT_DOUBLE_EQ(s["memory_mb"].get<double>(), 504.0);
  EXPECT_TRUE(s["eta_s"].is_null());
}

TEST(LiveStatus, MetricsAreValidExpositionWithEscapedLabels) {
  LiveStatus live(0, {0}, 250);
  live.run_start({.total_jobs = 1, .cores = {0}, .total_cost = 1}, 0);
  auto start = event(EventKind::started, "x", {0}, 1);
  start.name = "a \"quoted\" \\ name\nwith newline";
  live.event(start, 0);
  auto progress = event(EventKind::progress, "x");
  progress.data = {{"samples_per_s", 12.5}};
  live.event(progress, 1);
  live.sample({{SeriesKind::core_busy, 0}, {SeriesKind::memory_mb, 0}, {SeriesKind::gpu_busy, 0}},
              {.time = 1, .values = {0.75, 2.0, 0.5}});
  const Exposition x(live.metrics_text(2, 0.125));
  EXPECT_EQ(x.value("packtrain_jobs", {{"state", "running"}}), 1);
  EXPECT_EQ(x.value("packtrain_core_busy_ratio", {{"core", "0"}}), 0.75);
  EXPECT_EQ(x.value("packtrain_resident_memory_bytes"), 2.0 * 1024 * 1024);
  EXPECT_EQ(x.value("packtrain_gpu_busy_ratio", {{"gpu", "0"}}), 0.5);
  EXPECT_EQ(x.value("packtrain_job_samples_per_second", {{"job", "x"}, {"name", start.name}}), 12.5);
  EXPECT_EQ(x.value("packtrain_dashboard_cpu_seconds_total"), 0.125);
  EXPECT_EQ(x.families().at("packtrain_dashboard_cpu_seconds_total").type, "counter");
  EXPECT_FALSE(x.has("packtrain_run_eta_seconds"));  // unknown until a job ends
}

TEST(LiveStatus, NumbersPrintAsPrometheusReadsThem) {
  EXPECT_EQ(prometheus_number(0.1), "0.1");
  EXPECT_EQ(prometheus_number(3), "3");
  EXPECT_EQ(prometheus_number(NAN), "NaN");
  EXPECT_EQ(prometheus_number(-INFINITY), "-Inf");
  EXPECT_EQ(prometheus_number(1e21), "1e+21");
}
