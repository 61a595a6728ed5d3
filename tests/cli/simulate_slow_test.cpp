// The README's main job (`packtrain kfold` with its defaults: 20 jobs on
// every core), run for real, then `packtrain simulate --from` that run: the
// predicted makespan within 5% of the real one.
#include "common/cli_run.hpp"

#include <gtest/gtest.h>

#include <cmath>

using namespace packtrain::testing;

TEST(SimulateSlow, TheReadmesMainSweepIsPredictedWithinFivePercentFromItsOwnRun) {
  TempDir dir;
  // Unfused: simulate models each fold as a job of its own (README, docs/cli.md).
  const auto real = run_packtrain({"kfold", "--fuse", "off", "--out", (dir / "main").string(), "--quiet"});
  ASSERT_EQ(real.exit_code, 0) << real.err;
  const double real_makespan = read_json_file(dir / "main/results.json")["summary"]["makespan_s"].get<double>();
  const auto sim = run_packtrain({"simulate", "--from", (dir / "main").string(), "--out", (dir / "sim").string(), "--",
                                  "kfold"});
  ASSERT_EQ(sim.exit_code, 0) << sim.err;
  EXPECT_NE(sim.out.find("20 of 20 jobs by id"), std::string::npos) << sim.out;
  const double makespan = read_json_file(dir / "sim/simulation.json")["makespan_s"].get<double>();
  EXPECT_LT(std::abs(makespan - real_makespan) / real_makespan, 0.05)
      << "predicted " << makespan << " s, real " << real_makespan << " s";
}
