#include <packtrain/dashboard/live_server.hpp>

#include <packtrain/scheduler/error.hpp>

#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace packtrain::dashboard {
namespace {

// Two request threads: a page polling once a second and a Prometheus
// scraper need no more, and httplib's default is a pool per core.
constexpr std::size_t kServerThreads = 2;
// Accepted connections waiting for a request thread, at most.
constexpr std::size_t kWaitingConnections = 16;

// httplib's pool, bounded: beyond kWaitingConnections waiting, the
// accepting thread serves the connection itself (each read is bounded by
// the read timeout), so it accepts no more until it is done. httplib's own
// queue grows without bound, one open socket per entry.
class BoundedPool final : public httplib::TaskQueue {
 public:
  BoundedPool() {
    for (std::size_t i = 0; i < kServerThreads; ++i) threads_.emplace_back([this] { work(); });
  }
  ~BoundedPool() override = default;

  void enqueue(std::function<void()> fn) override {
    {
      std::unique_lock lock(mutex_);
      if (waiting_.size() < kWaitingConnections) {
        waiting_.push_back(std::move(fn));
        wake_.notify_one();
        return;
      }
    }
    fn();
  }

  void shutdown() override {
    {
      std::unique_lock lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] { return stop_ || !waiting_.empty(); });
        if (waiting_.empty()) return;  // stopping, nothing left
        fn = std::move(waiting_.front());
        waiting_.pop_front();
      }
      fn();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> waiting_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

void unauthorized(httplib::Response& res) {
  res.status = 401;
  res.set_header("WWW-Authenticate", "Bearer realm=\"packtrain\"");
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_content("a token is required: ?token=TOKEN or Authorization: Bearer TOKEN\n", "text/plain; charset=utf-8");
}

// The token a request carries: its bearer token, else its ?token=.
std::string token_of(const httplib::Request& req) {
  const auto auth = req.get_header_value("Authorization");
  constexpr std::string_view bearer = "Bearer ";
  if (auth.size() > bearer.size() && auth.compare(0, bearer.size(), bearer) == 0) return auth.substr(bearer.size());
  return req.get_param_value("token");
}

void not_found(httplib::Response& res) {
  res.status = 404;
  res.set_content("not found\n", "text/plain; charset=utf-8");
}

}  // namespace

bool is_loopback(const std::string& bind) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (getaddrinfo(bind.c_str(), nullptr, &hints, &found) != 0 || !found) return false;
  bool all = true;
  for (const auto* a = found; a; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      const auto* v4 = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
      all = all && (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    } else if (a->ai_family == AF_INET6) {
      const auto* v6 = reinterpret_cast<const sockaddr_in6*>(a->ai_addr);
      all = all && IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
    } else {
      all = false;
    }
  }
  freeaddrinfo(found);
  return all;
}

bool same_token(std::string_view given, std::string_view expected) {
  // Every byte of the longer is read whatever the others hold; a length
  // difference counts as a difference.
  const std::size_t n = std::max(given.size(), expected.size());
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char a = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    const unsigned char b = i < expected.size() ? static_cast<unsigned char>(expected[i]) : 0;
    diff = static_cast<unsigned char>(diff | (a ^ b));
  }
  return diff == 0;
}

struct LiveServer::Impl {
  httplib::Server server;
  std::string bind;
  int port = 0;
  std::thread thread;
  std::atomic<bool> ended{false};  // the accept loop returned
};

void check_can_listen(const std::string& bind, int port) {
  if (port < 0 || port > 65535) throw Error("dashboard port " + std::to_string(port) + " is not a port number");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(bind.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || !found)
    throw Error("dashboard: cannot listen on " + bind + ":" + std::to_string(port) + " (no such address)");
  bool ok = false;
  for (const auto* a = found; a && !ok; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    const int yes = 1;
    // As httplib binds: SO_REUSEADDR, so a port in TIME_WAIT is not "in use".
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    ok = ::bind(fd, a->ai_addr, a->ai_addrlen) == 0;
    ::close(fd);
  }
  freeaddrinfo(found);
  if (!ok) throw Error("dashboard: cannot listen on " + bind + ":" + std::to_string(port) + " (in use?)");
}

LiveServer::LiveServer(const std::string& bind, int port, Content content, std::string token)
    : impl_(std::make_unique<Impl>()) {
  if (port < 0 || port > 65535) throw Error("dashboard port " + std::to_string(port) + " is not a port number");
  auto& server = impl_->server;
  impl_->bind = bind;
  server.new_task_queue = [] { return new BoundedPool(); };
  server.set_read_timeout(5, 0);
  server.set_write_timeout(5, 0);
  server.set_payload_max_length(0);  // GET and HEAD only: no body
  // SO_REUSEADDR (restart on a port in TIME_WAIT) but not httplib's default
  // SO_REUSEPORT, which would let two runs share a port and split its
  // requests: a port in use must be an error.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server.set_keep_alive_max_count(100);
  server.set_keep_alive_timeout(5);
  // Before routing: nothing outside the three generated resources, and no
  // path that tries to climb out of one, however it is spelled.
  server.set_pre_routing_handler([token = std::move(token)](const httplib::Request& req, httplib::Response& res) {
    if (!token.empty() && !same_token(token_of(req), token)) {
      unauthorized(res);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.target.find("..") != std::string::npos || req.path.find("..") != std::string::npos ||
        req.target.find("%2e") != std::string::npos || req.target.find("%2E") != std::string::npos ||
        (req.method != "GET" && req.method != "HEAD")) {
      not_found(res);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  const auto common_headers = [](httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Content-Type-Options", "nosniff");
  };
  server.Get("/", [common_headers](const httplib::Request&, httplib::Response& res) {
    common_headers(res);
    res.set_header("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'");
    res.set_content(live_page_html(), "text/html; charset=utf-8");
  });
  server.Get("/api/status", [common_headers, fn = content.status_json](const httplib::Request&, httplib::Response& res) {
    common_headers(res);
    res.set_content(fn ? fn() : "{}", "application/json");
  });
  server.Get("/metrics", [common_headers, fn = content.metrics_text](const httplib::Request&, httplib::Response& res) {
    common_headers(res);
    res.set_content(fn ? fn() : "", "text/plain; version=0.0.4; charset=utf-8");
  });
  // Every unmatched route (and error) answers with the same short 404.
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.status == 404) not_found(res);
  });

  if (port == 0) {
    impl_->port = server.bind_to_any_port(bind);
    if (impl_->port <= 0) throw Error("dashboard: cannot listen on " + bind + " (any port)");
  } else {
    if (!server.bind_to_port(bind, port)) throw Error("dashboard: cannot listen on " + bind + ":" + std::to_string(port) + " (in use?)");
    impl_->port = port;
  }
  // accept() blocks between requests: no polling while nobody looks.
  impl_->thread = std::thread([this] {
    impl_->server.listen_after_bind();
    impl_->ended.store(true);
  });
  // httplib's stop() is a no-op until the loop has started: wait for that
  // (microseconds, once), so that a server destroyed at once still stops.
  while (!impl_->server.is_running() && !impl_->ended.load()) std::this_thread::yield();
}

LiveServer::~LiveServer() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int LiveServer::port() const { return impl_->port; }
const std::string& LiveServer::bind() const { return impl_->bind; }

std::string LiveServer::url() const {
  const bool v6 = impl_->bind.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + impl_->bind + "]" : impl_->bind) + ":" + std::to_string(impl_->port) + "/";
}

}  // namespace packtrain::dashboard
