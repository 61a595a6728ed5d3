#include <packtrain/dashboard/report.hpp>
#include <packtrain/scheduler/error.hpp>

#include "dashboard/dashboard_fixture.hpp"

#include <gtest/gtest.h>

#include <regex>

using namespace packtrain;
using namespace packtrain::dashboard;
using namespace packtrain::testing;

namespace {

JobRecord record(const std::string& id, nlohmann::json spec, JobStatus status, nlohmann::json metrics) {
  JobRecord r;
  r.id = id;
  r.name = id;
  r.spec = std::move(spec);
  r.status = status;
  r.metrics = std::move(metrics);
  r.started_at = 1000;
  r.ended_at = 1010;
  r.cores = {0};
  return r;
}

int count(const std::string& text, const std::string& pattern) {
  const std::regex re(pattern);
  return static_cast<int>(std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator()));
}

std::string job_count(const std::string& html) {
  std::smatch m;
  std::regex_search(html, m, std::regex(R"(id="job-count">(\d+)<)"));
  return m.size() > 1 ? m[1].str() : "";
}

// An lth-like sweep: masks x reset epochs, one job each (two for one point).
std::vector<JobRecord> lth_records() {
  std::vector<JobRecord> jobs;
  int i = 0;
  for (int reset : {0, 2})
    for (double sparsity : {0.5, 0.9}) {
      const double top1 = 0.9 - sparsity * 0.1 + reset * 0.01;
      jobs.push_back(record("j" + std::to_string(i++), {{"sparsity", sparsity}, {"reset_epoch", reset}}, JobStatus::done,
                            {{"val_top1", top1}}));
    }
  jobs.push_back(record("j9", {{"sparsity", 0.9}, {"reset_epoch", 2}}, JobStatus::done, {{"val_top1", 0.83}}));
  return jobs;
}

}  // namespace

TEST(Report, GroupStatsAreMeanAndSampleStdOfDoneJobs) {
  const std::vector<JobRecord> jobs = {
      record("a", {{"model", "mlp"}, {"fold", 0}}, JobStatus::done, {{"val_top1", 0.8}}),
      record("b", {{"model", "mlp"}, {"fold", 1}}, JobStatus::done, {{"val_top1", 0.9}}),
      record("c", {{"model", "mlp"}, {"fold", 2}}, JobStatus::failed, {{"val_top1", 0.1}}),  // not done: left out
      record("d", {{"model", "cnn"}, {"fold", 0}}, JobStatus::done, {{"val_top1", 0.95}}),
      record("e", {{"fold", 0}}, JobStatus::done, {{"val_top1", 0.99}}),  // no model: in no group
      record("f", {{"model", "rnn"}}, JobStatus::done, {{"val_loss", 0.5}}),  // no metric
  };
  const auto groups = group_stats(jobs, {"model"}, "val_top1");
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0].key, (nlohmann::json{{"model", "mlp"}}));
  EXPECT_EQ(groups[0].jobs, 3);
  EXPECT_EQ(groups[0].measured, 2);
  EXPECT_DOUBLE_EQ(groups[0].mean, 0.85);
  EXPECT_NEAR(groups[0].std, std::sqrt(0.005), 1e-12);
  EXPECT_FALSE(groups[0].best);
  EXPECT_TRUE(groups[1].best);  // cnn
  EXPECT_EQ(groups[1].std, 0.0);
  EXPECT_TRUE(std::isnan(groups[2].mean));

  const auto lower = group_stats(jobs, {"model"}, "val_top1", false);
  EXPECT_TRUE(lower[0].best);
  EXPECT_TRUE(group_stats(jobs, {}, "val_top1").empty());
}

