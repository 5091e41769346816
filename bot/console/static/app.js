// lorabot console: reads /api/v1/*, listens to /api/v1/events (server-sent events) and redraws
// what changed. No framework, no CDN: everything here is served by lorabot itself.
"use strict";

const OUTCOMES = ["order", "stale", "not traded", "hold", "below threshold", "unchanged",
  "within band", "no price", "risk cap", "kill switch", "rejected", "model failed"];
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const headers = token ? { Authorization: "Bearer " + token } : {};
const $ = (id) => document.getElementById(id);
const seen = new Set();
let last = { decisions: -1, fills: -1, equity: null, equityAt: 0 };
let olderCursor = null;
const started = performance.now();

async function api(path) {
  const response = await fetch(path, { headers, cache: "no-store" });
  if (!response.ok) throw new Error(path + ": " + response.status);
  return response.json();
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined || text === "" ? "–" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function fillRows(tbody, rows, render) {
  tbody.replaceChildren(...rows.map((r) => { const tr = document.createElement("tr");
    render(tr, r); return tr; }));
}

function short(iso) { return iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace("Z", "") : ""; }

function decisionRow(d, fresh) {
  const tr = document.createElement("tr");
  tr.dataset.id = d.id;
  tr.dataset.outcome = d.outcome;
  if (fresh) tr.className = "fresh";
  cell(tr, short(d.ts));
  cell(tr, d.symbol || "*");
  const headline = cell(tr, "");
  if (d.link) { const a = document.createElement("a"); a.href = d.link; a.rel = "noreferrer";
    a.target = "_blank"; a.textContent = d.headline || d.news_id; headline.replaceChildren(a); }
  else headline.textContent = d.headline || (d.trigger === "news" ? d.news_id : "(" + d.trigger + ")");
  cell(tr, d.source);
  cell(tr, d.label ? d.label + " " + Number(d.confidence).toFixed(2) : "");
  cell(tr, d.composite_label ? d.composite_label + " " + Number(d.composite_confidence).toFixed(2) : "");
  cell(tr, (d.target_before ?? "–") + " → " + (d.target_after ?? "–"));
  cell(tr, d.risk);
  cell(tr, d.outcome, "outcome-" + d.outcome.replace(/ /g, "-"));
  cell(tr, d.reason);
  return tr;
}

function filterQuery() {
  const q = new URLSearchParams({ limit: "50" });
  if ($("f-outcome").value) q.set("outcome", $("f-outcome").value);
  if ($("f-source").value.trim()) q.set("source", $("f-source").value.trim());
  return q;
}

async function refreshDecisions(reset) {
  const data = await api("/api/v1/decisions?" + filterQuery());
  const tbody = $("decisions").tBodies[0];
  if (reset) { tbody.replaceChildren(); seen.clear(); olderCursor = data.next; }
  const fresh = data.decisions.filter((d) => !seen.has(d.id));
  const first = tbody.firstChild;
  for (const d of fresh) { seen.add(d.id); tbody.insertBefore(decisionRow(d, !reset), first); }
  if (olderCursor === null) olderCursor = data.next;
}

async function olderDecisions() {
  if (!olderCursor) return;
  const q = filterQuery(); q.set("before", olderCursor);
  const data = await api("/api/v1/decisions?" + q);
  const tbody = $("decisions").tBodies[0];
  for (const d of data.decisions) if (!seen.has(d.id)) { seen.add(d.id);
    tbody.appendChild(decisionRow(d, false)); }
  olderCursor = data.next;
}

function drawEquity(summary) {
  const svg = $("equity-chart");
  const pts = summary.points.map((p) => [Date.parse(p.t), Number(p.equity)]);
  svg.dataset.points = String(pts.length);
  if (pts.length < 1) { svg.replaceChildren(); return; }
  const W = 900, H = 220, pad = 24;
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const sx = (x) => pad + (x1 === x0 ? (W - 2 * pad) : (x - x0) / (x1 - x0) * (W - 2 * pad));
  const yspan = y1 - y0 || Math.max(1, Math.abs(y1) * 0.001);
  const sy = (y) => H - pad - (y - y0) / yspan * (H - 2 * pad);
  const line = pts.map((p, i) => (i ? "L" : "M") + sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1)).join(" ");
  const ns = "http://www.w3.org/2000/svg";
  const area = document.createElementNS(ns, "path");
  area.setAttribute("class", "area");
  area.setAttribute("d", line + ` L${sx(xs[xs.length - 1]).toFixed(1)},${H - pad} L${sx(x0).toFixed(1)},${H - pad} Z`);
  const curve = document.createElementNS(ns, "path");
  curve.setAttribute("class", "curve");
  curve.setAttribute("d", line);
  const hi = document.createElementNS(ns, "text");
  hi.setAttribute("x", "4"); hi.setAttribute("y", "14"); hi.textContent = y1.toFixed(2);
  const lo = document.createElementNS(ns, "text");
  lo.setAttribute("x", "4"); lo.setAttribute("y", String(H - 6)); lo.textContent = y0.toFixed(2);
  svg.replaceChildren(area, curve, hi, lo);
  $("drawdown").textContent = (summary.drawdown * 100).toFixed(2) + "% (" +
    (summary.max_drawdown * 100).toFixed(2) + "%)";
  fillRows($("daily").tBodies[0], summary.daily.slice(-14).reverse(), (tr, d) => {
    cell(tr, d.day); cell(tr, d.pnl); });
}

