// The run page: charts (zoom on one zooms all, and re-reads that range at full resolution),
// per-layer gradient-norm heatmaps, alert bands and rule thresholds on the charts, the alerts
// panel, the sample-grid timeline, and live updates over server-sent events.
import { getJSON, sendJSON, toNumber, el, ago, badge, plotlyText, plotlyReady } from "./api.js";

const runId = decodeURIComponent(location.pathname.split("/").pop());
const base = `/api/v1/runs/${encodeURIComponent(runId)}`;
const MAX_POINTS = 2000;       // per trace, over the visible range
const LAYER_POINTS = 1000;     // per layer, for the heatmaps
const HEATMAP_COLUMNS = 300;
const COLORS = { critical: "#d62728", warning: "#ff7f0e", resolved: "#7f7f7f" };

const state = {
  run: null, params: {}, silenced: [],
  charts: [], byKey: new Map(),
  alerts: [],
  samples: [], sampleKey: null, playing: null,
  range: null,            // [lo, hi] while zoomed
  lastStep: {},           // key -> last step drawn
  cursor: null, ready: false, queued: [],
};
window.ganwatch = state;  // for the curious (and the browser tests): the page's state

// ---- charts --------------------------------------------------------------------------------

function groups(keys) {
  const out = [];
  const used = new Set();
  const take = (title, pick, extra = {}) => {
    const present = keys.filter((k) => !used.has(k) && pick(k));
    if (!present.length) return;
    present.forEach((k) => used.add(k));
    out.push({ title, keys: present, kind: "lines", ...extra });
  };
  take("Losses", (k) => ["d_loss", "g_loss"].includes(k), { thresholds: "losses" });
  take("D(x) and D(G(z))", (k) => ["d_real", "d_fake"].includes(k), { thresholds: "d_outputs" });
  take("Gradient norms", (k) => /^grad_norm\/[^/]+$/.test(k), { thresholds: "grads", log: true });
  const nets = [...new Set(keys.map((k) => /^grad_norm\/([^/]+)\/.+/.exec(k)?.[1]).filter(Boolean))];
  for (const net of nets.sort()) {
    take(`Per-layer gradient norms: ${net}`, (k) => k.startsWith(`grad_norm/${net}/`), { kind: "heatmap" });
  }
  take("Diversity", (k) => k.startsWith("diversity/"), { thresholds: "diversity" });
  for (const k of keys) if (!used.has(k)) take(k, (x) => x === k);
  return out;
}

function thresholds(group) {
  const p = state.params, on = (r) => p[r] && !state.silenced.includes(r);
  const lines = [];
  if (group.thresholds === "grads") {
    if (on("exploding_gradients")) lines.push([p.exploding_gradients.threshold, "exploding_gradients", COLORS.critical]);
    if (on("vanishing_g_gradient")) lines.push([p.vanishing_g_gradient.threshold, "vanishing_g_gradient", COLORS.warning]);
  } else if (group.thresholds === "losses" && on("d_loss_zero")) {
    lines.push([p.d_loss_zero.threshold, "d_loss_zero", COLORS.warning]);
  } else if (group.thresholds === "d_outputs" && on("d_overpowering")) {
    lines.push([p.d_overpowering.real_above, "d_overpowering (D(x))", COLORS.warning]);
    lines.push([p.d_overpowering.fake_below, "d_overpowering (D(G(z)))", COLORS.warning]);
  } else if (group.thresholds === "diversity" && on("mode_collapse")) {
    lines.push([p.mode_collapse.threshold, "mode_collapse", COLORS.warning]);
  }
  return lines.filter(([y]) => typeof y === "number" && (!group.log || y > 0)).map(([y, name, color]) => {
    const v = y;
    return { type: "line", name: `threshold:${name}`, xref: "paper", x0: 0, x1: 1, yref: "y", y0: v, y1: v,
             line: { color, width: 1, dash: "dash" }, label: { text: `${name} ${y}`, textposition: "end", font: { size: 9, color } } };
  });
}

