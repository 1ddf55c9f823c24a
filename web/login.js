// Sends the token once; the server starts a session (its HttpOnly cookie holds the session's
// own id, never the token), then we go back to where the user was, on this origin only.

// `next` as the browser would resolve it against this page: anything that leaves this origin
// ("//evil", "/\\evil", "https://evil", "javascript:...", with tabs or newlines inside, which
// URL parsing drops) is refused for "/"; what stays is returned as an absolute URL.
export function sameOriginUrl(next, origin = location.origin) {
  if (typeof next !== "string" || next === "") return "/";
  let url;
  try {
    url = new URL(next, origin);
  } catch (_) {
    return "/";
  }
  if (url.origin !== origin || !["http:", "https:"].includes(url.protocol)) return "/";
  // absolute: a path of its own ("http://this//evil" has the path "//evil") could leave
  return url.href;
}

const next = sameOriginUrl(new URLSearchParams(location.search).get("next"));

document.getElementById("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const error = document.getElementById("login-error");
  const response = await fetch("/api/v1/session", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: document.getElementById("token").value.trim() }),
  });
  if (response.ok) {
    location.href = next;
    return;
  }
  let detail = `HTTP ${response.status}`;
  try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
  error.textContent = typeof detail === "string" ? detail : JSON.stringify(detail);
  error.hidden = false;
});
