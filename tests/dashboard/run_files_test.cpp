#include <packtrain/dashboard/run_files.hpp>

#include "common/test_util.hpp"

#include <gtest/gtest.h>

using namespace packtrain;
using namespace packtrain::dashboard;
using packtrain::testing::read_file;
using packtrain::testing::TempDir;
using packtrain::testing::write_file;

namespace {

std::vector<std::pair<std::vector<Series>, Sample>> read_all(const std::filesystem::path& path) {
  std::vector<std::pair<std::vector<Series>, Sample>> rows;
  read_utilization(path, [&](const std::vector<Series>& series, const Sample& s) { rows.emplace_back(series, s); });
  return rows;
}

const Series kCpu0{SeriesKind::core_busy, 0};
const Series kCpu3{SeriesKind::core_busy, 3};
const Series kRss{SeriesKind::memory_mb, 0};

}  // namespace

TEST(RunFiles, ShortNumbersDropTrailingZeros) {
  EXPECT_EQ(short_number(0.5, 3), "0.5");
  EXPECT_EQ(short_number(1.0, 3), "1");
  EXPECT_EQ(short_number(0.0, 3), "0");
  EXPECT_EQ(short_number(-0.0001, 3), "0");
  EXPECT_EQ(short_number(0.97349, 3), "0.973");
  EXPECT_EQ(short_number(812.44, 1), "812.4");
  EXPECT_EQ(short_number(1716200000.25, 3), "1716200000.25");
}

TEST(RunFiles, CsvLinesSplitWithQuotes) {
  EXPECT_EQ(split_csv_line("a,b,,c"), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_EQ(split_csv_line("x,\"mlp,wide\",\"say \"\"hi\"\"\""), (std::vector<std::string>{"x", "mlp,wide", "say \"hi\""}));
}

TEST(RunFiles, UtilizationRowsReadBackWithTheirSeries) {
  TempDir dir;
  const auto path = dir / "utilization.csv";
  {
    UtilizationWriter w(path, {kCpu0, kCpu3, kRss});
    w.append({.time = 1000.25, .values = {0.5, 1.0, 812.44}});
    w.append({.time = 1000.5, .values = {0.12345, 0.0, 813.0}});
  }
  EXPECT_EQ(read_file(path), "time,cpu0,cpu3,rss_mb\n1000.25,0.5,1,812.4\n1000.5,0.123,0,813\n");
  const auto rows = read_all(path);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].first, (std::vector<Series>{kCpu0, kCpu3, kRss}));
  EXPECT_DOUBLE_EQ(rows[1].second.time, 1000.5);
  EXPECT_DOUBLE_EQ(rows[1].second.values[0], 0.123);
  EXPECT_DOUBLE_EQ(rows[0].second.values[2], 812.4);
}

TEST(RunFiles, AResumedRunAppendsAHeaderOnlyWhenItsSeriesDiffer) {
  TempDir dir;
  const auto path = dir / "utilization.csv";
  UtilizationWriter(path, {kCpu0, kRss}).append({.time = 1, .values = {0.25, 10}});
  UtilizationWriter(path, {kCpu0, kRss}).append({.time = 2, .values = {0.5, 11}});  // same series: no new header
  UtilizationWriter(path, {kCpu3, kCpu0, kRss}).append({.time = 3, .values = {1, 0.75, 12}});
  EXPECT_EQ(read_file(path), "time,cpu0,rss_mb\n1,0.25,10\n2,0.5,11\ntime,cpu3,cpu0,rss_mb\n3,1,0.75,12\n");
  const auto rows = read_all(path);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2].first, (std::vector<Series>{kCpu3, kCpu0, kRss}));
  EXPECT_DOUBLE_EQ(rows[2].second.values[1], 0.75);
}

TEST(RunFiles, TornLastLinesAreSkippedAndNeverGlueToTheNextRow) {
  TempDir dir;
  const auto path = dir / "utilization.csv";
  write_file(path, "time,cpu0,rss_mb\n1,0.25,10\n2,0.5");  // killed mid-row
  EXPECT_EQ(read_all(path).size(), 1u);
  UtilizationWriter(path, {kCpu0, kRss}).append({.time = 3, .values = {1, 12}});
  const auto rows = read_all(path);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_DOUBLE_EQ(rows[1].second.time, 3);
  EXPECT_FALSE(read_utilization(dir / "missing.csv", [](const auto&, const auto&) {}));
}

TEST(RunFiles, AttemptRowsRoundTrip) {
  TempDir dir;
  const auto path = dir / "attempts.csv";
  AttemptSpan a{.job_id = "00ff", .name = "mlp,wide/\"fold\"0", .attempt = 2, .status = JobStatus::failed,
                .start = 1716200000.125, .end = 1716200002.5, .cores = {3, 4}, .rank = 1};
  {
    AppendFile f(path);
    EXPECT_TRUE(f.empty_at_open());
    f.append(kAttemptsHeader);
    f.append(attempt_row(a));
    f.append("garbage,line\n");
  }
  EXPECT_FALSE(AppendFile(path).empty_at_open());
  const auto back = read_attempts(path);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].job_id, a.job_id);
  EXPECT_EQ(back[0].name, a.name);
  EXPECT_EQ(back[0].attempt, 2);
  EXPECT_EQ(back[0].status, JobStatus::failed);
  EXPECT_DOUBLE_EQ(back[0].start, a.start);
  EXPECT_DOUBLE_EQ(back[0].end, a.end);
  EXPECT_EQ(back[0].cores, a.cores);
  EXPECT_EQ(back[0].rank, 1);
  EXPECT_TRUE(read_attempts(dir / "missing.csv").empty());
}