function alertShapes() {
  return state.alerts.filter((a) => a.status !== "pending").map((a) => {
    const x0 = a.fired_step ?? a.started_step;
    const x1 = a.resolved_step ?? a.last_step;
    const color = a.status === "resolved" ? COLORS.resolved : COLORS[a.severity] || COLORS.warning;
    const common = { name: `alert-${a.id}`, xref: "x", yref: "paper", y0: 0, y1: 1, layer: "below" };
    if (x1 <= x0) return { ...common, type: "line", x0, x1: x0, line: { color, width: 2 } };
    return { ...common, type: "rect", x0, x1, fillcolor: color, opacity: 0.15, line: { width: 0 } };
  });
}

function layoutFor(chart) {
  const xaxis = { title: { text: "step" } };
  if (state.range) { xaxis.range = state.range.slice(); xaxis.autorange = false; } else xaxis.autorange = true;
  const layout = {
    title: { text: plotlyText(chart.title), font: { size: 14 } },
    margin: { t: 36, r: 10, b: chart.kind === "heatmap" ? 40 : 70, l: chart.kind === "heatmap" ? 110 : 50 },
    height: chart.kind === "heatmap" ? Math.max(220, 40 + 18 * chart.keys.length) : 260,
    xaxis, showlegend: chart.kind !== "heatmap", legend: { orientation: "h", y: -0.32 },
    shapes: [...(chart.kind === "lines" ? thresholds(chart) : []), ...alertShapes()],
  };
  layout.yaxis = chart.log ? { type: "log" } : {};
  return layout;
}

function chartDiv(chart) {
  const div = el("div", { className: "chart", role: "img", "aria-label": chart.title, dataset: { title: chart.title, kind: chart.kind } });
  document.getElementById("charts").append(div);
  return div;
}

function seriesUrl(keys, maxPoints) {
  const qs = keys.map((k) => `key=${encodeURIComponent(k)}`);
  qs.push(`max_points=${maxPoints}`);
  if (state.range) qs.push(`min_step=${Math.floor(state.range[0])}`, `max_step=${Math.ceil(state.range[1])}`);
  return `${base}/series?${qs.join("&")}`;
}

// A chart's series: asked for once per draw (buildCharts asks for every chart's at once, early),
// at most KEYS_PER_READ keys a request (the server refuses more than 32 keys, or more than
// 100,000 points, in one read)
const KEYS_PER_READ = 16;

async function readSeries(keys, maxPoints) {
  const reads = [];
  for (let i = 0; i < keys.length; i += KEYS_PER_READ) reads.push(getJSON(seriesUrl(keys.slice(i, i + KEYS_PER_READ), maxPoints)));
  const parts = await Promise.all(reads);
  return { ...parts[0], series: parts.flatMap((p) => p.series) };
}

function fetchChart(chart) {
  const data = chart.prefetched || readSeries(chart.keys, chart.kind === "heatmap" ? LAYER_POINTS : MAX_POINTS);
  chart.prefetched = null;
  return data;
}

function drawnUpTo(key, steps) {
  if (steps.length) state.lastStep[key] = Math.max(state.lastStep[key] ?? -Infinity, steps[steps.length - 1]);
}

async function drawLines(chart) {
  const data = await fetchChart(chart);
  const shown = new Map((chart.div.data || []).map((t) => [t.meta.key, t]));
  const traces = data.series.map((s) => {
    const x = s.steps.slice(), y = s.values.map(toNumber);
    // points the live stream added while this read was on its way: keep them
    const old = shown.get(s.key);
    const end = x.length ? x[x.length - 1] : -Infinity;
    if (old && !state.range) {
      old.x.forEach((step, i) => { if (step > end) { x.push(step); y.push(old.y[i]); } });
    }
    drawnUpTo(s.key, x);
    return { x, y, name: plotlyText(s.key), mode: "lines", type: "scatter",
             meta: { key: s.key, count: s.count, downsampled: s.downsampled } };
  });
  await Plotly.react(chart.div, traces, layoutFor(chart), { responsive: true, displaylogo: false });
}

async function drawHeatmap(chart) {
  const data = await fetchChart(chart);
  chart.layers = {};
  for (const s of data.series) {
    chart.layers[s.key] = { steps: s.steps.slice(), values: s.values.map(toNumber) };
    drawnUpTo(s.key, s.steps);
  }
  await renderHeatmap(chart);
}

