// `packtrain report DIR` (cli/report_command.cpp, compiled into this binary:
// it needs no LibTorch) on run folders these tests make.
#include <packtrain/dashboard/rebuild.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/results.hpp>

#include "dashboard/dashboard_fixture.hpp"

#include <gtest/gtest.h>

#include <regex>

namespace packtrain::cli {
int report_command(int argc, char** argv);  // declared in cli/commands.hpp by the CLI's owner
}

using namespace packtrain;
using namespace packtrain::dashboard;
using namespace packtrain::testing;

namespace {

int report(std::vector<std::string> args) {
  args.insert(args.begin(), "report");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return cli::report_command(static_cast<int>(argv.size()), argv.data());
}

std::string error_of(std::vector<std::string> args) {
  try {
    report(std::move(args));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

TEST(ReportCommand, RebuildsEveryOutputFromTheJournal) {
  DashboardHarness h(4);
  add_standard_jobs(*h.run.runner);
  h.run_and_finish();
  h.journal->set_meta("summary", R"({"command":"kfold","done":10,"makespan_s":0.5})");
  h.journal->set_meta("columns", R"(["job","status","model","schedule","fold","epochs","val_top1","val_top5","val_loss","seconds","cores","rank"])");
  const auto original_report = read_file(h.dir / "report.html");
  for (const char* f : {"report.html", "trace.json", "results.csv", "results.json"}) std::filesystem::remove(h.dir / f);

  EXPECT_EQ(report({h.dir.path().string(), "--quiet"}), 0);

  const auto csv = read_file(h.dir / "results.csv");
  EXPECT_EQ(first_line(csv), "job,status,model,schedule,fold,epochs,val_top1,val_top5,val_loss,seconds,cores,rank");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 12);  // header + 11 jobs
  const auto json = read_json(h.dir / "results.json");
  ASSERT_TRUE(json.has_value());
  EXPECT_EQ((*json)["summary"]["makespan_s"], 0.5);  // the run's own summary
  EXPECT_EQ((*json)["jobs"].size(), 11u);

  const auto html = read_file(h.dir / "report.html");
  EXPECT_NE(html.find("id=\"job-count\">11<"), std::string::npos);
  // The rebuilt page shows the same cores, bars and table as the run's own.
  for (const char* pattern : {"class=\"core-track\"", "class=\"bar st-", "<tr data-status=", "<tr class=\"best\">"}) {
    const std::regex re(pattern);
    auto n = [&](const std::string& t) { return std::distance(std::sregex_iterator(t.begin(), t.end(), re), std::sregex_iterator()); };
    EXPECT_EQ(n(html), n(original_report)) << pattern;
  }

  const auto trace = read_json(h.dir / "trace.json");
  ASSERT_TRUE(trace.has_value());
  EXPECT_EQ(slices_of(*trace).size(), 13u);
  EXPECT_EQ((*trace)["otherData"]["rebuilt"], true);
  for (const auto& record : h.journal->records()) {
    int on_recorded_core = 0;
    for (const auto& s : slices_of(*trace))
      if (s["args"]["job"] == record.id && s["args"]["attempt"] == record.attempts && s["tid"] == record.cores.front())
        ++on_recorded_core;
    EXPECT_EQ(on_recorded_core, 1) << record.name;
  }
}

TEST(ReportCommand, WritesTheColumnsTheRunRecordedElseItsSweepKeys) {
  TempDir dir;
  {
    auto journal = Journal::open(dir / "journal.sqlite");
    journal->set_meta("command", "lth");
    journal->set_meta("plot_x", "sparsity");
    journal->set_meta("plot_series", "reset_epoch");
    journal->set_meta("plot_reference", "0.9");
    const nlohmann::json spec = {{"model", "mlp"}, {"sparsity", 0.8}, {"reset_epoch", 1}};
    journal->add_queued("aa", "mlp/s0.8/r1", spec);
    journal->mark_started("aa", 1, 100.0, {0}, 0);
    journal->mark_ended("aa", JobStatus::done, 1, 104.0, {{"val_top1", 0.87}}, "");
  }
  // A journal without `columns` (an older run): job, status, the plot keys, the metric, ...
  EXPECT_EQ(report({dir.path().string(), "--quiet"}), 0);
  EXPECT_EQ(first_line(read_file(dir / "results.csv")), "job,status,sparsity,reset_epoch,val_top1,seconds,cores,rank");
  // With the columns the run recorded: exactly those.
  Journal::open(dir / "journal.sqlite")->set_meta("columns", R"(["job","status","model","val_top1","seconds","sparsity","reset_epoch"])");
  EXPECT_EQ(report({dir.path().string(), "--quiet"}), 0);
  const auto csv = read_file(dir / "results.csv");
  EXPECT_EQ(first_line(csv), "job,status,model,val_top1,seconds,sparsity,reset_epoch");
  EXPECT_NE(csv.find("aa,done,mlp,0.87,4.000,0.8,1"), std::string::npos) << csv;
  const auto html = read_file(dir / "report.html");
  EXPECT_NE(html.find("id=\"metric-plot\""), std::string::npos);
  EXPECT_NE(html.find("id=\"job-count\">1<"), std::string::npos);
  EXPECT_NE(html.find("class=\"gantt-row\" data-gantt-core=\"0\""), std::string::npos);  // from the journal's attempt
  // No utilization.csv: no trace is made (and none was there to replace).
  EXPECT_FALSE(std::filesystem::exists(dir / "trace.json"));
  const auto json = read_json(dir / "results.json");
  ASSERT_TRUE(json.has_value());
  EXPECT_EQ((*json)["summary"]["done"], 1);  // counted from the journal
  EXPECT_EQ((*json)["summary"]["command"], "lth");
}

TEST(ReportCommand, BadInputIsAOneLineErrorAndTouchesNothing) {
  TempDir dir;
  const auto missing = error_of({(dir / "nope").string()});
  EXPECT_NE(missing.find("no run folder at"), std::string::npos) << missing;

  std::filesystem::create_directories(dir / "empty");
  const auto no_journal = error_of({(dir / "empty").string()});
  EXPECT_NE(no_journal.find("no journal at"), std::string::npos) << no_journal;
  EXPECT_TRUE(std::filesystem::is_empty(dir / "empty"));  // no journal was created, nothing written

  write_file(dir / "bad" / "journal.sqlite", std::string(4096, 'x'));
  const auto corrupt = error_of({(dir / "bad").string()});
  EXPECT_NE(corrupt.find("journal.sqlite"), std::string::npos) << corrupt;
  EXPECT_FALSE(std::filesystem::exists(dir / "bad" / "report.html"));
  EXPECT_FALSE(std::filesystem::exists(dir / "bad" / "results.csv"));

  EXPECT_NE(error_of({}).find("packtrain report DIR"), std::string::npos);
  EXPECT_NE(error_of({"--frobnicate"}).find("frobnicate"), std::string::npos);
  EXPECT_NE(error_of({"a", "b"}).find("see packtrain report --help"), std::string::npos);
  for (const auto& message : {missing, no_journal, corrupt}) EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(ReportCommand, HelpPrintsUsageAndSucceeds) {
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(report({"--help"}), 0);
  const auto out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("usage: packtrain report DIR"), std::string::npos);
  EXPECT_NE(out.find("--quiet"), std::string::npos);
}
