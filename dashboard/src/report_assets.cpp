// The report page's stylesheet and script, inlined into every report.html
// (the page must open with no network).
namespace packtrain::dashboard {

extern const char* const kReportCss;
extern const char* const kReportScript;

const char* const kReportCss = R"css(
:root{--bg:#f5f6f8;--fg:#1d2430;--dim:#6b7484;--line:#e3e6eb;--card:#fff;--accent:#3a7bd5;
--done:#2e9e68;--diverged:#e0a030;--failed:#d9453d;--cancelled:#8a8f98;--running:#3a7bd5;--skipped:#c3c8d0;--queued:#c3c8d0}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:#1d2430;color:#fff;padding:18px 32px 16px}
header .brand{font-size:12px;letter-spacing:.14em;text-transform:uppercase;color:#8fb4ea;font-weight:600}
header h1{margin:2px 0 2px;font-size:22px;font-weight:600}
header .dim{color:#6b7484}
header .meta{color:#b7bfcc;font-size:13px}
main{padding:20px 32px 8px;max-width:1500px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 18px 16px;margin:0 0 18px}
section.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;background:none;border:0;padding:0}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 16px}
.card .k{color:var(--dim);font-size:12px;text-transform:uppercase;letter-spacing:.06em}
.card .v{font-size:26px;font-weight:600;margin:2px 0;font-variant-numeric:tabular-nums}
.card .s{color:var(--dim);font-size:12.5px}
.card.best{border-color:#9fd3b9;background:#f2fbf6}
h2{font-size:16px;margin:0 0 2px}
h3{font-size:14px;margin:16px 0 4px}
p.note{color:var(--dim);margin:0 0 8px;font-size:12.5px}
svg.chart{width:100%;height:auto;display:block}
svg text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:var(--fg)}
svg .lbl{text-anchor:end;dominant-baseline:middle;fill:var(--dim)}
svg .val{dominant-baseline:middle;font-variant-numeric:tabular-nums}
svg .band{fill:#f1f3f6}
svg .area{fill:var(--accent);fill-opacity:.78}
svg .area.mem{fill:#7a5cc7;fill-opacity:.6}
svg .axis text{fill:var(--dim)}
svg .axis .title{fill:var(--fg);font-size:12px}
svg .grid{stroke:#e6e9ee;stroke-width:1}
svg .frame{stroke:#b9c0cb}
svg .bar rect{stroke:#fff;stroke-width:.6}
svg .bar text{fill:#fff;dominant-baseline:middle;pointer-events:none;font-size:11px}
svg .bar.hl rect{stroke:#1d2430;stroke-width:1.6}
.st-done rect,i.st-done{fill:var(--done);background:var(--done)}
.st-diverged rect,i.st-diverged{fill:var(--diverged);background:var(--diverged)}
.st-failed rect,i.st-failed,.st-crashed rect,i.st-crashed{fill:var(--failed);background:var(--failed)}
.st-cancelled rect,i.st-cancelled{fill:var(--cancelled);background:var(--cancelled)}
.st-running rect,i.st-running{fill:var(--running);background:var(--running)}
.st-skipped rect,i.st-skipped,.st-queued rect,i.st-queued{fill:var(--skipped);background:var(--skipped)}
.st-skipped text,.st-queued text{fill:var(--fg)}
.legend{display:flex;gap:16px;flex-wrap:wrap;font-size:12.5px;color:var(--dim);margin:0 0 6px}
.legend i{display:inline-block;width:11px;height:11px;border-radius:3px;margin-right:5px;vertical-align:-1px}
svg.plot{width:100%;max-width:820px;height:auto;display:block}
svg.plot .series{fill:none;stroke:currentColor}
svg.plot .series polyline{stroke-width:2}
svg.plot .series circle{fill:currentColor;stroke:#fff;stroke-width:1}
svg.plot .series .err{stroke-width:1.2;opacity:.6}
svg.plot .series text{fill:var(--fg);stroke:none}
svg.plot .reference line{stroke:#6b7484;stroke-dasharray:5 4}
svg.plot .reference text{fill:#6b7484}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
th{text-align:left;font-weight:600;color:var(--dim);border-bottom:2px solid var(--line);padding:6px 12px 6px 0;cursor:pointer;white-space:nowrap;user-select:none}
th[data-dir=asc]::after{content:" ▲";font-size:9px}
th[data-dir=desc]::after{content:" ▼";font-size:9px}
td{padding:5px 12px 5px 0;border-bottom:1px solid var(--line);white-space:nowrap}
td.num,th.num{text-align:right}
td.mono{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:var(--dim)}
td.msg{white-space:normal;color:var(--failed);max-width:480px}
tr.best td{background:#f2fbf6;font-weight:600}
.badge{background:var(--done);color:#fff;border-radius:10px;padding:1px 8px;font-size:11px;font-weight:600}
.pill{border-radius:10px;padding:1px 8px;font-size:11.5px;color:#fff}
.pill.st-done{background:var(--done)}.pill.st-diverged{background:var(--diverged)}.pill.st-failed,.pill.st-crashed{background:var(--failed)}
.pill.st-cancelled{background:var(--cancelled)}.pill.st-running{background:var(--running)}
.pill.st-skipped,.pill.st-queued{background:var(--skipped);color:var(--fg)}
svg.spread{width:160px;height:14px;vertical-align:middle}
svg.spread line{stroke:#9aa3b1;stroke-width:2}
svg.spread circle{fill:var(--accent)}
tr.best svg.spread circle{fill:var(--done)}
.scroll{overflow-x:auto}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eceff3;padding:1px 4px;border-radius:4px}
footer{color:var(--dim);font-size:12.5px;padding:0 32px 28px}
)css";

// Sorts tables by a clicked column (numbers as numbers), and highlights every
// bar of the job under the pointer (a multi-core job has one bar per core).
// Sets data-ready on <html> once it has run, for the browser tests.
const char* const kReportScript = R"js(
(function () {
  function cellValue(row, i) {
    var c = row.cells[i];
    return c ? (c.dataset.v !== undefined ? c.dataset.v : c.textContent) : "";
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th, i) {
      th.addEventListener("click", function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var dir = th.dataset.dir === "asc" ? -1 : 1;
        table.querySelectorAll("thead th").forEach(function (o) { delete o.dataset.dir; });
        th.dataset.dir = dir > 0 ? "asc" : "desc";
        rows.sort(function (a, b) {
          var x = cellValue(a, i), y = cellValue(b, i);
          var nx = parseFloat(x), ny = parseFloat(y);
          if (!isNaN(nx) && !isNaN(ny) && String(nx) !== "NaN") return (nx - ny) * dir;
          return x.localeCompare(y) * dir;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  var gantt = document.getElementById("gantt-chart");
  if (gantt) {
    var lit = [];
    gantt.addEventListener("mouseover", function (e) {
      var bar = e.target.closest ? e.target.closest("[data-job]") : null;
      lit.forEach(function (b) { b.classList.remove("hl"); });
      lit = bar ? Array.prototype.slice.call(gantt.querySelectorAll('[data-job="' + bar.dataset.job + '"]')) : [];
      lit.forEach(function (b) { b.classList.add("hl"); });
    });
  }
  document.documentElement.dataset.ready = "1";
})();
)js";

}  // namespace packtrain::dashboard
