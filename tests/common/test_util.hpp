#pragma once
// Helpers shared by the test binaries.

#include <filesystem>
#include <string>
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
