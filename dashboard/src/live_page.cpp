// The live page served at "/". It polls /api/status once a second and
// redraws; every element it fills has an id, and each core's row is
// <div class="core-track" data-core="N"> (the browser tests look for them).
#include <packtrain/dashboard/live_server.hpp>

namespace packtrain::dashboard {

const std::string& live_page_html() {
  static const std::string page = R"html(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>packtrain live</title>
<style>
:root{--bg:#f5f6f8;--fg:#1d2430;--dim:#6b7484;--line:#e3e6eb;--card:#fff;--accent:#3a7bd5;
--done:#2e9e68;--diverged:#e0a030;--failed:#d9453d;--cancelled:#8a8f98;--running:#3a7bd5;--skipped:#c3c8d0}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
header{background:#1d2430;color:#fff;padding:16px 28px;display:flex;align-items:center;gap:16px;flex-wrap:wrap}
header .brand{font-size:12px;letter-spacing:.14em;text-transform:uppercase;color:#8fb4ea;font-weight:600}
header h1{margin:0;font-size:20px;font-weight:600}
header .meta{color:#b7bfcc;font-size:13px;margin-left:auto}
.pill{border-radius:10px;padding:2px 10px;font-size:12px;font-weight:600;background:#3b4454;color:#fff}
.pill.running{background:var(--running)}.pill.finished{background:var(--done)}.pill.disconnected{background:var(--failed)}
main{padding:18px 28px;max-width:1400px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 18px;margin:0 0 16px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;background:none;border:0;padding:0}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:10px 14px}
.card .k{color:var(--dim);font-size:12px;text-transform:uppercase;letter-spacing:.06em}
.card .v{font-size:24px;font-weight:600;font-variant-numeric:tabular-nums}
.card .s{color:var(--dim);font-size:12px}
.progress{height:6px;background:#e9ecf1;border-radius:3px;overflow:hidden;margin-top:6px;display:flex}
.progress i{display:block;height:100%}
h2{font-size:15px;margin:0 0 8px}
#cores{display:grid;gap:4px}
.core-track{display:grid;grid-template-columns:64px minmax(240px,3fr) 52px minmax(200px,2fr);align-items:center;gap:10px;font-variant-numeric:tabular-nums}
.core-track .lbl{color:var(--dim);text-align:right}
.core-track svg{width:100%;height:24px;display:block}
.core-track .band{fill:#f1f3f6}
.core-track path{fill:var(--accent);fill-opacity:.78}
.core-track .busy{text-align:right;font-weight:600}
.core-track .job{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.core-track .job.idle{color:var(--dim)}
.core-track .job small{color:var(--dim);margin-left:6px}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums;width:100%}
th{text-align:left;color:var(--dim);font-weight:600;border-bottom:2px solid var(--line);padding:4px 12px 4px 0}
td{padding:4px 12px 4px 0;border-bottom:1px solid var(--line)}
.st{border-radius:10px;padding:1px 8px;font-size:11.5px;color:#fff}
.st.done{background:var(--done)}.st.failed{background:var(--failed)}.st.diverged{background:var(--diverged)}
.st.cancelled{background:var(--cancelled)}.st.skipped{background:var(--skipped);color:var(--fg)}
footer{color:var(--dim);font-size:12px;padding:0 28px 24px}
a{color:var(--accent)}
</style></head>
<body>
<header><div class="brand">packtrain</div><h1>live <span id="command"></span></h1>
<span id="state" class="pill">connecting</span><span class="meta" id="meta"></span></header>
<main>
<section class="cards">
 <div class="card"><div class="k">jobs done</div><div class="v"><span id="job-done">0</span> / <span id="job-count">0</span></div>
  <div class="progress" id="progress"></div></div>
 <div class="card"><div class="k">running</div><div class="v" id="job-running">0</div><div class="s"><span id="job-queued">0</span> queued</div></div>
 <div class="card"><div class="k">failed</div><div class="v" id="job-failed">0</div><div class="s"><span id="job-retried">0</span> retried</div></div>
 <div class="card"><div class="k">elapsed</div><div class="v" id="elapsed">–</div><div class="s">ETA <span id="eta">–</span></div></div>
 <div class="card"><div class="k">core utilization</div><div class="v" id="busy-mean">–</div><div class="s">mean of the last sample</div></div>
 <div class="card"><div class="k">memory</div><div class="v" id="memory">–</div><div class="s">resident</div></div>
 <div class="card" id="throughput-card" hidden><div class="k">samples/s</div><div class="v" id="throughput">–</div><div class="s">all running jobs</div></div>
</section>
<section><h2>Cores <small id="window" style="color:var(--dim);font-weight:400"></small></h2><div id="cores"></div></section>
<section><h2>Recently ended</h2><table><thead><tr><th>job</th><th>status</th><th>time</th><th id="metric-name">metric</th></tr></thead>
<tbody id="recent"></tbody></table></section>
</main>
<footer>Updates every second from <a href="/api/status">/api/status</a> · Prometheus: <a href="/metrics">/metrics</a></footer>
<script>
(function () {
  var W = 300, H = 24;
  function el(id) { return document.getElementById(id); }
  function dur(s) {
    if (s === null || s === undefined || !isFinite(s)) return "–";
    s = Math.max(0, s);
    if (s < 10) return s.toFixed(1) + "s";
    s = Math.round(s);
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
  }
  function pct(v) { return v === null || v === undefined ? "–" : Math.round(v * 100) + "%"; }
  // The newest sample at the right edge; the window is the history the server keeps.
  function area(values, capacity, top) {
    if (!values.length) return "";
    var step = W / Math.max(capacity, values.length), x = W - values.length * step, d = "M" + x.toFixed(1) + " " + H;
    values.forEach(function (v) {
      var y = H - Math.max(0, Math.min(1, v / top)) * H;
      d += "L" + x.toFixed(1) + " " + y.toFixed(1);
      x += step;
      d += "L" + x.toFixed(1) + " " + y.toFixed(1);
    });
    return d + "L" + W + " " + H + "Z";
  }
  function row(core) {
    var rows = el("cores"), r = rows.querySelector('[data-core="' + core + '"]');
    if (r) return r;
    r = document.createElement("div");
    r.className = "core-track";
    r.dataset.core = core;
    r.innerHTML = '<span class="lbl"></span><svg viewBox="0 0 ' + W + " " + H + '" preserveAspectRatio="none">' +
      '<rect class="band" width="' + W + '" height="' + H + '"/><path/></svg><span class="busy"></span><span class="job"></span>';
    r.querySelector(".lbl").textContent = "core " + core;
    rows.appendChild(r);
    return r;
  }
  function render(s) {
    var j = s.jobs, capacity = 240;
    el("command").textContent = s.command || "";
    el("state").textContent = s.state;
    el("state").className = "pill " + s.state;
    el("meta").textContent = "rank " + s.rank + " · " + s.cores.length + " cores · sampled every " + s.sample_ms + " ms";
    el("job-count").textContent = j.total;
    el("job-done").textContent = j.done;
    el("job-running").textContent = j.running;
    el("job-queued").textContent = j.queued;
    el("job-failed").textContent = j.failed + j.diverged;
    el("job-retried").textContent = j.retried;
    el("elapsed").textContent = dur(s.elapsed_s);
    el("eta").textContent = s.state === "finished" ? "done" : dur(s.eta_s);
    el("memory").textContent = s.memory_mb === null ? "–" : Math.round(s.memory_mb) + " MiB";
    var parts = [["done", j.done], ["failed", j.failed + j.diverged], ["running", j.running], ["skipped", j.skipped + j.cancelled]];
    el("progress").innerHTML = "";
    parts.forEach(function (p) {
      if (!j.total || !p[1]) return;
      var i = document.createElement("i");
      i.style.width = (100 * p[1] / j.total) + "%";
      i.style.background = "var(--" + p[0] + ")";
      el("progress").appendChild(i);
    });
    var sum = 0, n = 0;
    s.cores.forEach(function (c) {
      var r = row(c.core);
      if (c.history.length > capacity) capacity = c.history.length;
      r.querySelector("path").setAttribute("d", area(c.history, capacity, 1));
      r.querySelector(".busy").textContent = pct(c.busy);
      if (c.busy !== null) { sum += c.busy; ++n; }
      var job = r.querySelector(".job");
      if (c.job) {
        job.className = "job";
        job.textContent = c.job.name;
        var small = document.createElement("small");
        small.textContent = dur(c.job.running_s) + (c.job.attempt > 1 ? " · attempt " + c.job.attempt : "") +
          (c.job.samples_per_s ? " · " + Math.round(c.job.samples_per_s) + " samples/s" : "") +
          (c.job.replicas ? " · " + c.job.replicas + " replicas" : "") +
          (c.job.sync_share !== undefined ? " · sync " + Math.round(100 * c.job.sync_share) + "%" : "");
        job.appendChild(small);
      } else {
        job.className = "job idle";
        job.textContent = "idle";
      }
    });
    el("busy-mean").textContent = n ? pct(sum / n) : "–";
    el("window").textContent = "· last " + dur(capacity * s.sample_ms / 1000);
    el("throughput-card").hidden = s.samples_per_s === undefined;
    if (s.samples_per_s !== undefined) el("throughput").textContent = Math.round(s.samples_per_s);
    el("metric-name").textContent = s.metric;
    var body = el("recent");
    body.innerHTML = "";
    s.recent.forEach(function (e) {
      var tr = document.createElement("tr");
      [e.name, null, dur(e.seconds), e.metric === null ? "–" : e.metric.toFixed(4)].forEach(function (text, i) {
        var td = document.createElement("td");
        if (i === 1) {
          var b = document.createElement("span");
          b.className = "st " + e.status;
          b.textContent = e.status;
          td.appendChild(b);
        } else {
          td.textContent = text;
        }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    document.documentElement.dataset.updated = String(Date.now());
  }
  // A dashboard with a token: the page was opened as /?token=..., and passes it on.
  var token = new URLSearchParams(location.search).get("token");
  var status_url = "/api/status" + (token ? "?token=" + encodeURIComponent(token) : "");
  function tick() {
    fetch(status_url, {cache: "no-store"})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(render)
      .catch(function () { el("state").textContent = "disconnected"; el("state").className = "pill disconnected"; });
  }
  tick();
  setInterval(tick, 1000);
})();
</script>
</body></html>
)html";
  return page;
}

}  // namespace packtrain::dashboard
