"""Points per second one ganwatch server accepts, from 1 and 4 concurrent clients. Printed, not
asserted.

    .venv/bin/python bench/ingest.py [--requests 40] [--clients 1,4] [--source DIR]
    .venv/bin/python bench/ingest.py --database-url postgresql://postgres@127.0.0.1:5432/test

Each request is what the training client sends: a gzip JSON batch of --series series x --steps
steps (default 10 x 1,000 = 10,000 points) with its own batch id, posted to
/api/v1/runs/{run_id}/points over one kept-alive httpx connection per client. Bodies are built
before the clock starts; each client posts one untimed warm-up batch, then --requests timed
ones. Every client has its own run. Target: >= 100,000 points/s.

With a PostgreSQL --database-url, the benchmark creates a fresh database beside the one named
(ganwatch_bench_<random>, like the test suite does), measures there and drops it at the end, so
each run starts empty and the named database is left untouched; --in-place uses the named
database itself.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import statistics
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from _server import machine, running_server  # noqa: E402

TARGET = 100_000
HEADERS = {"Content-Type": "application/json", "Content-Encoding": "gzip"}


@contextmanager
def scratch_database(url: str | None, in_place: bool):
    """Yield the database URL to measure on: a fresh PostgreSQL database, dropped afterwards."""
    if url is None or in_place or not url.startswith("postgresql"):
        yield url
        return
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = f"ganwatch_bench_{uuid.uuid4().hex[:8]}"
    admin = dict(host=parsed.host or "127.0.0.1", port=parsed.port or 5432,
                 user=parsed.username, password=parsed.password,
                 dbname=parsed.database or "postgres", autocommit=True, connect_timeout=10)
    with psycopg.connect(**admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(**admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_bodies(n: int, series: int, steps: int) -> list[bytes]:
    """n gzip batches (as the client makes them: compresslevel 1), consecutive steps."""
    now = time.time()
    out = []
    for i in range(n):
        step_list = list(range(i * steps, (i + 1) * steps))
        body = {"batch_id": uuid.uuid4().hex, "series": {
            f"grad_norm/D/layer{k}": {"steps": step_list,
                                      "values": [0.001 * s + k + 0.123456789 for s in step_list],
                                      "wall_times": [now + 0.01 * s for s in step_list]}
            for k in range(series)}}
        out.append(gzip.compress(json.dumps(body).encode(), compresslevel=1))
    return out


def client(url: str, run_id: str, warmup: bytes, bodies: list[bytes], start: threading.Barrier,
           latencies: list[float], errors: list[str]) -> None:
    path = f"/api/v1/runs/{run_id}/points"
    with httpx.Client(base_url=url, timeout=120) as http:
        try:
            r = http.post(path, content=warmup, headers=HEADERS)
            if r.status_code != 200:
                errors.append(f"warm-up: HTTP {r.status_code} {r.text[:200]}")
        finally:
            start.wait()  # every client starts its timed requests together
        for body in bodies:
            t0 = time.perf_counter()
            r = http.post(path, content=body, headers=HEADERS)
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200 or r.json().get("duplicate"):
                errors.append(f"HTTP {r.status_code} {r.text[:200]}")
                return


def measure(urls: list[str], clients: int, requests: int, series: int, steps: int) -> dict:
    """Client i posts to replica i mod len(urls) (a round-robin load balancer)."""
    url = urls[0]
    with httpx.Client(base_url=url, timeout=30) as http:
        run_ids = []
        for _ in range(clients):
            run_id = f"ingest-{clients}-{uuid.uuid4().hex[:8]}"
            r = http.post("/api/v1/runs", json={"id": run_id, "name": f"ingest x{clients}"})
            r.raise_for_status()
            run_ids.append(run_id)
    # One more batch per client for the warm-up (sent first, its steps past the timed ones').
    work = [make_bodies(requests + 1, series, steps) for _ in range(clients)]
    latencies: list[float] = []
    errors: list[str] = []
    barrier = threading.Barrier(clients + 1)
    threads = [threading.Thread(target=client, daemon=True,
                                args=(urls[i % len(urls)], run_ids[i], work[i][-1],
                                      work[i][:-1], barrier,
                                      latencies, errors))
               for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait(timeout=120)
    t0 = time.perf_counter()
    for t in threads:
        t.join(timeout=600)
    elapsed = time.perf_counter() - t0
    if errors or any(t.is_alive() for t in threads):
        raise SystemExit(f"ingest failed: {errors[:3] or 'a client did not finish in 600 s'}")
    # Check that the server holds every point (one series per run: all series are alike).
    with httpx.Client(base_url=url, timeout=60) as http:
        stored = sum(
            http.get(f"/api/v1/runs/{run_id}/series",
                     params={"key": "grad_norm/D/layer0", "max_points": 3}
                     ).json()["series"][0]["count"] * series
            for run_id in run_ids)
    n_requests = clients * requests
    points = n_requests * series * steps
    q = statistics.quantiles(latencies, n=20, method="inclusive")
    return {"clients": clients, "points": points, "requests": n_requests, "elapsed": elapsed,
            "points_s": points / elapsed, "requests_s": n_requests / elapsed,
            "p50_ms": statistics.median(latencies) * 1e3, "p95_ms": q[18] * 1e3,
            "stored": stored, "expected": (n_requests + clients) * series * steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--requests", type=int, default=40, help="timed requests per client")
    parser.add_argument("--clients", default="1,4", help="concurrent client counts to measure")
    parser.add_argument("--series", type=int, default=10, help="series per request")
    parser.add_argument("--steps", type=int, default=1000, help="steps per series per request")
    parser.add_argument("--database-url",
                        help="SQLAlchemy URL of another database, e.g. "
                             "postgresql://postgres@127.0.0.1:5432/test (default: SQLite in a "
                             "temporary directory)")
    parser.add_argument("--replicas", type=int, default=1,
                        help="server processes on the one database, clients spread over them")
    parser.add_argument("--source", type=Path, default=None,
                        help="run another checkout's server (a baseline, to compare a change)")
    parser.add_argument("--in-place", action="store_true",
                        help="measure in the --database-url database itself instead of a "
                             "fresh scratch database beside it")
    args = parser.parse_args()
    try:
        counts = [int(c) for c in args.clients.split(",")]
    except ValueError:
        parser.error("--clients takes comma-separated integers, e.g. 1,4")
    if min(counts + [args.requests, args.series, args.steps]) < 1:
        parser.error("counts must be >= 1")

    print(f"machine: {machine()}")
    print(f"database: {args.database_url or 'SQLite (WAL), fresh temporary data dir'}; "
          f"{args.series} series x {args.steps:,} steps = {args.series * args.steps:,} points "
          f"per gzip request, {args.requests} timed requests per client; "
          f"target >= {TARGET:,} points/s")
    source = {"source": args.source.resolve()} if args.source else {}
    with scratch_database(args.database_url, args.in_place) as database_url, \
            contextlib.ExitStack() as servers:
        if args.replicas > 1 and not database_url:
            parser.error("--replicas needs a --database-url (replicas share one database)")
        urls = [servers.enter_context(running_server(database_url, **source))
                for _ in range(max(1, args.replicas))]
        print(f"{len(urls)} server process(es) on the database")
        if database_url != args.database_url:
            print(f"(a fresh database for this run: {database_url.rsplit('/', 1)[-1]}, "
                  "dropped at the end)")
        for clients in counts:
            r = measure(urls, clients, args.requests, args.series, args.steps)
            ok = "meets" if r["points_s"] >= TARGET else "MISSES"
            print(f"{clients} client(s): {r['points_s']:>10,.0f} points/s ({ok} target)  "
                  f"{r['requests_s']:6.1f} requests/s  latency p50 {r['p50_ms']:7.1f} ms  "
                  f"p95 {r['p95_ms']:7.1f} ms  ({r['points']:,} points in {r['elapsed']:.2f} s; "
                  f"stored {r['stored']:,} of {r['expected']:,} incl. warm-up)", flush=True)


if __name__ == "__main__":
    main()
