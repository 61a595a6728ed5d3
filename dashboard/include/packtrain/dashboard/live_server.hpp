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
// With a token, every request must carry it, as "Authorization: Bearer
// TOKEN" (Prometheus' bearer_token) or as "?token=TOKEN" (a browser: the
// page passes it on to /api/status); others get 401. The token is compared
// in constant time. Responses say nosniff, and the page's
// Content-Security-Policy allows nothing from elsewhere. Bounded: 2 request
// threads, at most 16 accepted connections waiting for them (beyond that
// the accepting thread serves the next one itself, so it accepts no more
// meanwhile), 5 s to read a request, no request body, 8 KiB of headers.
//
//   LiveServer server("127.0.0.1", 0, {.status_json = [&] { return ...; }, .metrics_text = [&] { return ...; }});
//   std::printf("dashboard: %s\n", server.url().c_str());
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace packtrain::dashboard {

// True when every address `bind` resolves to is a loopback one (127.0.0.0/8,
// ::1): only this machine can reach a server bound there.
bool is_loopback(const std::string& bind);

// `given` equals `expected`, in a time that depends on their lengths only,
// never on where they first differ.
bool same_token(std::string_view given, std::string_view expected);

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

  // Binds and starts serving; a non-empty token is required of every
  // request. Throws Error naming the address when it cannot bind (port in
  // use, no such address).
  LiveServer(const std::string& bind, int port, Content content, std::string token = "");
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