function drawStatus(s) {
  $("mode").textContent = s.mode + " · " + s.account;
  $("health").textContent = s.healthy ? "healthy" : "STALE";
  $("health").className = "pill " + (s.healthy ? "ok" : "bad");
  $("kill").textContent = s.kill_switch ? "KILL SWITCH ON" : "kill switch off";
  $("kill").className = "pill " + (s.kill_switch ? "bad" : "ok");
  $("equity").textContent = s.equity;
  $("cash").textContent = s.cash;
  $("pnl").textContent = s.realised_pnl + " / " + s.unrealised_pnl;
  $("counts").textContent = s.decisions + " / " + s.fills;
  $("heartbeat").textContent = s.heartbeat_age_s === null ? "–" : s.heartbeat_age_s.toFixed(1) + " s ago";
  const dl = $("status");
  const items = [["model", s.model.id + " (" + s.model.calls + " calls)"], ["venue", s.venue],
    ["uptime", Math.round(s.uptime_s) + " s"], ["symbols", s.symbols.join(", ")],
    ["risk", s.risk.halted ? "halted: " + s.risk.reason : "trading"],
    ["last reconciliation", s.last_reconciliation || "–"],
    ["open orders", String(s.open_orders.length)],
    ["prices", Object.entries(s.prices).map(([k, v]) => k + " " + v.price + " @ " + short(v.at)).join("; ") || "–"],
    ...(s.links || []).map((l) => [l.name, (l.up ? "up" : "DOWN") + " · " + l.messages + " messages · " +
      l.reconnects + " reconnects · " + l.errors + " errors" + (l.last_error ? " · last: " + l.last_error : "")])];
  dl.replaceChildren(...items.flatMap(([k, v]) => { const dt = document.createElement("dt");
    dt.textContent = k; const dd = document.createElement("dd"); dd.textContent = v; return [dt, dd]; }));
  fillRows($("quality").tBodies[0], s.quality || [], (tr, q) => {
    cell(tr, q.label); cell(tr, q.horizon_s >= 3600 ? q.horizon_s / 3600 + " h" : q.horizon_s / 60 + " min");
    cell(tr, q.n); cell(tr, q.mean_bps);
    cell(tr, q.hit_rate === null ? "" : (q.hit_rate * 100).toFixed(1) + "%"); });
  fillRows($("feeds").tBodies[0], Object.entries(s.feeds), (tr, [name, f]) => {
    cell(tr, name); cell(tr, f.items); cell(tr, short(f.last_item)); cell(tr, f.errors);
    cell(tr, f.last_error); });
}