// layer x step: the largest log10 norm of each layer in each of up to HEATMAP_COLUMNS buckets
function renderHeatmap(chart) {
  chart.dirty = false;
  const all = Object.values(chart.layers).flatMap((l) => l.steps);
  let lo = Infinity, hi = -Infinity;
  for (const s of all) { if (s < lo) lo = s; if (s > hi) hi = s; }
  const z = [], names = [];
  let xs = [];
  if (all.length) {
    const cols = Math.max(1, Math.min(HEATMAP_COLUMNS, hi - lo + 1));
    const width = (hi - lo + 1) / cols;
    xs = Array.from({ length: cols }, (_, i) => Math.round(lo + (i + 0.5) * width));
    for (const key of chart.keys) {
      const row = new Array(cols).fill(null);
      const layer = chart.layers[key] || { steps: [], values: [] };
      layer.steps.forEach((s, i) => {
        const v = layer.values[i];
        if (v === null || !(v > 0)) return;
        const c = Math.min(cols - 1, Math.floor((s - lo) / width));
        const l = Math.log10(v);
        if (row[c] === null || l > row[c]) row[c] = l;
      });
      z.push(row);
      names.push(plotlyText(key.split("/").slice(2).join("/")));
    }
  }
  const trace = { type: "heatmap", x: xs, y: names, z, colorscale: "Viridis", colorbar: { title: { text: "log10 norm" } },
                  hovertemplate: "step %{x}<br>%{y}<br>log10 norm %{z:.2f}<extra></extra>" };
  return Plotly.react(chart.div, [trace], layoutFor(chart), { responsive: true, displaylogo: false });
}

async function buildCharts() {
  const keys = state.run.series_keys;
  document.getElementById("charts").replaceChildren();
  state.charts = groups(keys);
  // every chart's data asked for at once (the server answers while the page draws)
  for (const c of state.charts) c.prefetched = fetchChart(c);
  await plotlyReady;
  state.plotlyAt = performance.now();
  state.byKey = new Map();
  for (const chart of state.charts) {
    chart.div = chartDiv(chart);
    chart.keys.forEach((k) => state.byKey.set(k, chart));
  }
  await redrawAll();
}

function redrawAll() {
  return Promise.all(state.charts.map(async (c) => {
    await (c.kind === "heatmap" ? drawHeatmap(c) : drawLines(c));
    if (!c.bound) {  // Plotly gives the div its .on() at the first plot
      c.div.on("plotly_relayout", (ev) => onRelayout(c, ev));
      c.bound = true;
    }
  }));
}

// ---- zoom: one chart's x range applied to all, then read again at full resolution ----------

let refetchTimer = null;
function sameRange(a, b) {
  if (!a || !b) return a === b;
  return Math.abs(a[0] - b[0]) < 1e-6 && Math.abs(a[1] - b[1]) < 1e-6;
}

function onRelayout(chart, ev) {
  let range;
  if (ev["xaxis.range[0]"] !== undefined) range = [ev["xaxis.range[0]"], ev["xaxis.range[1]"]];
  else if (Array.isArray(ev["xaxis.range"])) range = ev["xaxis.range"].slice();
  else if (ev["xaxis.autorange"]) range = null;
  else return;  // not a change of the steps shown
  if (sameRange(range, state.range)) return;  // our own echo from syncing the other charts
  state.range = range;
  for (const other of state.charts) {
    if (other !== chart) Plotly.relayout(other.div, range ? { "xaxis.range": range.slice(), "xaxis.autorange": false } : { "xaxis.autorange": true });
  }
  clearTimeout(refetchTimer);
  refetchTimer = setTimeout(() => redrawAll().catch((e) => console.warn(e)), 150);
}

// ---- live updates ------------------------------------------------------------------------------

