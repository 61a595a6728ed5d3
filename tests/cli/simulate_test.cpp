// packtrain simulate as a user runs it: the same jobs as the command, a
// prediction from an earlier run that matches that run's makespan, the
// calibrated prediction, its files, and the refusals.
#include "common/cli_run.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

using namespace packtrain::testing;

namespace {

const std::vector<std::string> kSweep = {"kfold", "--models", "mlp,lenet5", "--folds", "2", "--epochs", "1",
                                         "--limit", "4000", "--quiet"};

std::vector<std::string> with(std::vector<std::string> head, const std::vector<std::string>& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

}  // namespace

// Simulated --from a real run of the same sweep on the same cores: the
// predicted makespan is within 5% of the real one, every job is placed once,
// and the inner command's --out is neither created nor touched.
TEST(Simulate, FromARealRunPredictsItsMakespanWithinFivePercent) {
  TempDir dir;
  // Unfused: the simulation's folds are one job each (docs/cli.md).
  const auto real = run_packtrain(with(kSweep, {"--out", (dir / "real").string(), "--fuse", "off"}));
  ASSERT_EQ(real.exit_code, 0) << real.err;
  const auto summary = read_json_file(dir / "real/results.json")["summary"];
  const double real_makespan = summary["makespan_s"].get<double>();

  const auto sim = run_packtrain(with({"simulate", "--from", (dir / "real").string(), "--out", (dir / "sim").string(),
                                       "--", "kfold"},
                                      {"--models", "mlp,lenet5", "--folds", "2", "--epochs", "1", "--limit", "4000",
                                       "--out", (dir / "never").string()}));
  ASSERT_EQ(sim.exit_code, 0) << sim.err;
  EXPECT_NE(sim.out.find("8 of 8 jobs by id"), std::string::npos) << sim.out;
  const auto predicted = read_json_file(dir / "sim/simulation.json");
  ASSERT_TRUE(predicted.is_object());
  EXPECT_EQ(predicted["simulated"], true);
  const double makespan = predicted["makespan_s"].get<double>();
  EXPECT_LT(std::abs(makespan - real_makespan) / real_makespan, 0.05)
      << "predicted " << makespan << " s, real " << real_makespan << " s";
  // The jobs are the real run's: the same ids, each placed once.
  std::set<std::string> ids;
  for (const auto& a : predicted["attempts"]) EXPECT_TRUE(ids.insert(a["job"].get<std::string>()).second);
  EXPECT_EQ(ids.size(), results_by_id(dir / "real/results.csv").size());
  for (const auto& [id, row] : results_by_id(dir / "real/results.csv")) EXPECT_EQ(ids.count(id), 1u) << id;
  // The trace: a slice per job, marked simulated.
  const auto trace = read_json_file(dir / "sim/trace.json");
  ASSERT_TRUE(trace.is_object());
  EXPECT_EQ(trace["otherData"]["simulated"], true);
  int slices = 0;
  for (const auto& e : trace["traceEvents"]) slices += e["ph"] == "X" ? 1 : 0;
  EXPECT_EQ(slices, 8);
  EXPECT_FALSE(std::filesystem::exists(dir / "never"));
  // report.html: the simulated run's page, every job in its table.
  const auto report = read_file(dir / "sim/report.html");
  EXPECT_NE(report.find("kfold (simulated)"), std::string::npos);
  for (const auto& [id, row] : results_by_id(dir / "real/results.csv")) EXPECT_NE(report.find(id), std::string::npos) << id;
}

// Without --from: each model measured here, a prediction on 4 nodes with
// the work-sharing line; without stealing no job moves.
TEST(Simulate, WithoutFromItCalibratesOnThisMachineAndSimulatesSeveralNodes) {
  const auto r = run_packtrain({"simulate", "--nodes", "4", "--cores", "2", "--", "kfold", "--models", "mlp,lenet5",
                                "--folds", "4", "--epochs", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("16 job(s) of kfold on 4 node(s) x 2 core(s)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 model(s) measured in"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("predicted makespan"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("work sharing:"), std::string::npos) << r.out;
  const auto alone = run_packtrain({"simulate", "--nodes", "4", "--cores", "2", "--no-steal", "--", "kfold",
                                    "--models", "mlp,lenet5", "--folds", "4", "--epochs", "2"});
  ASSERT_EQ(alone.exit_code, 0) << alone.err;
  EXPECT_NE(alone.out.find("0 job(s) moved (no stealing)"), std::string::npos) << alone.out;
  // A GPU per node, lenet5 20x a core there, mlp left on the CPU: lenet5 jobs go to the slots.
  const auto gpus = run_packtrain({"simulate", "--nodes", "1", "--cores", "2", "--gpus", "1", "--gpu-speedup", "lenet5=20",
                                   "--", "kfold", "--models", "mlp,lenet5", "--folds", "4", "--epochs", "2"});
  ASSERT_EQ(gpus.exit_code, 0) << gpus.err;
  EXPECT_NE(gpus.out.find("on 2 core(s) and 1 GPU slot(s)"), std::string::npos) << gpus.out;
  EXPECT_NE(gpus.out.find("job(s) placed in a GPU slot"), std::string::npos) << gpus.out;
  EXPECT_EQ(gpus.out.find(" 0 of 16 job(s) placed in a GPU slot"), std::string::npos) << gpus.out;
}

TEST(Simulate, BadRequestsAreOneLineExit2) {
  TempDir dir;
  const std::vector<std::vector<std::string>> bad = {
      {"simulate", "--nodes", "2"},                                               // no command
      {"simulate", "--", "dance"},                                                // unknown command
      {"simulate", "--nodes", "0", "--", "kfold"},
      {"simulate", "--cores", "0", "--", "kfold"},
      {"simulate", "--latency-us", "-1", "--", "kfold"},
      {"simulate", "--from", (dir / "missing").string(), "--", "kfold", "--models", "mlp"},
      {"simulate", "--", "kfold", "--folds", "1"},                                // the command's own refusal
      {"simulate", "--cores", "2", "--", "kfold", "--cores-per-job", "3"},        // wider than a simulated node
      {"simulate", "--no-such-flag", "--", "kfold"},
      {"simulate", "--gpus", "2", "--", "kfold"},                                 // no speedup to simulate them with
      {"simulate", "--gpus", "1", "--gpu-speedup", "lenet5=fast", "--", "kfold"},
      {"simulate", "--gpu-speedup", "4", "--", "kfold"},                          // no --gpus
      {"simulate", "--elastic-efficiency", "2", "--", "kfold"},
  };
  for (const auto& argv : bad) {
    std::string joined;
    for (const auto& a : argv) joined += a + " ";
    const auto r = run_packtrain(argv);
    EXPECT_EQ(r.exit_code, 2) << joined << r.out << r.err;
    EXPECT_TRUE(one_line(r.err)) << joined << r.err;
    EXPECT_EQ(r.err.rfind("packtrain simulate: error: ", 0), 0u) << joined << r.err;
  }
}

TEST(Simulate, HelpDescribesEveryOption) {
  const auto r = run_packtrain({"simulate", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("usage: packtrain simulate [options] -- kfold|lth|hogwild|train"), std::string::npos) << r.out;
  for (const char* flag : {"--nodes", "--cores", "--from", "--latency-us", "--no-steal", "--out", "--seed", "--quiet",
                           "--gpus", "--gpu-slots", "--gpu-speedup", "--elastic-efficiency"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  EXPECT_NE(run_packtrain({"--help"}).out.find("simulate"), std::string::npos) << "packtrain --help lists it";
}

// An lth sweep (a dense job, then retrains that wait for it): the
// prediction --from its real run is within 5%, and every retrain starts
// after the dense job ends.
TEST(Simulate, AnLthSweepKeepsItsDependencies) {
  TempDir dir;
  const std::vector<std::string> sweep = {"lth", "--model", "mlp", "--epochs", "2", "--limit", "3000",
                                          "--sparsities", "0.5,0.8", "--reset-epochs", "0,1"};
  const auto real = run_packtrain(with(sweep, {"--out", (dir / "real").string(), "--quiet"}));
  ASSERT_EQ(real.exit_code, 0) << real.err;
  const double real_makespan = read_json_file(dir / "real/results.json")["summary"]["makespan_s"].get<double>();
  const auto sim = run_packtrain(with({"simulate", "--from", (dir / "real").string(), "--out", (dir / "sim").string(), "--"},
                                      sweep));
  ASSERT_EQ(sim.exit_code, 0) << sim.err;
  const auto predicted = read_json_file(dir / "sim/simulation.json");
  const double makespan = predicted["makespan_s"].get<double>();
  EXPECT_LT(std::abs(makespan - real_makespan) / real_makespan, 0.05)
      << "predicted " << makespan << " s, real " << real_makespan << " s";
  double dense_end = -1;
  std::vector<double> retrain_starts;
  for (const auto& a : predicted["attempts"]) {
    const std::string name = a["name"];
    if (name.find("dense") != std::string::npos) dense_end = a["end"].get<double>();
    else retrain_starts.push_back(a["start"].get<double>());
  }
  ASSERT_GE(dense_end, 0) << predicted.dump();
  ASSERT_EQ(retrain_starts.size(), 4u) << predicted.dump();
  for (const double s : retrain_starts) EXPECT_GE(s, dense_end);
}

// A sweep with an elastic Hogwild job (a batch of a kfold and a hogwild
// entry, which outlasts the folds and is lent the idle core): the
// prediction --from its real run is within 5%, the simulated Hogwild job is
// lent a core too.
TEST(Simulate, ASweepWithAnElasticHogwildJobIsPredictedWithinFivePercent) {
  TempDir dir;
  const auto plan = dir / "plan.toml";
  write_file(plan, R"(seed = 1
[[kfold]]
models = "mlp"
schedules = "cosine"
folds = 2
epochs = 1
limit = 3000

[[hogwild]]
model = "mlp"
epochs = 2
)");
  const auto real = run_packtrain({"batch", plan.string(), "--cores", "2", "--out", (dir / "real").string(), "--quiet"});
  ASSERT_EQ(real.exit_code, 0) << real.err;
  ASSERT_TRUE(std::filesystem::exists(dir / "real/lent.csv")) << "Hogwild was never lent a core: no elastic job to predict";
  const double real_makespan = read_json_file(dir / "real/results.json")["summary"]["makespan_s"].get<double>();
  const auto sim = run_packtrain({"simulate", "--from", (dir / "real").string(), "--out", (dir / "sim").string(), "--",
                                  "batch", plan.string(), "--cores", "2"});
  ASSERT_EQ(sim.exit_code, 0) << sim.err;
  EXPECT_NE(sim.out.find("3 of 3 jobs by id"), std::string::npos) << sim.out;
  const auto predicted = read_json_file(dir / "sim/simulation.json");
  const double makespan = predicted["makespan_s"].get<double>();
  EXPECT_LT(std::abs(makespan - real_makespan) / real_makespan, 0.05)
      << "predicted " << makespan << " s, real " << real_makespan << " s";
  bool lent = false;
  for (const auto& a : predicted["attempts"]) lent = lent || a.value("lent", false);
  EXPECT_TRUE(lent) << predicted.dump();
}
