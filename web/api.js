// Small helpers shared by the pages.
export async function getJSON(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

// The API writes non-finite values as strings; Plotly wants numbers (null leaves a gap).
export function toNumber(v) {
  if (typeof v === "number") return v;
  return null;
}

export function escapeHTML(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}
