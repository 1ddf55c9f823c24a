// Sends the token once; the server keeps it in an HttpOnly cookie, then we go back.
const next = new URLSearchParams(location.search).get("next") || "/";

document.getElementById("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const error = document.getElementById("login-error");
  const response = await fetch("/api/v1/session", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: document.getElementById("token").value.trim() }),
  });
  if (response.ok) {
    location.href = next.startsWith("/") && !next.startsWith("//") ? next : "/";  // same site only
    return;
  }
  let detail = `HTTP ${response.status}`;
  try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
  error.textContent = typeof detail === "string" ? detail : JSON.stringify(detail);
  error.hidden = false;
});