function onPoints(data) {
  let unknown = false;
  for (const [key, s] of Object.entries(data.series)) {
    const chart = state.byKey.get(key);
    if (!chart) { unknown = true; continue; }
    const last = state.lastStep[key] ?? -Infinity;
    const xs = [], ys = [];
    s.steps.forEach((step, i) => { if (step > last) { xs.push(step); ys.push(toNumber(s.values[i])); } });
    if (!xs.length) continue;
    state.lastStep[key] = xs[xs.length - 1];
    if (chart.kind === "heatmap") {
      const layer = chart.layers[key] || (chart.layers[key] = { steps: [], values: [] });
      layer.steps.push(...xs); layer.values.push(...ys);
      chart.dirty = true;
    } else {
      const index = chart.keys.indexOf(key);
      Plotly.extendTraces(chart.div, { x: [xs], y: [ys] }, [index]);
      // a page left open on a fast run: once a trace holds far more points than a chart can
      // show, read it again downsampled (in place, with Plotly.react)
      if (chart.div.data[index].x.length > 3 * MAX_POINTS && !chart.redrawing) {
        chart.redrawing = true;
        setTimeout(() => drawLines(chart).finally(() => { chart.redrawing = false; }), 500);
      }
    }
  }
  if (unknown) scheduleRebuild();
}

let rebuildTimer = null;
function scheduleRebuild() {
  if (rebuildTimer) return;
  rebuildTimer = setTimeout(async () => {
    rebuildTimer = null;
    state.run = await getJSON(base);
    renderHead();
    await buildCharts();
  }, 300);
}

setInterval(() => { for (const c of state.charts) if (c.kind === "heatmap" && c.dirty) renderHeatmap(c); }, 2000);

function setLive(text, ok) {
  const node = document.getElementById("live-status");
  node.textContent = text;
  node.className = `live-status ${ok ? "live-on" : "live-off"}`;
}

function handle(name, fn) {
  return (e) => {
    if (e.lastEventId) state.cursor = e.lastEventId;
    const data = JSON.parse(e.data);
    if (!state.ready) state.queued.push([fn, data]);
    else fn(data);
  };
}

let source = null;
function connect() {
  const url = state.cursor ? `${base}/events?cursor=${encodeURIComponent(state.cursor)}` : `${base}/events`;
  source = new EventSource(url);
  const opened = new Promise((resolve) => source.addEventListener("hello", (e) => {
    if (e.lastEventId && !state.cursor) state.cursor = e.lastEventId;
    setLive("live", true);
    resolve();
  }));
  source.addEventListener("points", handle("points", onPoints));
  source.addEventListener("samples", handle("samples", onSamples));
  source.addEventListener("alerts", handle("alerts", () => { loadAlerts(); refreshRun(); }));
  source.addEventListener("run", handle("run", (d) => { Object.assign(state.run, d); renderHead(); refreshRun(); }));
  source.onerror = () => {
    setLive("reconnecting…", false);
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 1000);  // the browser gave up: we do not
  };
  return opened;
}

// ---- run header ----------------------------------------------------------------------------

function renderHead() {
  const run = state.run;
  document.getElementById("run-name").textContent = run.name;
  document.title = `ganwatch — ${run.name}`;
  document.getElementById("run-health").replaceChildren(badge(run.health));
  document.getElementById("run-meta").replaceChildren(
    el("span", { className: `status status-${run.status}` }, run.status), " · step ",
    el("span", { id: "run-step" }, run.last_step ?? "—"), " · last seen ", ago(run.last_point_at || run.updated_at),
    " · ", el("span", {}, `${run.open_alerts} open alert${run.open_alerts === 1 ? "" : "s"}`),
    " · loss ", el("span", { id: "run-loss", title: "the loss family the rules judge this run by" },
      `${run.loss} (${run.loss_source})`), " · id ", el("code", {}, run.id));
  const rows = Object.entries(run.config || {}).map(([k, v]) =>
    el("tr", {}, el("th", {}, k), el("td", {}, typeof v === "string" ? v : JSON.stringify(v))));
  document.getElementById("run-config").replaceChildren(...rows);
}

let runTimer = null;
function refreshRun() {
  if (runTimer) return;
  runTimer = setTimeout(async () => {
    runTimer = null;
    try { state.run = { ...(await getJSON(base)) }; renderHead(); await loadRules(); } catch (e) { console.warn(e); }
  }, 250);
}

// ---- alerts ------------------------------------------------------------------------------------

function evidenceList(evidence) {
  return el("dl", {}, Object.entries(evidence || {}).flatMap(([k, v]) => {
    let text = typeof v === "string" ? v : JSON.stringify(v);
    if (text.length > 300) text = text.slice(0, 300) + "…";
    return [el("dt", {}, k), el("dd", {}, text)];
  }));
}

