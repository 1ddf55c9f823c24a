"""Points per second one server accepts, from 1 and 4 concurrent clients. Printed, not asserted.

    .venv/bin/python bench/ingest.py [--requests 40] [--database-url postgresql://...]

Each request is what the client sends: a gzip JSON batch of 10 series x 1,000 steps (10,000
points) with its own batch id, over a kept-alive connection.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from _server import machine, running_server  # noqa: E402

SERIES, STEPS = 10, 1000


def make_batches(n: int, first_step: int) -> list[bytes]:
    now = time.time()
    out = []
    for i in range(n):
        steps = list(range(first_step + i * STEPS, first_step + (i + 1) * STEPS))
        body = {"batch_id": uuid.uuid4().hex, "series": {
            f"grad_norm/D/layer{k}": {"steps": steps, "values": [0.001 * s + k for s in steps],
                                      "wall_times": [now] * STEPS} for k in range(SERIES)}}
        out.append(gzip.compress(json.dumps(body).encode(), compresslevel=1))
    return out


def client(url: str, run_id: str, bodies: list[bytes], latencies: list[float]) -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    with httpx.Client(base_url=url, timeout=60) as http:
        for body in bodies:
            start = time.perf_counter()
            response = http.post(f"/api/v1/runs/{run_id}/points", content=body, headers=headers)
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200:
                raise SystemExit(f"ingest failed: {response.status_code} {response.text}")


def measure(url: str, clients: int, requests: int) -> None:
    with httpx.Client(base_url=url) as http:
        run_ids = [http.post("/api/v1/runs", json={"name": f"ingest-{clients}"}).json()["id"]
                   for _ in range(clients)]
    work = [make_batches(requests, 0) for _ in range(clients)]
    latencies: list[float] = []
    threads = [threading.Thread(target=client, args=(url, run_ids[i], work[i], latencies))
               for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    n_requests = clients * requests
    points = n_requests * SERIES * STEPS
    q = statistics.quantiles(latencies, n=20)
    print(f"{clients} client(s): {points / elapsed:>10,.0f} points/s  {n_requests / elapsed:6.1f} "
          f"requests/s  latency p50 {statistics.median(latencies) * 1e3:6.1f} ms  "
          f"p95 {q[18] * 1e3:6.1f} ms  ({points:,} points in {elapsed:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=40, help="requests per client")
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"database: {args.database_url or 'SQLite (WAL)'}; batches of {SERIES} series x "
          f"{STEPS} steps; target >= 100,000 points/s")
    with running_server(args.database_url) as url:
        for clients in (1, 4):
            measure(url, clients, args.requests)


if __name__ == "__main__":
    main()
