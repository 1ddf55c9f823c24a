import { getJSON, el, ago, badge } from "./api.js";

const HEALTH_ORDER = { critical: 0, warning: 1, ok: 2 };
const state = { runs: [], sort: "last_seen", desc: true, selected: new Set() };
// Enter in the filter filters, it does not submit (no inline handlers: the CSP allows none)
document.getElementById("filters").addEventListener("submit", (e) => e.preventDefault());

function sortValue(run, key) {
  switch (key) {
    case "name": return run.name.toLowerCase();
    case "health": return HEALTH_ORDER[run.health] ?? 3;
    case "last_seen": return new Date(run.last_point_at || run.updated_at).getTime();
    case "last_step": return run.last_step ?? -1;
    default: return run[key];
  }
}

function render() {
  const name = document.getElementById("filter-name").value.trim().toLowerCase();
  const health = document.getElementById("filter-health").value;
  const rows = state.runs
    .filter((r) => !name || r.name.toLowerCase().includes(name))
    .filter((r) => !health || r.health === health)
    .sort((a, b) => {
      const x = sortValue(a, state.sort), y = sortValue(b, state.sort);
      const c = x < y ? -1 : x > y ? 1 : 0;
      return state.desc ? -c : c;
    });
  const body = document.getElementById("runs");
  body.replaceChildren(...rows.map((r) => el("tr", { dataset: { runId: r.id, health: r.health } },
    el("td", {}, el("input", {
      type: "checkbox", checked: state.selected.has(r.id), title: "select for comparison",
      onchange: (e) => { e.target.checked ? state.selected.add(r.id) : state.selected.delete(r.id); updateCompare(); },
    })),
    el("td", { className: "run-name" }, el("a", { href: `/runs/${encodeURIComponent(r.id)}` }, r.name)),
    el("td", { className: `status status-${r.status}` }, r.status),
    el("td", {}, badge(r.health)),
    el("td", { className: "num" }, r.last_step ?? "—"),
    el("td", {}, ago(r.last_point_at || r.updated_at)),
    el("td", { className: "num" }, r.open_alerts))));
  document.getElementById("empty").hidden = state.runs.length > 0;
  for (const b of document.querySelectorAll("th button")) {
    b.setAttribute("aria-sort", b.dataset.sort === state.sort ? (state.desc ? "descending" : "ascending") : "none");
  }
}

function updateCompare() {
  document.getElementById("compare-selected").disabled = state.selected.size < 1;
}

async function refresh() {
  try {
    const runs = await getJSON("/api/v1/runs?limit=1000");
    state.runs = runs.data;
    render();
  } catch (e) {
    console.warn("runs refresh failed", e);
  }
}

for (const b of document.querySelectorAll("th button")) {
  b.addEventListener("click", () => {
    state.desc = state.sort === b.dataset.sort ? !state.desc : b.dataset.sort !== "name";
    state.sort = b.dataset.sort;
    render();
  });
}
document.getElementById("filter-name").addEventListener("input", render);
document.getElementById("filter-health").addEventListener("change", render);
document.getElementById("compare-selected").addEventListener("click", () => {
  const qs = [...state.selected].map((id) => `run=${encodeURIComponent(id)}`).join("&");
  location.href = `/compare?${qs}`;
});
refresh();
setInterval(refresh, 3000);