function alertItem(a) {
  const from = a.fired_step ?? a.started_step, to = a.resolved_step ?? a.last_step;
  return el("li", { id: `alert-${a.id}`, className: `alert alert-${a.severity} alert-${a.status}`, dataset: { alertId: a.id, rule: a.rule, status: a.status } },
    el("div", { className: "alert-head" }, badge(a.status === "resolved" ? "ok" : a.severity), " ",
      el("strong", {}, a.title), " ", el("span", { className: "muted" }, `${a.status} · steps ${from}–${to}`)),
    el("p", { className: "alert-message" }, a.message),
    el("p", { className: "alert-action" }, el("strong", {}, "Try: "), a.action),
    el("details", {}, el("summary", {}, "Evidence"), evidenceList(a.evidence)),
    el("div", { className: "alert-buttons" },
      a.acknowledged_at
        ? el("span", { className: "acked" }, `acknowledged ${ago(a.acknowledged_at)}${a.acknowledged_by ? " by " + a.acknowledged_by : ""}`)
        : el("button", { type: "button", className: "ack", onclick: () => act(sendJSON("POST", `/api/v1/alerts/${a.id}/ack`, { by: "dashboard" })) }, "Acknowledge"),
      el("button", { type: "button", className: "silence", onclick: () => act(sendJSON("POST", `${base}/rules/${encodeURIComponent(a.rule)}/silence`)) }, "Silence rule"),
      el("button", { type: "button", className: "show-samples", onclick: () => showSamplesAt(from) }, `Samples at step ${from}`)));
}

async function act(promise) {
  try { await promise; } catch (e) { alertError(e); }
  await Promise.all([loadAlerts(), loadRules()]);
  refreshRun();
}

function alertError(e) {
  const node = document.getElementById("silenced");
  node.prepend(el("p", { className: "error" }, `Could not do that: ${e.message}`));
}

async function loadAlerts() {
  const data = await getJSON(`/api/v1/alerts?run_id=${encodeURIComponent(runId)}&limit=500`);
  state.alerts = data.data;
  const open = state.alerts.filter((a) => a.status !== "resolved");
  const resolved = state.alerts.filter((a) => a.status === "resolved");
  document.getElementById("alerts-open").replaceChildren(...open.map(alertItem));
  document.getElementById("alerts-resolved").replaceChildren(...resolved.map(alertItem));
  document.getElementById("alerts-open-empty").hidden = open.length > 0;
  const shapes = alertShapes();
  await Promise.all(state.charts.filter((c) => c.div.layout).map((c) =>
    Plotly.relayout(c.div, { shapes: [...(c.kind === "lines" ? thresholds(c) : []), ...shapes] })));
}

async function loadRules() {
  const rules = await getJSON(`${base}/rules`);
  state.params = rules.params;
  state.silenced = rules.silenced;
  document.getElementById("silenced").replaceChildren(...rules.silenced.map((r) =>
    el("p", { className: "silenced" }, "Silenced for this run: ", el("code", {}, r), " ",
      el("button", { type: "button", onclick: () => act(sendJSON("DELETE", `${base}/rules/${encodeURIComponent(r)}/silence`)) }, "Unsilence"))));
  renderCoverage(rules);
}

// What the rules can see: a rule that lacks its inputs is "not watching", never a silent
// all-clear; the roles say which of the run's series each rule reads.
function renderCoverage(rules) {
  const blind = Object.entries(rules.rules || {}).filter(([, r]) => r.applies && !r.silenced && !r.watching);
  const watching = Object.values(rules.rules || {}).filter((r) => r.watching).length;
  const roles = Object.entries(rules.roles || {}).filter(([role, key]) => role !== key);
  const parts = [];
  if (blind.length) {
    parts.push(el("p", { className: "not-watching-title" },
      `Not watching (${blind.length} of ${blind.length + watching} rules):`));
    parts.push(el("ul", { className: "not-watching" }, ...blind.map(([name, r]) =>
      el("li", { "data-rule": name }, el("code", {}, name), `: needs ${r.missing.join(", ")} (or an alias)`))));
  }
  if (roles.length) {
    parts.push(el("p", { className: "roles muted" }, "Reading ",
      ...roles.flatMap(([role, key], i) => [i ? ", " : "", el("code", {}, key), ` as ${role}`])));
  }
  document.getElementById("coverage").replaceChildren(...parts);
  const empty = document.getElementById("alerts-open-empty");
  empty.textContent = watching <= 1 && blind.length
    ? "None, but the rules cannot see this run: it logs nothing they read (see above)."
    : blind.length ? "None from the rules that are watching." : "None: the rules see nothing wrong.";
  empty.classList.toggle("blind", watching <= 1 && blind.length > 0);
}

