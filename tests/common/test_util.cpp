#include "common/test_util.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace packtrain::testing {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "packtrain-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace packtrain::testing

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace packtrain::testing {
namespace {

[[noreturn]] void exec_child(const std::vector<std::string>& argv, int out_fd, int err_fd) {
  dup2(out_fd, STDOUT_FILENO);
  dup2(err_fd, STDERR_FILENO);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  _exit(127);
}

}  // namespace

int start_command(const std::vector<std::string>& argv, const std::filesystem::path& log) {
  const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + log.string());
  const pid_t pid = fork();
  if (pid == 0) exec_child(argv, fd, fd);
  close(fd);
  if (pid < 0) throw std::runtime_error("fork failed");
  return pid;
}

CommandResult wait_command(int pid) {
  CommandResult r;
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

CommandResult run_command(const std::vector<std::string>& argv) {
  TempDir dir;
  const auto out_path = dir / "out", err_path = dir / "err";
  const int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const pid_t pid = fork();
  if (pid == 0) exec_child(argv, out_fd, err_fd);
  close(out_fd);
  close(err_fd);
  auto r = wait_command(pid);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

}  // namespace packtrain::testing
