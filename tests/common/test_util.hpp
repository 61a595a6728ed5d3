#pragma once
// Helpers shared by the test binaries.

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace packtrain::testing {

// A fresh folder under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Writes `text` to `path` (creating parent folders).
void write_file(const std::filesystem::path& path, const std::string& text);

// Reads a whole file.
std::string read_file(const std::filesystem::path& path);

// For what another process does (a file it writes, its CPU time, its exit),
// which nothing in this process can be notified of: checks `done` every
// 10 ms until it holds or `limit` has passed. Returns whether it held.
template <typename Done>
bool wait_until(Done&& done, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace packtrain::testing

namespace packtrain::testing {

struct CommandResult {
  int exit_code = -1;  // -1 if it did not exit normally
  int signal = 0;      // the signal that ended it, if any
  std::string out;     // what it printed on stdout
  std::string err;     // and on stderr
};

// Runs `argv` (argv[0] is a path) to completion, capturing its output.
CommandResult run_command(const std::vector<std::string>& argv);

// Starts `argv` in the background with stdout and stderr going to `log`;
// returns its pid (for kill + wait_command).
int start_command(const std::vector<std::string>& argv, const std::filesystem::path& log);
CommandResult wait_command(int pid);

}  // namespace packtrain::testing