// ---- samples -----------------------------------------------------------------------------------

function sampleList() {
  return state.samples.filter((s) => s.key === state.sampleKey);
}

function showSample(i) {
  const list = sampleList();
  const s = list[i];
  document.getElementById("samples-empty").hidden = list.length > 0;
  if (!s) return;
  const img = document.getElementById("sample-image");
  img.src = s.url;
  img.dataset.step = s.step;
  document.getElementById("sample-step").textContent = `step ${s.step} (${i + 1} of ${list.length})`;
}

function renderSampleControls(keepEnd) {
  const keys = [...new Set(state.samples.map((s) => s.key))];
  if (!state.sampleKey || !keys.includes(state.sampleKey)) state.sampleKey = keys.includes("fake") ? "fake" : keys[0] || null;
  const select = document.getElementById("sample-key");
  select.replaceChildren(...keys.map((k) => el("option", { value: k, selected: k === state.sampleKey }, k)));
  select.hidden = keys.length < 2;
  const slider = document.getElementById("sample-slider");
  const atEnd = keepEnd || Number(slider.value) >= Number(slider.max);
  slider.max = Math.max(0, sampleList().length - 1);
  if (atEnd) slider.value = slider.max;
  showSample(Number(slider.value));
}

function onSamples(data) {
  const known = new Set(state.samples.map((s) => s.id));
  state.samples.push(...data.samples.filter((s) => !known.has(s.id)));
  state.samples.sort((a, b) => a.step - b.step || a.id - b.id);
  renderSampleControls(false);
}

async function loadSamples() {
  const data = await getJSON(`${base}/samples?limit=10000`);
  state.samples = data.data;
  renderSampleControls(true);
}

function showSamplesAt(step) {
  const list = sampleList();
  if (!list.length) return;
  let best = 0;
  list.forEach((s, i) => { if (Math.abs(s.step - step) < Math.abs(list[best].step - step)) best = i; });
  const slider = document.getElementById("sample-slider");
  slider.value = best;
  showSample(best);
  document.getElementById("samples-section").scrollIntoView({ behavior: "smooth" });
}

function togglePlay() {
  const button = document.getElementById("sample-play");
  const slider = document.getElementById("sample-slider");
  if (state.playing) {
    clearInterval(state.playing);
    state.playing = null;
    button.textContent = "Play";
    return;
  }
  if (Number(slider.value) >= Number(slider.max)) slider.value = 0;
  button.textContent = "Pause";
  state.playing = setInterval(() => {
    const next = Number(slider.value) + 1;
    if (next > Number(slider.max)) { togglePlay(); return; }
    slider.value = next;
    showSample(next);
  }, 400);
}

document.getElementById("sample-slider").addEventListener("input", (e) => showSample(Number(e.target.value)));
document.getElementById("sample-key").addEventListener("change", (e) => { state.sampleKey = e.target.value; renderSampleControls(true); });
document.getElementById("sample-play").addEventListener("click", togglePlay);

// ---- start: subscribe first (so nothing falls between the first read and the stream), then read

async function start() {
  const opened = connect();
  const rules = loadRules();
  state.run = await getJSON(base);
  renderHead();
  // the stream's first event says where it starts; without it in 3 s, load anyway (it will catch up)
  await Promise.race([opened, new Promise((r) => setTimeout(r, 3000))]);
  const samples = loadSamples();
  await rules;
  await buildCharts();
  await Promise.all([loadAlerts(), samples]);
  state.ready = true;
  for (const [fn, data] of state.queued.splice(0)) fn(data);
  state.readyAt = performance.now();  // ms since navigation started: every chart drawn
  document.body.dataset.ready = "true";
}

start().catch((e) => {
  document.getElementById("run-meta").replaceChildren(el("span", { className: "error" }, `Could not load this run: ${e.message}`));
});
