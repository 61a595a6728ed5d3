#include <packtrain/dashboard/live_server.hpp>
#include <packtrain/dashboard/run_dashboard.hpp>
#include <packtrain/scheduler/error.hpp>

#include "dashboard/dashboard_fixture.hpp"
#include "dashboard/prometheus_parser.hpp"

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

using namespace packtrain;
using namespace packtrain::dashboard;
using namespace packtrain::testing;

namespace {

// GET through httplib's client, the path sent exactly as written.
httplib::Result get(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_url_encode(false);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  return client.Get(path.c_str());
}

}  // namespace

TEST(LiveServer, MetricsAndStatusMatchTheRun) {
  DashboardHarness h(3, DashboardOptions().serve_port(0));
  const int port = h.dash->port();
  ASSERT_GT(port, 0);
  EXPECT_EQ(h.dash->url(), "http://127.0.0.1:" + std::to_string(port) + "/");

  // One job reports its throughput and then waits until the test has looked.
  // Sinks hear events in order, after the job goes on: once a sink placed
  // after the dashboard hears the report, the dashboard has taken it in.
  struct Heard : EventSink {
    std::promise<void> reported;
    void on_event(const JobEvent& e) override {
      if (e.kind == EventKind::progress && e.name == "fast") reported.set_value();
    }
  } heard;
  h.run.options.sinks.push_back(&heard);
  std::promise<void> release;
  auto released = release.get_future().share();
  Job fast;
  fast.name = "fast";
  fast.spec = {{"model", "mlp"}, {"schedule", "cosine"}, {"fold", 9}};
  fast.run = [released](JobContext& ctx) {
    ctx.report({{"epoch", 1}, {"samples_per_s", 1234.5}});
    released.wait();
    return JobOutcome{.metrics = {{"val_top1", 0.9}}};
  };
  const auto fast_id = h.run.runner->add(fast);
  h.run.runner->add(kfold_job("mlp", "warm", 0, 10, 0.8));
  h.run.runner->add(kfold_job("lenet5", "warm", 0, 10, 0.85));
  h.run.runner->add(flaky_job("broken", 5, 0));

  RunSummary summary;
  std::thread runner([&] { summary = h.run_and_finish(); });
  heard.reported.get_future().wait();

  {  // While it runs: Prometheus sees the job's samples/s.
    const auto res = get(port, "/metrics");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_NE(res->get_header_value("Content-Type").find("text/plain; version=0.0.4"), std::string::npos);
    const Exposition x(res->body);
    EXPECT_EQ(x.value("packtrain_samples_per_second"), 1234.5);
    EXPECT_EQ(x.value("packtrain_job_samples_per_second", {{"job", fast_id}, {"name", "fast"}}), 1234.5);
    EXPECT_GE(x.value("packtrain_jobs", {{"state", "running"}}), 1);
    EXPECT_EQ(x.value("packtrain_jobs_in_run"), 4);

    const auto status = get(port, "/api/status");
    ASSERT_TRUE(status);
    const auto s = nlohmann::json::parse(status->body);
    EXPECT_EQ(s["state"], "running");
    int holding = 0;
    for (const auto& c : s["cores"])
      if (!c["job"].is_null() && c["job"]["id"] == fast_id) {
        ++holding;
        EXPECT_DOUBLE_EQ(c["job"]["samples_per_s"].get<double>(), 1234.5);
      }
    EXPECT_EQ(holding, 1);
  }
  release.set_value();
  runner.join();
  ASSERT_EQ(summary.done, 3);
  ASSERT_EQ(summary.failed, 1);

  // After the run: the counts are final, and the throughput is gone with the jobs.
  const auto res = get(port, "/metrics");
  ASSERT_TRUE(res);
  const Exposition x(res->body);
  EXPECT_EQ(x.value("packtrain_jobs", {{"state", "done"}}), 3);
  EXPECT_EQ(x.value("packtrain_jobs", {{"state", "failed"}}), 1);
  EXPECT_EQ(x.value("packtrain_jobs", {{"state", "running"}}), 0);
  EXPECT_EQ(x.value("packtrain_jobs", {{"state", "queued"}}), 0);
  EXPECT_EQ(x.value("packtrain_cores"), 3);
  EXPECT_EQ(x.value("packtrain_run_eta_seconds"), 0);
  EXPECT_FALSE(x.has("packtrain_samples_per_second"));
  EXPECT_EQ(x.families().at("packtrain_core_busy_ratio").samples.size(), 3u);
  for (int core = 0; core < 3; ++core) {
    const double busy = x.value("packtrain_core_busy_ratio", {{"core", std::to_string(core)}});
    EXPECT_GE(busy, 0.0);
    EXPECT_LE(busy, 1.0);
    EXPECT_EQ(x.value("packtrain_core_running_job", {{"core", std::to_string(core)}}), 0);
  }
  EXPECT_GT(x.value("packtrain_resident_memory_bytes"), 0);

  const auto status = get(port, "/api/status");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->get_header_value("Content-Type"), "application/json");
  const auto s = nlohmann::json::parse(status->body);
  EXPECT_EQ(s["state"], "finished");
  EXPECT_EQ(s["command"], "kfold");
  EXPECT_EQ(s["jobs"]["total"], 4);
  EXPECT_EQ(s["jobs"]["done"], 3);
  EXPECT_EQ(s["jobs"]["failed"], 1);
  ASSERT_EQ(s["cores"].size(), 3u);
  for (int core = 0; core < 3; ++core) {
    EXPECT_EQ(s["cores"][core]["core"], core);
    EXPECT_TRUE(s["cores"][core]["job"].is_null());
    EXPECT_FALSE(s["cores"][core]["history"].empty());
  }
  EXPECT_EQ(s["recent"].size(), 4u);
}

