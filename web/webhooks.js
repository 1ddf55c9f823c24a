// Every webhook with its delivery log: status, attempts, last status code and error, next try.
import { getJSON, sendJSON, el, ago } from "./api.js";

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

function deliveriesTable(deliveries) {
  return el("table", { className: "deliveries", "aria-label": "Deliveries" },
    el("thead", {}, el("tr", {}, ["Delivery", "Event", "Status", "Attempts", "Last code", "Last error", "Next attempt", "Created"].map((h) => el("th", {}, h)))),
    el("tbody", {}, deliveries.map((d) => el("tr", { dataset: { status: d.status } },
      el("td", {}, el("code", {}, d.uuid.slice(0, 8))), el("td", {}, d.kind), el("td", {}, d.status),
      el("td", { className: "num" }, d.attempts), el("td", { className: "num" }, d.last_status_code ?? "—"),
      el("td", {}, d.last_error ?? ""), el("td", {}, d.status === "pending" ? when(d.next_attempt_at) : "—"),
      el("td", {}, ago(d.created_at))))));
}

async function card(w) {
  const log = await getJSON(`/api/v1/webhooks/${w.id}/deliveries?limit=50`);
  const filters = [`min severity ${w.min_severity}`, w.rules ? `rules ${w.rules.join(", ")}` : null,
                   w.run_ids ? `runs ${w.run_ids.join(", ")}` : null].filter(Boolean).join(" · ");
  return el("section", { className: "webhook", dataset: { webhookId: w.id } },
    el("h2", {}, w.name || w.url, " ", el("span", { className: "muted" }, `(${w.format}${w.enabled ? "" : ", disabled"})`)),
    el("p", {}, el("code", {}, w.url), " · ", filters),
    el("div", { className: "toolbar" },
      el("button", { type: "button", onclick: async () => { await sendJSON("POST", `/api/v1/webhooks/${w.id}/test`); refresh(); } }, "Send a test event"),
      el("span", { className: "muted" }, `${log.count} deliveries`)),
    deliveriesTable(log.data));
}

async function refresh() {
  const hooks = await getJSON("/api/v1/webhooks");
  document.getElementById("webhooks").replaceChildren(...(await Promise.all(hooks.data.map(card))));
  document.getElementById("webhooks-empty").hidden = hooks.data.length > 0;
  document.body.dataset.ready = "true";
}

refresh();
setInterval(refresh, 5000);
