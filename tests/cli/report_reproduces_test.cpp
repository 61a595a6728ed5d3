// `packtrain report DIR` rebuilds a run's files from its journal and the
// dashboard's files: what the run's end wrote (results.csv, results.json,
// report.html) comes back byte for byte, for every command, and trace.json
// comes back with the same slices (lent cores included).
#include "common/cli_run.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

using namespace packtrain::testing;

namespace {

const char* const kEndFiles[] = {"results.csv", "results.json", "report.html"};

struct Slice {
  std::string name;
  int tid = 0;
  long long ts = 0, dur = 0;  // ts from the first slice
};

// The job slices of trace.json ("ph": "X"), in time order.
std::vector<Slice> slices(const std::filesystem::path& trace) {
  const auto json = read_json_file(trace);
  std::vector<Slice> out;
  if (!json.is_object() || !json.contains("traceEvents")) return out;
  for (const auto& e : json["traceEvents"])
    if (e.value("ph", "") == "X")
      out.push_back({e.value("name", ""), e.value("tid", 0), e.value("ts", 0LL), e.value("dur", 0LL)});
  std::sort(out.begin(), out.end(), [](const Slice& a, const Slice& b) {
    return std::tie(a.ts, a.tid, a.name) < std::tie(b.ts, b.tid, b.name);
  });
  const long long zero = out.empty() ? 0 : out.front().ts;
  for (auto& s : out) s.ts -= zero;
  return out;
}

// Runs `args` into DIR/run, keeps what its end wrote, runs `report`, and
// compares.
void expect_report_reproduces(const std::vector<std::string>& args, const std::filesystem::path& out,
                              bool expect_lent = false) {
  const auto run = run_packtrain(args);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::map<std::string, std::string> written;
  for (const char* f : kEndFiles) written[f] = read_file(out / f);
  const auto live = slices(out / "trace.json");
  ASSERT_FALSE(live.empty());

  const auto report = run_packtrain({"report", out.string(), "-q"});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  EXPECT_EQ(report.out, "");  // -q: nothing but errors
  for (const char* f : kEndFiles) EXPECT_EQ(read_file(out / f), written[f]) << f << " differs after report";

  const auto rebuilt = slices(out / "trace.json");
  ASSERT_EQ(rebuilt.size(), live.size()) << "trace.json lost or gained slices";
  for (std::size_t i = 0; i < live.size(); ++i) {
    SCOPED_TRACE(live[i].name);
    EXPECT_EQ(rebuilt[i].name, live[i].name);
    EXPECT_EQ(rebuilt[i].tid, live[i].tid);
    EXPECT_NEAR(rebuilt[i].ts, live[i].ts, 1000);   // attempts.csv keeps microseconds
    EXPECT_NEAR(rebuilt[i].dur, live[i].dur, 1000);
  }
  const bool lent = std::any_of(rebuilt.begin(), rebuilt.end(),
                                [](const Slice& s) { return s.name.find("(lent)") != std::string::npos; });
  if (expect_lent) {
    EXPECT_TRUE(lent) << "no lent-core slice in the rebuilt trace";
  }
}

}  // namespace

TEST(ReportReproduces, KFoldRun) {
  TempDir dir;
  expect_report_reproduces({"kfold", "--models", "mlp", "--schedules", "cosine,warm", "--folds", "2", "--epochs", "1",
                            "--limit", "400", "--out", (dir / "run").string(), "--quiet"},
                           dir / "run");
  const auto [header, rows] = read_results_csv(dir / "run/results.csv");
  EXPECT_EQ(header, (std::vector<std::string>{"job", "status", "model", "schedule", "fold", "epochs", "val_top1",
                                              "val_top5", "val_loss", "seconds", "cores", "rank"}));
  EXPECT_EQ(rows.size(), 4u);
}

TEST(ReportReproduces, LotteryTicketRunKeepsItsColumns) {
  TempDir dir;
  expect_report_reproduces({"lth", "--model", "mlp", "--epochs", "2", "--reset-epochs", "0", "--sparsities", "0.5,0.8",
                            "--limit", "400", "--out", (dir / "run").string(), "--quiet"},
                           dir / "run");
  const auto header = read_results_csv(dir / "run/results.csv").first;
  for (const char* c : {"kind", "sparsity", "reset_epoch", "round", "test_top1", "weights_left"})
    EXPECT_NE(std::find(header.begin(), header.end(), c), header.end()) << c;
}

TEST(ReportReproduces, HogwildRunKeepsItsColumnsAndLentCores) {
  TempDir dir;
  const auto out = dir / "run";
  // Alone on the node, Hogwild is lent every core it does not own (when there are two or more).
  expect_report_reproduces({"hogwild", "--model", "mlp", "--epochs", "2", "--min-threads", "1", "--limit", "3000",
                            "--out", out.string(), "--quiet"},
                           out, /*expect_lent=*/false);
  const auto json = read_json_file(out / "results.json");
  const int node_cores = json["summary"].value("cores", 1);
  const auto rebuilt = slices(out / "trace.json");
  const bool lent = std::any_of(rebuilt.begin(), rebuilt.end(),
                                [](const Slice& s) { return s.name.find("(lent)") != std::string::npos; });
  EXPECT_EQ(lent, node_cores > 1) << "cores " << node_cores;
  const auto header = read_results_csv(out / "results.csv").first;
  EXPECT_EQ(header, (std::vector<std::string>{"job", "status", "model", "epochs", "test_top1", "test_loss",
                                              "samples_per_s", "peak_workers", "seconds", "cores", "rank"}));
}

TEST(ReportReproduces, TrainRun) {
  TempDir dir;
  expect_report_reproduces({"train", "--model", "mlp", "--epochs", "1", "--limit", "400", "--out",
                            (dir / "run").string(), "--quiet"},
                           dir / "run");
}

TEST(ReportReproduces, MergedLotteryTicketShardsKeepTheLotteryColumns) {
  TempDir dir;
  for (const char* shard : {"0/2", "1/2"}) {
    const auto r = run_packtrain({"lth", "--model", "mlp", "--epochs", "1", "--reset-epochs", "0", "--sparsities", "0.5",
                              "--limit", "400", "--shard", shard, "--out", (dir / (std::string("s") + shard[0])).string(),
                              "--quiet"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  const auto merged = run_packtrain({"report", "--merge", (dir / "s0").string(), (dir / "s1").string(), "--out",
                                 (dir / "all").string(), "--quiet"});
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  // The sweep is one dependency group: one shard ran it all, the other nothing.
  const auto all = read_results_csv(dir / "all/results.csv");
  EXPECT_EQ(all.first, read_results_csv(dir / "s0/results.csv").first);
  EXPECT_NE(std::find(all.first.begin(), all.first.end(), "sparsity"), all.first.end());
  EXPECT_EQ(all.second.size(),
            read_results_csv(dir / "s0/results.csv").second.size() + read_results_csv(dir / "s1/results.csv").second.size());
  EXPECT_EQ(all.second.size(), 2u);  // the dense job and one retrain
}
