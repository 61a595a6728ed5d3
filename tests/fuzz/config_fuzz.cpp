// libFuzzer: a --config file (one 'key = value' a line), parsed the way
// every command parses it (cli/common_options.cpp), against the common
// options and one of each kind a command adds. Parsed or refused with
// packtrain::Error, never a crash.
#include "common_options.hpp"
#include "input_file.hpp"

#include <packtrain/scheduler/error.hpp>

#include <boost/program_options.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace po = boost::program_options;
  static const auto path = packtrain::fuzz::input_path("config", ".cfg");
  packtrain::fuzz::write_input(path, data, size);

  packtrain::cli::CommonOptions common;
  int folds = 5;
  double rate = 0.2;
  std::string models = "mlp";
  bool flag = false;
  po::options_description desc("fuzz");
  packtrain::cli::add_common_options(desc, common);
  desc.add_options()
    ("folds", po::value(&folds)->default_value(folds), "an int")
    ("rate", po::value(&rate)->default_value(rate), "a double")
    ("models", po::value(&models)->default_value(models), "a string")
    ("flag", po::bool_switch(&flag), "a switch");
  std::string config = path.string();
  char command[] = "kfold";
  char option[] = "--config";
  char* argv[] = {command, option, config.data(), nullptr};
  try {
    (void)packtrain::cli::parse_options(3, argv, desc, "fuzz", common);
    (void)common.flags.dump();
  } catch (const packtrain::Error&) {
  }
  return 0;
}