async function refreshPositions() {
  const data = await api("/api/v1/positions");
  fillRows($("positions").tBodies[0], data.positions, (tr, p) => {
    cell(tr, p.symbol); cell(tr, p.qty); cell(tr, p.avg_price); cell(tr, p.mark);
    cell(tr, p.unrealised_pnl); cell(tr, p.headlines.map((h) => h.headline || h.news_id).join(" · "));
  });
}

async function refreshFills() {
  const data = await api("/api/v1/fills?limit=50");
  fillRows($("fills").tBodies[0], data.fills, (tr, f) => {
    cell(tr, short(f.ts)); cell(tr, f.client_order_id); cell(tr, f.symbol); cell(tr, f.side);
    cell(tr, f.qty); cell(tr, f.price); cell(tr, f.fee); cell(tr, f.slippage_bps);
    cell(tr, f.news_to_fill_s); });
}

async function refreshLog() {
  const data = await api("/api/v1/log");
  fillRows($("log").tBodies[0], data.log.slice(0, 50), (tr, l) => {
    cell(tr, short(l.time)); cell(tr, l.level, l.level === "error" ? "outcome-rejected" : "");
    cell(tr, l.event);
    cell(tr, Object.entries(l.fields).map(([k, v]) => k + "=" + v).join(" ")); });
}

async function refreshAll(state) {
  const status = await api("/api/v1/status");
  drawStatus(status);
  const now = Date.now();
  if (!state || state.equity !== last.equity || now - last.equityAt > 10000) {
    drawEquity(await api("/api/v1/equity"));
    last.equity = state ? state.equity : status.equity; last.equityAt = now;
  }
  if (!state || state.decisions !== last.decisions) {
    await refreshDecisions(last.decisions < 0);
    last.decisions = state ? state.decisions : status.decisions;
  }
  if (!state || state.warnings !== last.warnings) {
    await refreshLog();
    last.warnings = state ? state.warnings : -1;
  }
  if (!state || state.fills !== last.fills) {
    await Promise.all([refreshFills(), refreshPositions()]);
    last.fills = state ? state.fills : status.fills;
  }
}

async function listen() {
  // EventSource cannot send a bearer token: read the event stream through fetch instead.
  for (;;) {
    try {
      const response = await fetch("/api/v1/events", { headers, cache: "no-store" });
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      $("live").textContent = "live";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end); buffer = buffer.slice(end + 2);
          const data = block.split("\n").find((l) => l.startsWith("data: "));
          if (data) await refreshAll(JSON.parse(data.slice(6))).catch(() => {});
        }
      }
    } catch (error) { /* the daemon restarted or went away: retry */ }
    $("live").textContent = "reconnecting…";
    await new Promise((r) => setTimeout(r, 2000));
  }
}

async function main() {
  for (const o of OUTCOMES) { const opt = document.createElement("option"); opt.value = o;
    opt.textContent = o; $("f-outcome").appendChild(opt); }
  $("f-outcome").onchange = () => refreshDecisions(true);
  $("f-source").onchange = () => refreshDecisions(true);
  $("more").onclick = olderDecisions;
  await refreshAll(null);
  document.body.dataset.renderedMs = String(Math.round(performance.now() - started));
  api("/api/v1/config").then((c) => { $("config").textContent = JSON.stringify(c, null, 2); });
  api("/api/v1/backtests").then((b) => {
    $("backtests").replaceChildren(...b.backtests.map((r) => { const li = document.createElement("li");
      const a = document.createElement("a"); a.href = r.url; a.target = "_blank"; a.textContent = r.name;
      li.appendChild(a); return li; }));
    if (!b.backtests.length) $("backtests").textContent = "none yet (lorabot backtest)";
  });
  listen();
}

main();
