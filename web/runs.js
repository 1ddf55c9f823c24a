import { getJSON, escapeHTML } from "./api.js";

async function refresh() {
  const runs = await getJSON("/api/v1/runs?limit=200");
  const body = document.getElementById("runs");
  body.innerHTML = runs.data.map((r) => `<tr>
      <td><a href="/runs/${encodeURIComponent(r.id)}">${escapeHTML(r.name)}</a></td>
      <td>${escapeHTML(r.status)}</td>
      <td>${r.last_step ?? ""}</td>
      <td>${r.series_keys.length}</td>
      <td>${new Date(r.updated_at).toLocaleString()}</td></tr>`).join("");
  document.getElementById("empty").hidden = runs.count > 0;
}

refresh();
setInterval(refresh, 5000);
