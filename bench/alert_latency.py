"""Alert latency: from the ``run.log`` call carrying a failing step to the webhook's arrival.
Printed, not asserted.

A real server (SQLite, temporary directory) and a real HTTP receiver on loopback; runs stream
with the client's default flush interval (1 s) at ``--rate`` steps per second. Every
``--every`` steps a run logs a NaN loss: the ``non_finite`` rule fires at once (it resolves
after 5 clean steps here, with no cooldown, so one run fires again and again). The time of the
failing ``run.log`` call is taken in the run's thread, the arrival time in the receiver; their
difference, per firing delivery, gives p50 and p99 (the receiver runs in a process of its
own, answering at once, so its own pace does not count), with 1 and with 20 runs streaming at once.
Target: p99 <= 2 s.

    .venv/bin/python bench/alert_latency.py [--runs 1,20] [--firings 10] [--rate 100]
        [--database-url postgresql://postgres@127.0.0.1:5432/DB]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import queue
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import machine, running_server  # noqa: E402

import trainer_client  # noqa: E402

RULES = {"non_finite": {"clear_for": 5, "cooldown": 0}}


def _receive(port_queue, arrivals_queue) -> None:
    """The receiver, in a process of its own (as a real one would be): it answers 200 at once
    and reports each firing delivery's arrival time with its run and failing step."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            now = time.time()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            payload = json.loads(body)
            if payload.get("event") == "firing":
                alert = payload["alerts"][0]
                # the failing step itself (the rule may fire at a later evaluated step)
                step = alert["evidence"].get("first_step", alert["step"])
                arrivals_queue.put((alert["labels"]["run_id"], step, now,
                                    self.headers.get("X-Ganwatch-Delivery")))

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 256  # the default 5 drops bursts of connections (1 s SYN retry)

    server = Server(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


class Arrivals:
    """The receiver process and the arrival times it reports, by (run id, failing step)."""

    def __init__(self) -> None:
        ports, self.queue = multiprocessing.Queue(), multiprocessing.Queue()
        self.process = multiprocessing.Process(target=_receive, args=(ports, self.queue),
                                               daemon=True)
        self.process.start()
        self.url = f"http://127.0.0.1:{ports.get(timeout=30)}/hook"
        self.times: dict[tuple[str, int], float] = {}
        self.uuids: dict[tuple[str, int], str] = {}

    def wait(self, keys: set, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not keys <= set(self.times) and time.monotonic() < deadline:
            try:
                run_id, step, at, uuid = self.queue.get(
                    timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.times.setdefault((run_id, step), at)
            self.uuids.setdefault((run_id, step), uuid)

    def close(self) -> None:
        self.process.terminate()
        self.process.join(10)


def stream(server: str, index: int, firings: int, every: int, rate: float, sent: dict,
           lock: threading.Lock) -> None:
    run = trainer_client.init(f"latency-{index}", server=server, rules=RULES)
    period = 1.0 / rate
    start = time.perf_counter()
    for step in range(firings * every):
        failing = step % every == every - 1
        t = time.time()
        run.log(step=step, d_loss=math.nan if failing else 1.0, g_loss=1.0)
        if failing:
            with lock:
                sent[run.id, step] = t
        pause = start + (step + 1) * period - time.perf_counter()
        if pause > 0:
            time.sleep(pause)  # the training loop's pace
    run.finish()


def measure(server: str, arrivals: Arrivals, runs: int, firings: int, every: int,
            rate: float) -> list[float]:
    sent: dict[tuple[str, int], float] = {}
    lock = threading.Lock()
    threads = [threading.Thread(target=stream, args=(server, i, firings, every, rate, sent,
                                                     lock)) for i in range(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    arrivals.wait(set(sent), timeout=60)
    missing = [k for k in sent if k not in arrivals.times]
    if missing:
        print(f"  {len(missing)} of {len(sent)} firings did not arrive within 60 s")
    measure.last = {k: (t, arrivals.times[k], arrivals.uuids[k]) for k, t in sent.items()
                    if k in arrivals.times}
    return sorted(arrivals.times[k] - t for k, t in sent.items() if k in arrivals.times)


def breakdown(server: str, hook_id: int, firings: dict) -> None:
    """Where the time went, per firing: the run.log call -> the outbox row written with the
    alert (client flush wait, request, ingest, rule evaluation) -> the send starting (the
    delivery worker picking it up) -> the arrival (the HTTP request itself)."""
    from datetime import datetime

    rows, offset = {}, 0
    while True:  # bounded: the pages of the webhook's deliveries
        page = httpx.get(f"{server}/api/v1/webhooks/{hook_id}/deliveries",
                         params={"limit": 1000, "offset": offset}, timeout=30).json()["data"]
        rows.update({d["uuid"]: d for d in page})
        if len(page) < 1000:
            break
        offset += 1000
    stages: dict[str, list[float]] = {"log -> alert stored": [], "stored -> send starts": [],
                                      "send -> arrival": []}
    for sent, arrived, uuid in firings.values():
        d = rows.get(uuid)
        if not d or not d["log"]:
            continue
        first = d["log"][-1] if d["log"][0]["at"] > d["log"][-1]["at"] else d["log"][0]
        created = datetime.fromisoformat(d["created_at"]).timestamp()
        send = datetime.fromisoformat(first["at"]).timestamp() - first["duration_ms"] / 1000
        stages["log -> alert stored"].append(created - sent)
        stages["stored -> send starts"].append(send - created)
        stages["send -> arrival"].append(arrived - send)
    for name, values in stages.items():
        if values:
            values.sort()
            print(f"      {name:24s} p50 {statistics.median(values):6.3f}s  "
                  f"p99 {pct(values, 0.99):6.3f}s  max {values[-1]:6.3f}s")


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="1,20", help="concurrent runs, one figure each")
    parser.add_argument("--firings", type=int, default=10, help="failing steps per run")
    parser.add_argument("--every", type=int, default=50, help="steps between failing steps")
    parser.add_argument("--rate", type=float, default=100.0, help="steps per second per run")
    parser.add_argument("--database-url", help="run the server on this database (a scratch "
                                               "PostgreSQL database; default SQLite)")
    args = parser.parse_args()
    print(machine())
    arrivals = Arrivals()
    with running_server(args.database_url) as server:
        hook = httpx.post(f"{server}/api/v1/webhooks", json={"url": arrivals.url}, timeout=10)
        hook.raise_for_status()
        print(f"client flush interval 1 s (default), {args.rate:.0f} steps/s per run, a NaN "
              f"every {args.every} steps, {args.firings} per run")
        print(f"{'runs':>5s} {'firings':>8s} {'p50':>8s} {'p99':>8s} {'max':>8s}   "
              "target p99 <= 2 s")
        for n in (int(x) for x in args.runs.split(",")):
            latencies = measure(server, arrivals, n, args.firings, args.every, args.rate)
            if not latencies:
                print(f"{n:>5d} {0:>8d}  nothing arrived")
                continue
            print(f"{n:>5d} {len(latencies):>8d} {statistics.median(latencies):7.3f}s "
                  f"{pct(latencies, 0.99):7.3f}s {latencies[-1]:7.3f}s", flush=True)
            breakdown(server, hook.json()["id"], measure.last)
    arrivals.close()


if __name__ == "__main__":
    main()
