// One series overlaid across runs: /compare?run=ID&run=ID&key=d_loss (the page keeps the URL
// in step with the choices, so a comparison can be shared as a link).
import { getJSON, toNumber, el, badge, plotlyText } from "./api.js";

const params = new URLSearchParams(location.search);
const state = { runs: [], selected: new Set(params.getAll("run")), key: params.get("key") };

function keysOf(selected) {
  const keys = new Set();
  for (const r of state.runs) if (selected.has(r.id)) r.series_keys.forEach((k) => keys.add(k));
  return [...keys].sort();
}

function syncUrl() {
  const qs = new URLSearchParams();
  for (const id of state.selected) qs.append("run", id);
  if (state.key) qs.set("key", state.key);
  history.replaceState(null, "", `/compare?${qs}`);
}

async function draw() {
  const keys = keysOf(state.selected);
  if (!keys.includes(state.key)) state.key = keys.includes("d_loss") ? "d_loss" : keys[0] || null;
  document.getElementById("compare-key").replaceChildren(
    ...keys.map((k) => el("option", { value: k, selected: k === state.key }, k)));
  syncUrl();
  const runs = state.runs.filter((r) => state.selected.has(r.id) && r.series_keys.includes(state.key));
  const traces = await Promise.all(runs.map(async (r) => {
    const data = await getJSON(`/api/v1/runs/${encodeURIComponent(r.id)}/series?key=${encodeURIComponent(state.key)}&max_points=2000`);
    const s = data.series[0];
    return { x: s.steps, y: s.values.map(toNumber), name: plotlyText(r.name), mode: "lines", meta: { run_id: r.id } };
  }));
  await Plotly.react("compare-chart", traces, {
    title: { text: state.key ? plotlyText(state.key) : "Choose runs below" }, height: 480,
    xaxis: { title: { text: "step" } }, margin: { t: 40, r: 10, b: 40, l: 50 }, legend: { orientation: "h" },
  }, { responsive: true, displaylogo: false });
}

async function start() {
  state.runs = (await getJSON("/api/v1/runs?limit=1000")).data;
  document.getElementById("compare-runs").replaceChildren(...state.runs.map((r) => el("li", {},
    el("label", {}, el("input", {
      type: "checkbox", value: r.id, checked: state.selected.has(r.id),
      onchange: (e) => { e.target.checked ? state.selected.add(r.id) : state.selected.delete(r.id); draw(); },
    }), " ", r.name, " ", badge(r.health)))));
  await draw();
  document.body.dataset.ready = "true";
}

document.getElementById("compare-key").addEventListener("change", (e) => { state.key = e.target.value; draw(); });
start();
