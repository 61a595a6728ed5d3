#pragma once
// The live view: a small read-only HTTP server (cpp-httplib) on its own
// threads, bound to 127.0.0.1 unless told otherwise. It serves exactly
// three things, all generated:
//
//   GET /             the live page: polls /api/status every second and
//                     draws jobs by state, the ETA, and one track per core
//                     (recent utilization, the job running there)
//   GET /api/status   JSON (LiveStatus::status_json)
//   GET /metrics      Prometheus text exposition format 0.0.4
//
// Anything else is 404, and so is any request whose path, raw or decoded,
// contains "..": there is no file system behind it to escape into. Only GET
// and HEAD are answered. Port 0 asks the kernel for a free port; port()
// says which one it gave.
//
//   LiveServer server("127.0.0.1", 0, {.status_json = [&] { return ...; }, .metrics_text = [&] { return ...; }});
//   std::printf("dashboard: %s\n", server.url().c_str());
#include <functional>
#include <memory>
#include <string>

namespace packtrain::dashboard {

// Throws the Error LiveServer would (the port in use, no such address)
// without serving anything: a run checks --serve before it writes a file.
void check_can_listen(const std::string& bind, int port);

class LiveServer {
 public:
  // What the server shows; each is called on a server thread, per request.
  struct Content {
    std::function<std::string()> status_json;
    std::function<std::string()> metrics_text;
  };

  // Binds and starts serving. Throws Error naming the address when it
  // cannot bind (port in use, no such address).
  LiveServer(const std::string& bind, int port, Content content);
  ~LiveServer();  // stops serving and joins its threads
  LiveServer(const LiveServer&) = delete;
  LiveServer& operator=(const LiveServer&) = delete;

  int port() const;
  const std::string& bind() const;
  std::string url() const;  // "http://127.0.0.1:PORT/"

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The page served at "/": HTML, CSS and script in one string.
const std::string& live_page_html();

}  // namespace packtrain::dashboard
