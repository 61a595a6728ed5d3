// packtrain: packs many training jobs onto every idle core of a node.
#include "commands.hpp"
#include "invocation.hpp"
#include "supervisor.hpp"

#include <packtrain/distributed/mpi_sharing.hpp>
#include <packtrain/scheduler/error.hpp>
#include <packtrain/train/blas.hpp>

#include <torch/version.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include <unistd.h>

namespace {

struct Subcommand {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
  bool supervised;  // trains: run in a child a parent restarts after a crash (cli/supervisor.hpp)
};

constexpr Subcommand kSubcommands[] = {
  {"kfold", packtrain::cli::kfold_command, "K-fold cross-validation: models x schedules x folds, packed", true},
    {"lth", packtrain::cli::lth_command, "lottery-ticket sweep: dense run, then masks x reset epochs, packed", true},
    {"hogwild", packtrain::cli::hogwild_command, "Hogwild: lock-free SGD workers on shared weights, growing onto idle cores", true},
    {"train", packtrain::cli::train_command, "train one model on all the cores it is given", true},
    {"batch", packtrain::cli::batch_command, "every entry of a plan (kfold, lth, hogwild runs) packed onto one run", true},
    {"report", packtrain::cli::report_command, "rebuild a run's report.html, results and trace from its journal", false},
    {"simulate", packtrain::cli::simulate_command, "predict a sweep's makespan on N nodes: the real placement policy in virtual time", false},
};

void print_usage(std::ostream& out) {
  out << "usage: packtrain <command> [options]   (packtrain <command> --help for its options)\n"
         "       packtrain --version                 (the version, and this build's LibTorch, MPI, CUDA and BLAS)\n\ncommands:\n";
  for (const auto& c : kSubcommands) out << "  " << c.name << std::string(10 - std::strlen(c.name), ' ') << c.summary << "\n";
}

// "packtrain 0.1.0" and what this build can use: LibTorch, MPI, CUDA.
void print_version() {
  const auto mpi = packtrain::distributed::mpi_version();
  std::cout << "packtrain " << PACKTRAIN_VERSION << "\n"
            << "  LibTorch " << TORCH_VERSION << "\n"
            << "  MPI      " << (mpi.empty() ? std::string("no (built without MPI)") : "yes (" + mpi + ")") << "\n"
            << "  CUDA     " << (PACKTRAIN_BUILD_HAS_CUDA ? "yes" : "no (LibTorch without CUDA)") << "\n";
  const auto core = packtrain::train::blas_core(), replaced = packtrain::train::blas_core_replaced();
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  std::string blas = "not OpenBLAS";
  if (!core.empty()) {
    blas = "OpenBLAS, " + core + " kernels";
    if (!replaced.empty())
      blas += " (chosen by packtrain: OpenBLAS picked " + replaced + " on its own; docs/cli.md)";
    else if (forced)
      blas += std::string(" (OPENBLAS_CORETYPE=") + forced + ")";
    else
      blas += " (OpenBLAS's own pick)";
  }
  std::cout << "  BLAS     " << blas << "\n";
}

// One write for the whole line: std::cerr is unbuffered, and under mpirun the
// ranks share one stderr, where pieces written separately interleave.
void print_error(const std::string& command, const std::string& what) {
  const std::string line = "packtrain " + command + ": error: " + what + "\n";
  std::cerr.flush();
  // A pipe takes up to PIPE_BUF bytes in one write whole.
  for (std::size_t at = 0; at < line.size();) {
    const auto n = ::write(STDERR_FILENO, line.data() + at, line.size() - at);
    if (n <= 0) break;
    at += static_cast<std::size_t>(n);
  }
}

}  // namespace

int main(int argc, char** argv) {
  packtrain::cli::remember_invocation(argc, argv);
  if (argc < 2) {
    print_usage(std::cerr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(std::cout);
    return 0;
  }
  if (name == "--version" || name == "-V") {
    print_version();
    return 0;
  }
  for (const auto& c : kSubcommands) {
    if (name != c.name) continue;
    // argv[0] is the program: the subcommand gets argv from its own name on.
    const auto run = [&c, &name](int n, char** args) {
      try {
        return c.run(n - 1, args + 1);
      } catch (const packtrain::Error& e) {
        print_error(name, e.what());
        return 2;
      } catch (const std::exception& e) {
        // Anything else escaping a subcommand is still reported on one line.
        std::string what = e.what();
        what = what.substr(0, what.find('\n'));
        print_error(name, what);
        return 2;
      }
    };
    // Before any thread exists: the supervising parent forks the run.
    return c.supervised ? packtrain::cli::run_supervised(argc, argv, run) : run(argc, argv);
  }
  std::cerr << "packtrain: unknown command '" << name << "' (see packtrain --help)\n";
  return 2;
}
