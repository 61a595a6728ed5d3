#pragma once
// Child processes for the benches, in one place: running a packtrain (or
// mpirun) command to its end, and CPU-bound busy loops that compete with a
// bench for the cores.
//
//   auto r = packtrain::bench::run_packtrain("/path/packtrain", "kfold", out, {"--folds", "4"}, /*serial=*/false);
//   if (!r.ok()) ...;                        // r.wall_s, r.max_rss_mb
//
//   packtrain::bench::BusyProcesses load(2);  // two `while (true) {}` children
//   ...                                       // measure under load
//   // killed and reaped when `load` goes out of scope
#include <filesystem>
#include <string>
#include <vector>

#include <sys/types.h>

namespace packtrain::bench {

struct ProcessResult {
  int exit_code = -1;      // the exit status, or -1 when a signal ended it
  double wall_s = 0;       // from fork to its end
  double max_rss_mb = 0;   // its peak resident memory
  bool ok() const { return exit_code == 0; }
};

// Runs argv[0] (a path, not looked up in PATH) with `argv`, its stdout sent
// to /dev/null unless `keep_stdout`; waits for it to end.
ProcessResult run_process(const std::vector<std::string>& argv, bool keep_stdout = false);

// `packtrain SUBCOMMAND --out OUT --quiet EXTRA... [--serial]`, run in a
// fresh OUT (removed first) by run_process.
ProcessResult run_packtrain(const std::string& packtrain, const std::string& subcommand,
                            const std::filesystem::path& out, const std::vector<std::string>& extra, bool serial);

// `count` child processes, each spinning on the CPU until this object is
// destroyed (SIGKILL, then reaped). The children also die with the bench
// (PR_SET_PDEATHSIG), so a crashed bench leaves no busy loop behind.
// Pins the calling thread to the CPU it runs on (a packed job's one core)
// and returns that CPU. Set LibTorch's intra-op threads to 1 after it.
int pin_to_this_cpu();

class BusyProcesses {
 public:
  explicit BusyProcesses(int count);
  ~BusyProcesses();
  BusyProcesses(const BusyProcesses&) = delete;
  BusyProcesses& operator=(const BusyProcesses&) = delete;

  int count() const { return static_cast<int>(pids_.size()); }

 private:
  std::vector<pid_t> pids_;
};

}  // namespace packtrain::bench
