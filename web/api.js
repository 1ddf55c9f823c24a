// Small helpers shared by the pages. Every user-supplied string goes into the page through
// textContent (el() below), never through innerHTML.
// A server that needs a token answers 401: the sign-in page asks for one, then comes back.
function signIn() {
  location.href = `/login?next=${encodeURIComponent(location.pathname + location.search + location.hash)}`;
}

// While the browser goes to sign in, the page's requests wait (rather than fail with errors).
const signingIn = () => { signIn(); return new Promise(() => {}); };

export async function getJSON(url) {
  const response = await fetch(url);
  if (response.status === 401) return signingIn();
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

export async function sendJSON(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) return signingIn();
  if (!response.ok) {
    let detail = `HTTP ${response.status}`;
    try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return response.status === 204 ? null : response.json();
}

// The API writes non-finite values as strings; Plotly wants numbers (null leaves a gap).
export function toNumber(v) {
  return typeof v === "number" ? v : null;
}

// el("td", {className: "x", onclick: f}, "text", childNode, ...): strings become text nodes.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k in node) node[k] = v;
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function ago(iso) {
  if (!iso) return "—";
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

export function badge(level) {
  return el("span", { className: `badge badge-${level}`, title: `health: ${level}` }, level);
}

// Plotly reads a few HTML-like tags in names and titles: user-supplied text goes in escaped.
export function plotlyText(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

// On a server that needs a token, the header offers "Sign out": the session ends on the server
// (its cookie, replayed, is refused), and the sign-in page comes next.
async function offerSignOut() {
  const header = document.querySelector("header");
  if (!header || location.pathname === "/login") return;
  let who;
  try {
    who = await (await fetch("/api/v1/session")).json();
  } catch (_) {
    return;  // the server is away: the page says so itself
  }
  if (who.auth !== "required" || !who.signed_in) return;
  header.append(el("button", {
    type: "button", id: "sign-out", className: "sign-out",
    title: `signed in with a ${who.scope} token of ${who.project}`,
    onclick: async () => {
      await fetch("/api/v1/session", { method: "DELETE" });
      signIn();
    },
  }, "Sign out"));
}
offerSignOut();

// Resolves once Plotly.js (a deferred script, megabytes to compile) is ready: pages ask for
// their data first and draw when both are there.
export const plotlyReady = new Promise((resolve) => {
  if (window.Plotly) { resolve(window.Plotly); return; }
  const script = document.getElementById("plotly-js");
  if (script) script.addEventListener("load", () => resolve(window.Plotly));  // pages without charts have none
});
