"""PostgreSQL stops mid-ingest and comes back: meanwhile the server answers 503 with a detail
(not a 500, not a hang), the client spools, and once the database is back every step arrives
exactly once. Restarts this machine's PostgreSQL cluster (pg_ctlcluster, as root), so it runs
where that is allowed (CI) and skips with the reason elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import trainer_client
from tests.support import ServerProcess, fresh_postgres_database, series, wait_until

pytestmark = pytest.mark.postgres


def cluster() -> list[str]:
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*")) if Path(
        "/etc/postgresql").is_dir() else []
    if not versions or not shutil.which("pg_ctlcluster") or os.geteuid() != 0:
        pytest.skip("needs root and a local PostgreSQL cluster managed by pg_ctlcluster")
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main"]


def count(server, run_id: str) -> int:
    with server.client() as api:
        r = api.get(f"/api/v1/runs/{run_id}/series", params={"key": "loss", "max_points": 3})
        return r.json()["series"][0]["count"] if r.status_code == 200 else 0


def pg(ctl: list[str], action: str, *extra: str) -> None:
    subprocess.run([*ctl, action, *extra], check=True, capture_output=True, timeout=120)


def test_the_server_answers_503_while_postgres_is_down_and_clients_catch_up(tmp_path,
                                                                             spool_dir):
    ctl = cluster()
    with fresh_postgres_database() as url:
        server = ServerProcess(data_dir=tmp_path / "server", database_url=url).start()
        run = trainer_client.init("pg-restart", server=server.url, flush_interval=0.05)
        try:
            for step in range(300):
                run.log(step=step, loss=1.0)
            run.flush()
            wait_until(lambda: count(server, run.id) == 300, what="the first 300 steps stored")
            pg(ctl, "stop", "-m", "fast")
            try:
                with server.client() as api:
                    health = api.get("/api/v1/health")
                    assert health.status_code == 503
                    r = api.post(f"/api/v1/runs/{run.id}/points", json={
                        "batch_id": "while-down", "series": {"x": {"steps": [0],
                                                                   "values": [1.0]}}})
                    assert r.status_code == 503 and "retry" in r.json()["detail"]
                for step in range(300, 600):
                    run.log(step=step, loss=2.0)
                wait_until(lambda: any((spool_dir / run.id).glob("*.msg")),
                           what="batches spooled while the database is down")
            finally:
                pg(ctl, "start")
            def healthy():
                with server.client() as api:
                    return api.get("/api/v1/health").status_code == 200

            wait_until(healthy, timeout=60, what="the server healthy again")
            for step in range(600, 700):
                run.log(step=step, loss=3.0)
            run.finish(timeout=120)
            with server.client() as api:
                data = series(api, run.id, "loss", max_points=100_000)
            assert data["steps"] == list(range(700))
        finally:
            server.stop()