TEST(Report, SweepMetaReadsTheJournalsTextValues) {
  const auto s = SweepMeta::from_json({{"command", "lth"}, {"group_by", R"(["sparsity","reset_epoch"])"},
                                       {"metric", "val_loss"}, {"plot_x", "sparsity"}, {"plot_series", "reset_epoch"},
                                       {"plot_reference", "0.8912"}});
  EXPECT_EQ(s.command, "lth");
  EXPECT_EQ(s.group_by, (std::vector<std::string>{"sparsity", "reset_epoch"}));
  EXPECT_FALSE(s.higher_is_better);  // a loss
  EXPECT_EQ(s.plot_x, "sparsity");
  EXPECT_DOUBLE_EQ(*s.plot_reference, 0.8912);
  EXPECT_TRUE(SweepMeta::from_json({{"metric", "val_loss"}, {"metric_goal", "max"}}).higher_is_better);
  EXPECT_THROW(SweepMeta::from_json({{"group_by", "model"}}), Error);
  EXPECT_THROW(SweepMeta::from_json({{"plot_reference", "dense"}}), Error);
  EXPECT_THROW(SweepMeta::from_json({{"metric_goal", "up"}}), Error);

  TempDir dir;
  auto journal = Journal::open(dir / "journal.sqlite");
  journal->set_meta("group_by", R"(["model"])");
  journal->set_meta("command", "kfold");
  const auto j = SweepMeta::from_journal(*journal);
  EXPECT_EQ(j.group_by, (std::vector<std::string>{"model"}));
  EXPECT_EQ(j.metric, "val_top1");
  EXPECT_TRUE(j.plot_x.empty());
}

TEST(Report, UtilizationIsAveragedOverTheIntervalsSamplesMeasure) {
  UtilizationBinner binner(100, 110, 5);  // buckets of 2 s
  const std::vector<Series> series = {{SeriesKind::core_busy, 1}, {SeriesKind::memory_mb, 0}};
  binner.add(series, {.time = 100.5, .values = {0.2, 10}});  // the first: one bucket's width, [98.5, 100.5]
  binner.add(series, {.time = 101.5, .values = {0.4, 30}});  // [100.5, 101.5]
  binner.add(series, {.time = 103.5, .values = {1.0, 20}});  // [101.5, 103.5]: half in bucket 0, the rest in 1
  const auto chart = binner.chart();
  EXPECT_EQ(chart.samples, 3);
  ASSERT_EQ(chart.tracks.size(), 2u);
  EXPECT_EQ(chart.tracks[0].series, series[0]);
  // Bucket 0 holds the first sample's 2 s at 0.2 (nothing is dropped at the chart's edges), 1 s at 0.4, 0.5 s at 1.
  EXPECT_NEAR(chart.tracks[0].buckets[0], (0.2 * 2 + 0.4 + 0.5) / 3.5, 1e-12);
  EXPECT_DOUBLE_EQ(chart.tracks[0].buckets[1], 1.0);
  EXPECT_TRUE(std::isnan(chart.tracks[0].buckets[2]));
  EXPECT_TRUE(std::isnan(chart.tracks[0].buckets[4]));
  EXPECT_NEAR(chart.tracks[0].mean, (0.2 * 2 + 0.4 * 1 + 1.0 * 2) / 5, 1e-12);
  EXPECT_DOUBLE_EQ(chart.tracks[1].peak, 30.0);

  // After a gap longer than a sample can span, a sample covers one bucket only.
  UtilizationBinner gap(0, 1000, 10);
  gap.add(series, {.time = 150, .values = {1, 1}});
  gap.add(series, {.time = 900, .values = {1, 1}});  // 750 s later: covers [800, 900]
  const auto g = gap.chart();
  EXPECT_DOUBLE_EQ(g.tracks[0].buckets[1], 1.0);
  for (int b = 2; b <= 7; ++b) EXPECT_TRUE(std::isnan(g.tracks[0].buckets[b])) << b;
  EXPECT_DOUBLE_EQ(g.tracks[0].buckets[8], 1.0);
}

