// examples/python_model, run as its README says: the Python script writes a
// TorchScript model and NumPy arrays, and `packtrain kfold` trains the model
// on them. Registered only where /usr/bin/python3 imports torch and numpy.
#include "common/test_util.hpp"
#include "packtrain_paths.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

using packtrain::testing::read_file;
using packtrain::testing::run_command;
using packtrain::testing::TempDir;

namespace {

// results.csv as rows of cells, the header first (no cell holds a comma).
std::vector<std::vector<std::string>> read_csv(const std::filesystem::path& path) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream lines(read_file(path));
  for (std::string line; std::getline(lines, line);) {
    std::vector<std::string> cells;
    std::istringstream cols(line);
    for (std::string cell; std::getline(cols, cell, ',');) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

std::size_t column(const std::vector<std::string>& header, const std::string& name) {
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return i;
  ADD_FAILURE() << "results.csv has no column " << name;
  return 0;
}

}  // namespace

TEST(PythonExample, PackTrainTrainsTheScriptedModelOnTheSavedArrays) {
  TempDir dir;
  const auto out = dir / "python_model";
  const auto made = run_command({PACKTRAIN_PYTHON, PACKTRAIN_PYTHON_EXAMPLE, out.string(), "--limit", "2000"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_NE(made.out.find("packtrain kfold --models " + out.string() + "/net.pt"), std::string::npos) << made.out;

  // 3 epochs on 1,000 samples a fold: about 0.73 top-1 (1 epoch: 0.55 to 0.64, too close to the bar).
  const auto run = dir / "run";
  const auto r = run_command({PACKTRAIN_CLI, "kfold", "--models", (out / "net.pt").string(), "--data",
                              (out / "arrays").string(), "--folds", "2", "--epochs", "3", "--out", run.string(),
                              "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(run / "report.html"));

  const auto rows = read_csv(run / "results.csv");
  ASSERT_EQ(rows.size(), 5u) << read_file(run / "results.csv");  // header + 2 schedules x 2 folds
  const auto model = column(rows[0], "model");
  const auto status = column(rows[0], "status");
  const auto top1 = column(rows[0], "val_top1");
  for (std::size_t i = 1; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), rows[0].size());
    EXPECT_EQ(rows[i][model], "net");  // the file's stem
    EXPECT_EQ(rows[i][status], "done");
    EXPECT_GT(std::stod(rows[i][top1]), 0.5) << "a trained model is far above chance (0.1)";
  }
}
