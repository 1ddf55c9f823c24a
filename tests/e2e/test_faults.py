"""Processes die: 4 clients stream 50,000 steps each while the server is SIGKILLed twice and
restarted; every point is stored exactly once. On SQLite and on PostgreSQL."""

from __future__ import annotations

import threading

import pytest

import trainer_client
from tests.support import BOTH_DATABASES, own_server, series, wait_until

STEPS = 50_000
CLIENTS = 4


@pytest.fixture(params=BOTH_DATABASES)
def killable_server(request, tmp_path):
    with own_server(request.param, tmp_path) as proc:
        yield proc


def stored(server, run_ids) -> int:
    total = 0
    with server.client() as client:
        for run_id in run_ids:
            r = client.get(f"/api/v1/runs/{run_id}/series",
                           params={"key": "loss", "max_points": 3})
            if r.status_code == 200:
                total += r.json()["series"][0]["count"]
    return total


def test_two_sigkills_mid_stream_lose_and_duplicate_nothing(killable_server, spool_dir):
    server = killable_server
    runs = [trainer_client.init(f"fault-{i}", server=server.url, flush_interval=0.05)
            for i in range(CLIENTS)]
    run_ids = [r.id for r in runs]

    def train(run):
        for step in range(STEPS):  # as fast as Python goes: batches of 2,000 steps
            run.log(step=step, loss=step / STEPS, other=1.0)

    threads = [threading.Thread(target=train, args=(r,)) for r in runs]
    for t in threads:
        t.start()
    at_kill = []
    for target in (STEPS // 2, STEPS):  # kill once an eighth, then a quarter, is stored
        wait_until(lambda t=target: stored(server, run_ids) >= t, timeout=120,
                   what=f"{target} points stored")
        at_kill.append(stored(server, run_ids))
        server.kill()
        server.start()
    for t in threads:
        t.join()
    for run in runs:
        run.finish(timeout=180)
    with server.client() as client:
        for run_id in run_ids:
            for key in ("loss", "other"):
                data = series(client, run_id, key, max_points=100_000)
                assert data["count"] == STEPS, (run_id, key, data["count"])
                assert data["steps"] == list(range(STEPS))
            assert client.get(f"/api/v1/runs/{run_id}").json()["status"] == "finished"
    assert not any(spool_dir.glob("*/*.msg"))  # nothing left behind on disk
    # the kills came mid-stream: much was still to be sent each time
    assert all(n < CLIENTS * STEPS for n in at_kill), at_kill