TEST(LiveServer, ServesTheLivePage) {
  LiveServer server("127.0.0.1", 0, {.status_json = [] { return std::string("{}"); }});
  const auto res = get(server.port(), "/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(res->body, live_page_html());
  EXPECT_NE(res->body.find("id=\"job-count\""), std::string::npos);
  EXPECT_NE(res->body.find("var status_url = \"/api/status\""), std::string::npos);
  EXPECT_EQ(res->body.find("http://"), std::string::npos);  // nothing from the network
  EXPECT_EQ(res->body.find("https://"), std::string::npos);
}

TEST(LiveServer, EverythingElseIsNotFound) {
  LiveServer server("127.0.0.1", 0,
                    {.status_json = [] { return std::string("{\"secret\":1}"); },
                     .metrics_text = [] { return std::string("# TYPE x gauge\nx 1\n"); }});
  for (const char* path : {"/../etc/passwd", "/%2e%2e/", "/%2E%2E/etc/passwd", "/static/../../x", "/api/status/../status",
                           "/api/../metrics", "/..", "/index.html", "/api", "/api/status/x", "/metrics/", "/etc/passwd",
                           "/favicon.ico", "//api/status"}) {
    const auto res = get(server.port(), path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 404) << path;
    EXPECT_EQ(res->body.find("secret"), std::string::npos) << path;
    EXPECT_EQ(res->body.find("<html"), std::string::npos) << path;
  }
  httplib::Client client("127.0.0.1", server.port());
  const auto post = client.Post("/api/status", "{}", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 404);
  const auto head = client.Head("/metrics");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  const auto ok = get(server.port(), "/api/status");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "{\"secret\":1}");
}

TEST(LiveServer, PortZeroPicksAFreePortAndATakenPortIsAnError) {
  LiveServer first("127.0.0.1", 0, {});
  ASSERT_GT(first.port(), 0);
  EXPECT_EQ(first.url(), "http://127.0.0.1:" + std::to_string(first.port()) + "/");
  EXPECT_THROW(LiveServer("127.0.0.1", first.port(), {}), Error);
  EXPECT_THROW(LiveServer("127.0.0.1", 70000, {}), Error);
  EXPECT_THROW(LiveServer("203.0.113.7", 0, {}), Error);  // not an address of this machine
}

TEST(LiveServer, DashboardWithoutServeHasNoPortAndAServerStopsAtOnce) {
  TempDir dir;
  RunDashboard quiet(DashboardOptions().cores({0}).sample_ms(50));
  EXPECT_EQ(quiet.port(), 0);
  EXPECT_EQ(quiet.url(), "");
  for (int i = 0; i < 20; ++i) LiveServer("127.0.0.1", 0, {});  // created and destroyed at once, never hangs
}

TEST(LiveServer, DashboardOnATakenPortThrowsBeforeWritingFiles) {
  LiveServer taken("127.0.0.1", 0, {});
  TempDir dir;
  EXPECT_THROW(RunDashboard(DashboardOptions().out_dir(dir / "run").cores({0}).serve_port(taken.port())), Error);
  EXPECT_FALSE(std::filesystem::exists(dir / "run"));
}

