import { getJSON, toNumber, escapeHTML } from "./api.js";

const runId = decodeURIComponent(location.pathname.split("/").pop());
const base = `/api/v1/runs/${encodeURIComponent(runId)}`;
const drawn = new Set();
let samples = [];

// One chart per group: the headline series together, the rest one per key.
function groups(keys) {
  const out = [];
  const pick = (title, wanted) => {
    const present = wanted.filter((k) => keys.includes(k));
    if (present.length) out.push({ title, keys: present });
  };
  pick("Losses", ["d_loss", "g_loss"]);
  pick("D outputs", ["d_real", "d_fake"]);
  pick("Gradient norms", ["grad_norm/G", "grad_norm/D"]);
  pick("Diversity", ["diversity/fake", "diversity/real", "diversity/ratio"]);
  const used = new Set(out.flatMap((g) => g.keys));
  for (const k of keys) if (!used.has(k)) out.push({ title: k, keys: [k] });
  return out;
}

async function drawChart(group) {
  const qs = group.keys.map((k) => `key=${encodeURIComponent(k)}`).join("&");
  const data = await getJSON(`${base}/series?${qs}&max_points=1500`);
  const traces = data.series.map((s) => ({ x: s.steps, y: s.values.map(toNumber), name: s.key, mode: "lines" }));
  const id = "chart-" + group.title.replace(/[^A-Za-z0-9]/g, "_");
  let div = document.getElementById(id);
  if (!div) {
    div = document.createElement("div");
    div.id = id;
    div.className = "chart";
    div.setAttribute("role", "img");
    div.setAttribute("aria-label", group.title);
    document.getElementById("charts").appendChild(div);
  }
  const layout = { title: { text: group.title }, margin: { t: 40, r: 10, b: 40, l: 50 }, xaxis: { title: { text: "step" } } };
  Plotly.react(div, traces, layout, { responsive: true });
  drawn.add(id);
}

function showSample(i) {
  const s = samples[i];
  if (!s) return;
  document.getElementById("sample-image").src = s.url;
  document.getElementById("sample-step").textContent = `step ${s.step}`;
}

async function refresh() {
  const run = await getJSON(base);
  document.getElementById("run-name").textContent = run.name;
  document.title = `ganwatch — ${run.name}`;
  document.getElementById("run-meta").innerHTML =
    `${escapeHTML(run.status)} · last step ${run.last_step ?? "—"} · id <code>${escapeHTML(run.id)}</code>`;
  await Promise.all(groups(run.series_keys).map(drawChart));
  const list = await getJSON(`${base}/samples`);
  const slider = document.getElementById("sample-slider");
  const atEnd = Number(slider.value) >= samples.length - 1;
  samples = list.data;
  slider.max = Math.max(0, samples.length - 1);
  if (atEnd) slider.value = slider.max;
  showSample(Number(slider.value));
}

document.getElementById("sample-slider").addEventListener("input", (e) => showSample(Number(e.target.value)));
refresh();
setInterval(refresh, 5000);
