"""Series reads are bounded: what one request may cost on a long series. Printed, not asserted.

A real server (SQLite by default, a temporary directory) gets one series of ``--points`` points
(1,000,000 by default) through the ingest API; then each read below is timed (its status, the
points it returned, seconds):

- the probe of issue 21: the key repeated 20 times with ``max_points=100000`` (before the
  bounds: every key read the whole series raw; now a 422 naming the limit, at once);
- the largest reads the bounds allow over the whole series: one key at ``max_points=100000``,
  and 32 keys (``GANWATCH_MAX_SERIES_KEYS``) at 3,125 points each (100,000 in all);
- zoomed ranges too short for the pre-aggregated buckets at the resolution asked: 200,000
  steps at ``max_points=100000`` (2 x max_points points: the most a read takes point by point,
  as before) and 300,000 steps at ``max_points=20000`` (15 x: before, read point by point; now
  from the finest stored buckets);
- the run page's own read, one key at ``max_points=2000``.

``--source DIR`` runs the server of another checkout (e.g. ``git archive HEAD | tar -x -C
DIR``) to measure the same reads before a change.

    .venv/bin/python bench/bounded_reads.py [--points 1000000] [--source DIR]
        [--database-url postgresql://postgres@127.0.0.1:5432/DB] [--timeout 300]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import ROOT, machine, running_server  # noqa: E402


def fill(client: httpx.Client, run_id: str, points: int, chunk: int = 50_000) -> float:
    began = time.perf_counter()
    for lo in range(0, points, chunk):
        steps = list(range(lo, min(points, lo + chunk)))
        body = {"batch_id": uuid.uuid4().hex, "series": {"x": {
            "steps": steps, "values": [((s * 2654435761) % 1000) / 500.0 for s in steps]}}}
        r = client.post(f"/api/v1/runs/{run_id}/points",
                        content=gzip.compress(json.dumps(body).encode(), 1),
                        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
        r.raise_for_status()
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--source", type=Path, default=ROOT,
                        help="the checkout whose server runs (default: this one)")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds one read may take before it is given up")
    args = parser.parse_args()
    print(machine())
    print(f"server: {args.source.resolve()}; database: {args.database_url or 'SQLite'}")
    n = args.points
    reads = [
        ("probe: 20 x the key, max_points=100000", {"key": ["x"] * 20, "max_points": 100_000}),
        ("1 key, max_points=100000, whole series", {"key": "x", "max_points": 100_000}),
        ("32 keys, max_points=3125, whole series", {"key": ["x"] * 32, "max_points": 3125}),
        ("1 key, max_points=100000, 200,000 steps",
         {"key": "x", "max_points": 100_000, "min_step": n // 2 - 100_000,
          "max_step": n // 2 + 99_999}),
        ("1 key, max_points=20000, 300,000 steps",
         {"key": "x", "max_points": 20_000, "min_step": n // 2 - 150_000,
          "max_step": n // 2 + 149_999}),
        ("1 key, max_points=2000, 20,000 steps",
         {"key": "x", "max_points": 2000, "min_step": n // 2, "max_step": n // 2 + 19_999}),
        ("run page: 1 key, max_points=2000, whole series", {"key": "x", "max_points": 2000}),
    ]
    with running_server(args.database_url, args.source.resolve()) as url:
        with httpx.Client(base_url=url, timeout=args.timeout) as client:
            run_id = client.post("/api/v1/runs", json={"name": "bounded-reads"}).json()["id"]
            print(f"filled {n:,} points in {fill(client, run_id, n):.1f} s\n")
            print(f"{'read':52} {'status':>6} {'points':>9} {'seconds':>8}")
            for label, params in reads:
                began = time.perf_counter()
                try:
                    r = client.get(f"/api/v1/runs/{run_id}/series", params=params)
                except httpx.TimeoutException:
                    print(f"{label:52} {'-':>6} {'-':>9} {'>' + str(args.timeout):>8}"
                          "  (given up)")
                    continue
                took = time.perf_counter() - began
                got = sum(len(s["steps"]) for s in r.json()["series"]) \
                    if r.status_code == 200 else 0
                print(f"{label:52} {r.status_code:>6} {got:>9,} {took:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