// A token: every request carries it (bearer or ?token=), or gets 401 and
// nothing of the run; the page passes the token it was opened with on.
TEST(LiveServer, WithATokenEveryRequestMustCarryIt) {
  const std::string token = "0123456789abcdef0123";
  LiveServer server("127.0.0.1", 0,
                    {.status_json = [] { return std::string("{\"secret\":1}"); },
                     .metrics_text = [] { return std::string("# TYPE x gauge\nx 1\n"); }},
                    token);
  for (const char* path : {"/", "/api/status", "/metrics", "/?token=0123456789abcdef012", "/api/status?token=",
                           "/metrics?token=0123456789abcdef01234", "/nothing"}) {
    const auto res = get(server.port(), path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 401) << path;
    EXPECT_EQ(res->get_header_value("WWW-Authenticate"), "Bearer realm=\"packtrain\"") << path;
    EXPECT_EQ(res->body.find("secret"), std::string::npos) << path;
  }
  const auto by_query = get(server.port(), "/api/status?token=" + token);
  ASSERT_TRUE(by_query);
  EXPECT_EQ(by_query->status, 200);
  EXPECT_EQ(by_query->body, "{\"secret\":1}");
  httplib::Client client("127.0.0.1", server.port());
  client.set_bearer_token_auth(token.c_str());
  const auto by_bearer = client.Get("/metrics");
  ASSERT_TRUE(by_bearer);
  EXPECT_EQ(by_bearer->status, 200);
  EXPECT_EQ(by_bearer->get_header_value("X-Content-Type-Options"), "nosniff");
  client.set_bearer_token_auth("wrong-token-wrong-token");
  const auto wrong = client.Get("/metrics");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  // The page: its status URL takes the token it was opened with.
  const auto page = get(server.port(), "/?token=" + token);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("new URLSearchParams(location.search).get(\"token\")"), std::string::npos);
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("default-src 'self'"), std::string::npos);
}

TEST(LiveServer, AServerWithoutATokenAnswersEveryone) {
  LiveServer server("127.0.0.1", 0, {.status_json = [] { return std::string("{}"); }});
  const auto res = get(server.port(), "/api/status?token=anything");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST(LiveServer, TokensCompareWholly) {
  EXPECT_TRUE(same_token("0123456789abcdef", "0123456789abcdef"));
  EXPECT_TRUE(same_token("", ""));
  EXPECT_FALSE(same_token("0123456789abcdeF", "0123456789abcdef"));  // the last byte
  EXPECT_FALSE(same_token("X123456789abcdef", "0123456789abcdef"));  // the first byte
  EXPECT_FALSE(same_token("0123456789abcde", "0123456789abcdef"));   // a prefix
  EXPECT_FALSE(same_token("0123456789abcdef0", "0123456789abcdef"));  // longer
  EXPECT_FALSE(same_token("", "0123456789abcdef"));
  EXPECT_FALSE(same_token(std::string("0123456789abcde\0", 16), "0123456789abcde"));  // a NUL is not an end
}

TEST(LiveServer, OnlyLoopbackAddressesCountAsThisMachineOnly) {
  EXPECT_TRUE(is_loopback("127.0.0.1"));
  EXPECT_TRUE(is_loopback("127.1.2.3"));
  EXPECT_TRUE(is_loopback("::1"));
  EXPECT_TRUE(is_loopback("localhost"));
  EXPECT_FALSE(is_loopback("0.0.0.0"));
  EXPECT_FALSE(is_loopback("::"));
  EXPECT_FALSE(is_loopback("10.0.0.1"));
  EXPECT_FALSE(is_loopback("no-such-host.invalid"));
}

// One GET on a plain socket; the response's status line. (Not httplib's
// client: 40 of them at once share its regexes, which the uninstrumented
// library builds where ThreadSanitizer cannot see it.)
std::string raw_get_status_line(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (fd >= 0) ::close(fd);
    return "no connection";
  }
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  (void)::write(fd, request.data(), request.size());
  std::string response;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) response.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return response.substr(0, response.find("\r\n"));
}

// More connections than the server takes at once are all answered, in turn.
TEST(LiveServer, ManyConnectionsAtOnceAreAllAnswered) {
  LiveServer server("127.0.0.1", 0, {.status_json = [] { return std::string("{}"); }});
  std::vector<std::future<std::string>> answers;
  for (int i = 0; i < 40; ++i)
    answers.push_back(std::async(std::launch::async, [port = server.port()] {
      return raw_get_status_line(port, "/api/status");
    }));
  for (auto& a : answers) EXPECT_EQ(a.get(), "HTTP/1.1 200 OK");
}
