"""Dashboard speed on a long run: 8 series of 1,000,000 points each. Printed, not asserted.

A real server (SQLite by default, temporary directory) is filled through the ingest API, then:

- the series endpoint's latency for one series at 2,000 min/max buckets (``max_points=4002``)
  and at the 1,000 buckets the run page asks for (``max_points=2000``), over the whole run and
  over a zoomed tenth of it, ``--repeats`` times each (p50, max);
- in Debian's Chromium (Playwright), the time from navigation to every chart drawn on the run
  page (the page records ``performance.now()`` when its last chart is drawn, and when Plotly.js
  became usable): on a first visit (a fresh browser profile, ``--repeats`` profiles) and on
  returning visits (``--repeats`` visits after two earlier ones in one profile: Chromium then
  reuses Plotly.js's compiled code, 4.7 MB of JavaScript).

Targets: <= 150 ms per series request, <= 1.5 s for the page.

    .venv/bin/python bench/dashboard.py [--points 1000000] [--repeats 5]
        [--database-url postgresql://postgres@127.0.0.1:5432/DB]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import machine, running_server  # noqa: E402

KEYS = ["d_loss", "g_loss", "d_real", "d_fake", "grad_norm/G", "grad_norm/D",
        "diversity/ratio", "lr"]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def fill(client: httpx.Client, run_id: str, points: int, chunk: int = 20_000) -> float:
    start = time.perf_counter()
    for lo in range(0, points, chunk):
        steps = list(range(lo, min(points, lo + chunk)))
        series = {k: {"steps": steps,
                      "values": [((s * 2654435761 + i * 97) % 1000) / 500.0 for s in steps]}
                  for i, k in enumerate(KEYS)}
        body = gzip.compress(json.dumps({"batch_id": uuid.uuid4().hex,
                                         "series": series}).encode(), 1)
        r = client.post(f"/api/v1/runs/{run_id}/points", content=body,
                        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
        r.raise_for_status()
    return time.perf_counter() - start


def time_series(client: httpx.Client, run_id: str, params: dict, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        r = client.get(f"/api/v1/runs/{run_id}/series", params=params)
        out.append((time.perf_counter() - start) * 1000)
        r.raise_for_status()
    return out


def time_page(url: str, repeats: int, chromium: str) -> tuple[list, list]:
    """(cold, warm) visits, each (ms to every chart drawn, ms to Plotly.js usable): cold is the
    first visit of a fresh browser profile; warm are the visits after two earlier ones in one
    profile, when Chromium reuses Plotly.js and its compiled code from its caches."""
    import tempfile

    from playwright.sync_api import sync_playwright

    def visit(context) -> tuple[float, float]:
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]", state="attached", timeout=120_000)
        got = page.evaluate("() => [window.ganwatch.readyAt, window.ganwatch.plotlyAt]")
        page.close()
        return got

    cold, warm = [], []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profiles:
        def profile(i: int):
            return p.chromium.launch_persistent_context(
                f"{profiles}/{i}", executable_path=chromium, args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1000})
        for i in range(repeats):
            context = profile(i)
            cold.append(visit(context))
            context.close()
        context = profile(repeats)
        for i in range(repeats + 2):
            got = visit(context)
            if i >= 2:
                warm.append(got)
            # Chromium writes a script's compiled code to its cache after the load, off the
            # page: give it a moment (this pause is outside what is timed)
            time.sleep(1)
        context.close()
    return cold, warm


def summary(ms: list[float]) -> str:
    return f"p50 {statistics.median(ms):7.1f} ms   max {max(ms):7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000, help="points per series")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    print(machine())
    with running_server(args.database_url) as url, httpx.Client(base_url=url,
                                                                 timeout=300) as client:
        run_id = client.post("/api/v1/runs", json={"name": "long-run"}).json()["id"]
        took = fill(client, run_id, args.points)
        total = args.points * len(KEYS)
        print(f"stored {total:,} points ({len(KEYS)} series x {args.points:,}) in {took:.1f} s "
              f"({total / took:,.0f} points/s)")
        tenth = {"min_step": args.points * 4 // 10, "max_step": args.points // 2 - 1}
        for label, params in (
                ("series, 2,000 buckets, whole run", {"key": "d_loss", "max_points": 4002}),
                ("series, 1,000 buckets, whole run", {"key": "d_loss", "max_points": 2000}),
                ("series, 2,000 buckets, a tenth", {"key": "d_loss", "max_points": 4002,
                                                    **tenth}),
                # a close zoom: too short for the stored buckets, read from the points
                ("series, 2,000 buckets, 1/25 (raw)", {
                    "key": "d_loss", "max_points": 4002, "min_step": args.points // 2,
                    "max_step": args.points // 2 + args.points // 25 - 1})):
            time_series(client, run_id, params, 1)  # warm the database's cache
            print(f"{label:38s} {summary(time_series(client, run_id, params, args.repeats))}")
        cold, warm = time_page(f"{url}/runs/{run_id}", args.repeats, args.chromium)
        for label, visits in (("first visit", cold), ("returning visit", warm)):
            print(f"{'run page, ' + label + ', charts drawn':38s} "
                  f"{summary([r for r, _ in visits])}")
            print(f"{'  of which: until Plotly.js is usable':38s} "
                  f"{summary([p for _, p in visits])}")


if __name__ == "__main__":
    main()
