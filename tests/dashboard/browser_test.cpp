// label browser: headless Chromium renders the live page of a running
// dashboard_driver, and a finished run's report.html, and the tests read
// the DOM it dumps. Without Chromium they fail: scripts/setup.sh installs it.
#include <packtrain/scheduler/resources.hpp>

#include "common/test_util.hpp"

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>
#include <set>
#include <string>
#include <vector>

extern char** environ;

using packtrain::testing::read_file;
using packtrain::testing::TempDir;

namespace {

// A child process with pipes to its stdin and from its stdout.
struct Child {
  pid_t pid = -1;
  int to_child = -1;    // its stdin, when piped
  int from_child = -1;  // its stdout, when piped

  // Closes its stdin and waits for it; returns its exit status (-1 if killed).
  int finish() {
    if (to_child >= 0) close(to_child);
    to_child = -1;
    int status = 0;
    waitpid(pid, &status, 0);
    if (from_child >= 0) close(from_child);
    from_child = -1;
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  ~Child() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      finish();
    }
  }
};

Child spawn(const std::vector<std::string>& args, bool pipe_stdin, const std::string& stderr_file) {
  int in[2] = {-1, -1}, out[2] = {-1, -1};
  if (pipe_stdin && pipe(in) != 0) throw std::runtime_error("pipe failed");
  if (pipe(out) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (pipe_stdin) {
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_addclose(&actions, in[1]);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  Child child;
  const int rc = posix_spawn(&child.pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (pipe_stdin) close(in[0]);
  close(out[1]);
  if (rc != 0) throw std::runtime_error("cannot start " + args[0]);
  child.to_child = pipe_stdin ? in[1] : -1;
  child.from_child = out[0];
  return child;
}

// One line of the child's stdout (blocking), without the newline; "" at EOF.
std::string read_line(int fd) {
  std::string line;
  char c;
  while (read(fd, &c, 1) == 1 && c != '\n') line += c;
  return line;
}

std::string read_all(int fd) {
  std::string text;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) text.append(buf, static_cast<std::size_t>(n));
  return text;
}

// Chromium's rendered DOM of `url`, after up to 5 s of (virtual) time for scripts.
std::string dump_dom(const std::string& url, const TempDir& scratch) {
  const std::string profile = (scratch / "chromium-profile").string();
  std::filesystem::create_directories(profile);
  // timeout(1) bounds a Chromium that hangs; the test then fails on an empty DOM.
  Child chromium = spawn({"/usr/bin/timeout", "60", PACKTRAIN_CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                          "--disable-quic", "--no-first-run", "--disable-background-networking",
                          "--disable-component-update", "--disable-sync", "--user-data-dir=" + profile,
                          "--virtual-time-budget=5000", "--dump-dom", url},
                         false, (scratch / "chromium.log").string());
  const std::string dom = read_all(chromium.from_child);
  EXPECT_EQ(chromium.finish(), 0) << read_file(scratch / "chromium.log");
  return dom;
}

std::set<int> core_tracks(const std::string& dom) {
  std::set<int> cores;
  const std::regex re(R"re(class="core-track" data-core="(\d+)")re");
  int n = 0;
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), re); it != std::sregex_iterator(); ++it, ++n)
    cores.insert(std::stoi((*it)[1]));
  EXPECT_EQ(static_cast<std::size_t>(n), cores.size()) << "a core has two tracks";
  return cores;
}

std::string job_count(const std::string& dom) {
  std::smatch m;
  return std::regex_search(dom, m, std::regex(R"(id="job-count">(\d+)<)")) ? m[1].str() : "";
}

// A TCP port nothing listens on now (the kernel's pick).
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw std::runtime_error("no free port");
  close(fd);
  return ntohs(addr.sin_port);
}

std::set<int> node_cores() {
  const auto cores = packtrain::detect_node_resources().cores;
  return {cores.begin(), cores.end()};
}

}  // namespace

TEST(Browser, LivePageShowsOneTrackPerCoreAndTheJobCount) {
  ASSERT_TRUE(std::filesystem::exists(PACKTRAIN_CHROMIUM)) << PACKTRAIN_CHROMIUM << " is missing: run scripts/setup.sh";
  TempDir dir;
  Child driver = spawn({PACKTRAIN_DASHBOARD_DRIVER, "--out", (dir / "run").string(), "--jobs", "6", "--job-ms", "2000",
                        "--serve"},
                       true, (dir / "driver.log").string());
  const std::string port_line = read_line(driver.from_child);
  const std::string cores_line = read_line(driver.from_child);
  ASSERT_EQ(port_line.rfind("port ", 0), 0u) << port_line << read_file(dir / "driver.log");
  const int port = std::stoi(port_line.substr(5));
  const int cores = std::stoi(cores_line.substr(6));

  const std::string dom = dump_dom("http://127.0.0.1:" + std::to_string(port) + "/", dir);
  // The page's script fetched /api/status and drew what it said.
  EXPECT_NE(dom.find("data-updated="), std::string::npos) << dom.substr(0, 2000);
  EXPECT_EQ(core_tracks(dom), node_cores());
  EXPECT_EQ(core_tracks(dom).size(), static_cast<std::size_t>(cores));
  EXPECT_EQ(job_count(dom), "6");
  EXPECT_EQ(dom.find("disconnected</span>"), std::string::npos);

  EXPECT_EQ(driver.finish(), 0) << read_file(dir / "driver.log");
  EXPECT_TRUE(std::filesystem::exists(dir / "run" / "report.html"));
}

