/**
 * The dashboard's HTML shell and stylesheet. They are TypeScript constants
 * so `tsc` alone builds everything the dashboard serves (no copy step, no
 * bundler); the pages themselves are the modules in `./ui/`.
 */

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The HTML every dashboard URL starts from: no data, only the module that draws the pages. */
export function uiShell(title: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} dashboard</title>
<link rel="stylesheet" href="/ui/app.css">
<script type="module" src="/ui/js/app.js"></script>
</head>
<body>
<div id="app"><noscript>The Locus dashboard needs JavaScript.</noscript></div>
</body>
</html>
`;
}

/** The stylesheet: system fonts, a laptop-width layout, no external resources. */
export const UI_CSS = `
:root { --fg:#1d2330; --muted:#5d6675; --line:#d9dde4; --bg:#f6f7f9; --card:#fff; --accent:#2458c6;
  --ok:#1f8a4c; --warn:#c27c0e; --bad:#c0392b; --run:#2c7be5; --idle:#9aa3b1;
  --node:#1f8a4c; --rack:#e0a020; --any:#c0392b; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color:var(--fg); background:var(--bg); }
a { color:var(--accent); text-decoration:none; } a:hover { text-decoration:underline; }
header.top { display:flex; align-items:center; gap:1.5em; padding:.6em 1.2em; background:#17202f; color:#fff; }
header.top .brand { font-weight:700; font-size:1.1em; letter-spacing:.02em; }
header.top nav a { color:#cfd8e6; margin-right:1em; padding:.2em 0; }
header.top nav a.active { color:#fff; border-bottom:2px solid #7fb0ff; }
header.top .who { margin-left:auto; color:#cfd8e6; font-size:.9em; }
header.top button { margin-left:.8em; }
main { padding:1em 1.2em 3em; max-width:1400px; margin:0 auto; }
h1 { font-size:1.35em; margin:.2em 0 .6em; } h2 { font-size:1.1em; margin:1.4em 0 .5em; }
.card { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:.8em 1em; margin-bottom:1em; }
table { border-collapse:collapse; width:100%; background:var(--card); }
th, td { text-align:left; padding:.35em .6em; border-bottom:1px solid var(--line); vertical-align:middle; }
th { font-size:.85em; color:var(--muted); font-weight:600; background:#fafbfc; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size:.92em; }
.muted { color:var(--muted); }
.badge { display:inline-block; padding:.05em .55em; border-radius:10px; font-size:.8em; font-weight:600; color:#fff; background:var(--idle); }
.badge.SUCCEEDED, .badge.READY, .badge.SUBSCRIBED { background:var(--ok); }
.badge.RUNNING, .badge.RESOLVING { background:var(--run); }
.badge.FAILED, .badge.UNAVAILABLE, .badge.LOST { background:var(--bad); }
.badge.CANCELLED, .badge.KILLED, .badge.DELETED { background:#6b7280; }
.badge.PENDING, .badge.RESERVING, .badge.CREATING, .badge.DESTROYING, .badge.UNRESERVING, .badge.REQUESTED { background:var(--warn); }
.bar { position:relative; height:10px; background:#e8ebf0; border-radius:5px; overflow:hidden; min-width:80px; }
.bar > span { position:absolute; top:0; bottom:0; }
.stagebars { display:flex; gap:.5em; flex-wrap:wrap; }
.stagebar { min-width:120px; flex:1; }
.stagebar .lbl { font-size:.8em; color:var(--muted); display:flex; justify-content:space-between; gap:.5em; }
.loc { font-size:.8em; color:var(--muted); white-space:nowrap; }
.filters { display:flex; gap:1em; align-items:end; margin-bottom:.8em; flex-wrap:wrap; }
label { font-size:.85em; color:var(--muted); display:flex; flex-direction:column; gap:.2em; }
input, select, button { font:inherit; padding:.3em .5em; border:1px solid #b9c0cc; border-radius:4px; background:#fff; }
button { cursor:pointer; background:#eef2f8; } button.primary { background:var(--accent); color:#fff; border-color:var(--accent); }
button.danger { background:#fff; color:var(--bad); border-color:var(--bad); }
button:disabled { opacity:.5; cursor:default; }
.error { background:#fdecea; border:1px solid #f5c2bd; color:#8a1f14; padding:.6em .9em; border-radius:5px; margin:.6em 0; }
.error code { color:#8a1f14; font-weight:600; }
.notice { background:#eaf4ea; border:1px solid #bfdcbf; color:#1d5a2c; padding:.6em .9em; border-radius:5px; margin:.6em 0; }
.login { max-width:420px; margin:10vh auto; }
.login input { width:100%; }
.row { display:flex; gap:1em; flex-wrap:wrap; align-items:flex-start; }
.row > .card { flex:1; min-width:300px; }
pre.log { background:#0f1520; color:#d6e2f0; padding:.7em; border-radius:5px; max-height:340px; overflow:auto; margin:0; font-size:.85em; white-space:pre-wrap; word-break:break-all; }
.kv { display:grid; grid-template-columns:max-content 1fr; gap:.2em 1em; }
.kv dt { color:var(--muted); } .kv dd { margin:0; }
svg text { font-family: system-ui, "DejaVu Sans", sans-serif; }
.map td.cell { text-align:center; width:2.2em; padding:.2em; }
.map th.host { writing-mode:vertical-rl; transform:rotate(180deg); font-weight:500; padding:.4em .2em; }
.map th.rack { text-align:center; border-left:2px solid #9aa3b1; }
.map td.rackstart, .map th.rackstart { border-left:2px solid #9aa3b1; }
.dot { display:inline-block; width:12px; height:12px; border-radius:50%; background:#9aa3b1; vertical-align:middle; }
.dot.ran { box-shadow:0 0 0 3px #fff, 0 0 0 5px var(--node); }
.dot.ran.rack-local, .dot.ran.any { box-shadow:0 0 0 3px #fff, 0 0 0 5px var(--any); }
.ranelsewhere { display:inline-block; width:12px; height:12px; border:3px solid var(--any); border-radius:50%; vertical-align:middle; }
.legend { display:flex; gap:1.2em; font-size:.85em; color:var(--muted); margin:.4em 0 .8em; align-items:center; flex-wrap:wrap; }
.agents { display:grid; grid-template-columns:repeat(auto-fill, minmax(300px, 1fr)); gap:.8em; }
.rackgroup { margin-bottom:1em; }
.res { display:grid; grid-template-columns:3.5em 1fr 9em; gap:.2em .6em; align-items:center; font-size:.85em; }
.tasks tr.straggler td { background:#fff6e5; }
.tasks tr.selected td { background:#e8f0ff; }
.small { font-size:.85em; }
`;