TEST(Report, PageHasATrackPerCoreTheJobCountAndTheBestGroup) {
  ReportInput in;
  in.title = "run-1";
  in.sweep = SweepMeta::from_json({{"command", "kfold"}, {"group_by", R"(["model"])"}});
  in.jobs = {record("a", {{"model", "mlp"}}, JobStatus::done, {{"val_top1", 0.8}}),
             record("b", {{"model", "cnn"}}, JobStatus::done, {{"val_top1", 0.9}}),
             record("c", {{"model", "cnn"}}, JobStatus::failed, nlohmann::json::object())};
  in.jobs[2].message = "boom <script>";
  in.attempts = {{.job_id = "a", .name = "a", .status = JobStatus::done, .start = 1000, .end = 1005, .cores = {0}},
                 {.job_id = "b", .name = "b", .status = JobStatus::done, .start = 1000, .end = 1010, .cores = {2, 3}},
                 {.job_id = "c", .name = "c", .status = JobStatus::failed, .start = 1005, .end = 1006, .cores = {0}}};
  UtilizationBinner binner(1000, 1010, 50);
  for (int t = 0; t < 10; ++t)
    binner.add({{SeriesKind::core_busy, 0}, {SeriesKind::core_busy, 2}, {SeriesKind::core_busy, 3}, {SeriesKind::memory_mb, 0}},
               {.time = 1000.5 + t, .values = {1, 0.5, 0.5, 100}});
  in.utilization = binner.chart();
  in.cores = {0, 1, 2, 3};  // core 1 ran nothing and has no samples: still a track
  const auto html = render_report_html(in);

  for (int core = 0; core < 4; ++core) {
    EXPECT_EQ(count(html, "class=\"core-track\" data-core=\"" + std::to_string(core) + "\""), 1) << core;
    EXPECT_EQ(count(html, "class=\"gantt-row\" data-gantt-core=\"" + std::to_string(core) + "\""), 1) << core;
  }
  EXPECT_EQ(count(html, "class=\"core-track\""), 4);
  EXPECT_EQ(job_count(html), "3");
  EXPECT_EQ(count(html, "class=\"bar st-done\""), 3);  // b on two cores
  EXPECT_EQ(count(html, "class=\"bar st-failed\""), 1);
  EXPECT_EQ(count(html, "<tr class=\"best\"><td>cnn</td>"), 1);
  EXPECT_EQ(count(html, "class=\"memory-track\""), 1);
  EXPECT_NE(html.find("boom &lt;script&gt;"), std::string::npos);  // escaped
  EXPECT_EQ(html.find("boom <script>"), std::string::npos);
  EXPECT_EQ(html.find("id=\"metric-plot\""), std::string::npos);  // no plot_x: no plot
  EXPECT_EQ(html.find("src="), std::string::npos);                // self-contained
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
  EXPECT_NE(html.find("100%"), std::string::npos);  // core 0's mean
}

TEST(Report, LinePlotHasOneLinePerSeriesAndTheReference) {
  ReportInput in;
  in.sweep = SweepMeta::from_json({{"command", "lth"}, {"group_by", R"(["reset_epoch","sparsity"])"},
                                   {"plot_x", "sparsity"}, {"plot_series", "reset_epoch"}, {"plot_reference", 0.91}});
  in.jobs = lth_records();
  const auto html = render_report_html(in);
  ASSERT_NE(html.find("id=\"metric-plot\""), std::string::npos);
  EXPECT_EQ(count(html, "class=\"series\" data-series=\"[0-9]+\""), 2);
  EXPECT_EQ(count(html, "<circle cx=\"[0-9.]+\" cy=\"[0-9.]+\" r=\"3.5\">"), 4);  // 2 resets x 2 sparsities
  EXPECT_NE(html.find("reference 0.9100"), std::string::npos);
  EXPECT_NE(html.find("reset_epoch = 2"), std::string::npos);
  EXPECT_EQ(count(html, "<tr class=\"best\">"), 1);
  EXPECT_EQ(report_columns({"job"}, in.sweep), (std::vector<std::string>{"job", "reset_epoch", "sparsity"}));
}

TEST(Report, RunDashboardWritesTheReportOfARealRun) {
  DashboardHarness h(4);
  add_standard_jobs(*h.run.runner);
  h.run_and_finish();
  const auto html = read_file(h.dir / "report.html");
  for (int core = 0; core < 4; ++core)
    EXPECT_EQ(count(html, "class=\"core-track\" data-core=\"" + std::to_string(core) + "\""), 1) << core;
  EXPECT_EQ(job_count(html), "11");
  EXPECT_EQ(count(html, "class=\"bar st-"), 13);  // 12 attempts, one on 2 cores
  EXPECT_EQ(count(html, "class=\"bar st-failed\""), 2);  // broken, and flaky's first attempt
  EXPECT_EQ(count(html, "<tr class=\"best\"><td>lenet5</td><td>cosine</td>"), 1);
  EXPECT_EQ(count(html, "<tr data-status=\""), 11);  // the results table
  EXPECT_NE(html.find("boom on attempt 1"), std::string::npos);  // broken's message
  // The samples the report was drawn from are in the folder for a rebuild.
  int rows = 0;
  read_utilization(h.dir / "utilization.csv", [&](const auto&, const auto&) { ++rows; });
  EXPECT_GT(rows, 0);
  EXPECT_EQ(read_attempts(h.dir / "attempts.csv").size(), 12u);
}
