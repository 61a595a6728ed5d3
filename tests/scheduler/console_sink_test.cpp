#include <packtrain/scheduler/console_sink.hpp>

#include "scheduler/runner_fixture.hpp"

#include <gtest/gtest.h>

#include <cstdio>

using namespace packtrain;
using packtrain::testing::sleeping_job;
using packtrain::testing::VirtualRun;

namespace {

std::string run_with_console(int live, bool quiet = false) {
  std::FILE* out = std::tmpfile();
  VirtualRun r(2);
  for (int i = 0; i < 3; ++i) {
    auto job = sleeping_job("job" + std::to_string(i), 1);
    job.run = [i](JobContext&) { return JobOutcome{.metrics = {{"val_top1", 0.5 + i * 0.1}}}; };
    r.runner->add(job);
  }
  auto bad = sleeping_job("bad", 1);
  bad.run = [](JobContext&) -> JobOutcome { throw std::runtime_error("no data"); };
  r.runner->add(bad);
  ConsoleSink sink(ConsoleOptions{.quiet = quiet, .live = live, .out = out, .metric = "val_top1"});
  r.options.sinks = {&sink};
  r.runner->run(r.options);
  std::string text(static_cast<std::size_t>(std::ftell(out)), '\0');
  std::rewind(out);
  text.resize(std::fread(text.data(), 1, text.size(), out));
  std::fclose(out);
  return text;
}

}  // namespace

TEST(ConsoleSink, PlainModePrintsOneLinePerEventAndASummary) {
  const auto text = run_with_console(0);
  EXPECT_NE(text.find("packtrain: 4 job(s) on 2 core(s)"), std::string::npos) << text;
  EXPECT_NE(text.find("started  job0 on core"), std::string::npos) << text;
  EXPECT_NE(text.find("finished job2 done val_top1 0.7000"), std::string::npos) << text;
  EXPECT_NE(text.find("failed   bad failed: no data"), std::string::npos) << text;
  EXPECT_NE(text.find("[4/4 "), std::string::npos) << text;
  EXPECT_NE(text.find("3 done, 1 failed"), std::string::npos) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos) << "no carriage returns in logs";
}

TEST(ConsoleSink, LiveModeRedrawsOneProgressLine) {
  const auto text = run_with_console(1);
  EXPECT_NE(text.find("\r\033[K[4/4] running 0  failed 1"), std::string::npos) << text;
  EXPECT_NE(text.find("failed   bad failed: no data\n"), std::string::npos) << text;
}

TEST(ConsoleSink, QuietPrintsNothing) { EXPECT_EQ(run_with_console(0, true), ""); }

TEST(ConsoleSink, FormatsDurations) {
  EXPECT_EQ(format_duration(12.4), "12s");
  EXPECT_EQ(format_duration(200), "3m20s");
  EXPECT_EQ(format_duration(3720), "1h02m");
}

TEST(ConsoleSink, SpeedLineSaysWhenThereWasNothingToRun) {
  RunSummary run;
  EXPECT_EQ(format_speedup(run, 2), "nothing to run: this share of the sweep holds none of its jobs");
  run.jobs.resize(3);
  run.resumed = 3;
  EXPECT_EQ(format_speedup(run, 2), "nothing to run: all 3 jobs were done before (--resume)");
  run.resumed = 1;
  run.interrupted = true;
  EXPECT_EQ(format_speedup(run, 2), "interrupted before any job ended");
  run.interrupted = false;
  run.makespan_s = 10;
  run.job_seconds = 19.9;
  EXPECT_EQ(format_speedup(run, 4, 2),
            "makespan 10s, jobs' own time 20s: 1.99x the speed of one job at a time on 4 cores (2 ranks)");
  EXPECT_EQ(format_speedup(run, 2), "makespan 10s, jobs' own time 20s: 1.99x the speed of one job at a time on 2 cores");
  EXPECT_EQ(format_speedup(run, 1),
            "makespan 10s, jobs' own time 20s: 1.99x the speed of one job at a time on 1 core: more than 1 core can "
            "give, so the cores were shared with other work (other processes, or ranks given the same cores)");
}