// A live view with a token: the page opened with ?token= passes it on, and
// draws the run; opened without, the server answers 401 and shows nothing.
TEST(Browser, ALivePageWithATokenDrawsTheRunOnlyWhenOpenedWithIt) {
  ASSERT_TRUE(std::filesystem::exists(PACKTRAIN_CHROMIUM)) << PACKTRAIN_CHROMIUM << " is missing: run scripts/setup.sh";
  TempDir dir;
  const std::string token = "browser-token-0123456789";
  Child driver = spawn({PACKTRAIN_DASHBOARD_DRIVER, "--out", (dir / "run").string(), "--jobs", "6", "--job-ms", "2000",
                        "--serve", "--token", token},
                       true, (dir / "driver.log").string());
  const std::string port_line = read_line(driver.from_child);
  (void)read_line(driver.from_child);  // cores
  ASSERT_EQ(port_line.rfind("port ", 0), 0u) << port_line << read_file(dir / "driver.log");
  const std::string base = "http://127.0.0.1:" + port_line.substr(5) + "/";
  const std::string with = dump_dom(base + "?token=" + token, dir);
  EXPECT_NE(with.find("data-updated="), std::string::npos) << with.substr(0, 2000);
  EXPECT_EQ(job_count(with), "6");
  const std::string without = dump_dom(base, dir);
  EXPECT_EQ(without.find("data-updated="), std::string::npos) << without.substr(0, 2000);
  EXPECT_EQ(without.find("job-count"), std::string::npos) << "the page itself was served without the token";
  EXPECT_EQ(driver.finish(), 0) << read_file(dir / "driver.log");
}

TEST(Browser, ReportShowsOneTrackPerCoreTheJobCountAndItsScriptRuns) {
  ASSERT_TRUE(std::filesystem::exists(PACKTRAIN_CHROMIUM)) << PACKTRAIN_CHROMIUM << " is missing: run scripts/setup.sh";
  TempDir dir;
  Child driver = spawn({PACKTRAIN_DASHBOARD_DRIVER, "--out", (dir / "run").string(), "--jobs", "4", "--job-ms", "300",
                        "--fail"},
                       false, (dir / "driver.log").string());
  read_all(driver.from_child);
  ASSERT_EQ(driver.finish(), 0) << read_file(dir / "driver.log");

  const std::string dom = dump_dom("file://" + (dir / "run" / "report.html").string(), dir);
  EXPECT_NE(dom.find("data-ready=\"1\""), std::string::npos) << "the report's script did not run";
  EXPECT_EQ(core_tracks(dom), node_cores());
  EXPECT_EQ(job_count(dom), "4");
  const std::regex gantt(R"(class="gantt-row" data-gantt-core="\d+")");
  EXPECT_EQ(static_cast<std::size_t>(std::distance(std::sregex_iterator(dom.begin(), dom.end(), gantt), std::sregex_iterator())),
            node_cores().size());
  EXPECT_NE(dom.find("class=\"bar st-failed\""), std::string::npos);  // the first attempt of the retried job
  EXPECT_NE(dom.find("id=\"sweep-table\""), std::string::npos);
}

#ifdef PACKTRAIN_CLI_PATH
// A real data-parallel job (packtrain train --cores 2, two replicas): once it
// reported an epoch, the live view shows its replicas and the share of their
// time spent reducing and waiting.
TEST(Browser, LivePageShowsADataParallelJobsReplicasAndSyncShare) {
  ASSERT_TRUE(std::filesystem::exists(PACKTRAIN_CHROMIUM)) << PACKTRAIN_CHROMIUM << " is missing: run scripts/setup.sh";
  TempDir dir;
  const int port = free_port();
  Child train = spawn({PACKTRAIN_CLI_PATH, "train", "--model", "lenet5", "--cores", "2", "--epochs", "40", "--limit",
                       "3000", "--serve", std::to_string(port), "--out", (dir / "run").string()},
                      false, (dir / "train.log").string());
  std::string line;
  do line = read_line(train.from_child);
  while (!line.empty() && line.rfind("epoch ", 0) != 0);
  ASSERT_EQ(line.rfind("epoch ", 0), 0u) << "no epoch reported: " << read_file(dir / "train.log");
  const std::string dom = dump_dom("http://127.0.0.1:" + std::to_string(port) + "/", dir);
  EXPECT_TRUE(std::regex_search(dom, std::regex(R"(2 replicas · sync \d+%)"))) << dom.substr(0, 4000);
  kill(train.pid, SIGINT);  // Ctrl-C: the job is cancelled, the run's files written
  read_all(train.from_child);
  EXPECT_EQ(train.finish(), 130) << read_file(dir / "train.log");
}
#endif
