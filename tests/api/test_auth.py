"""Tokens: a server started with GANWATCH_AUTH=required lets nobody in without one, each token
only into its project and its scope, revoked tokens at once no more; tokens are stored hashed.
On SQLite and on PostgreSQL, through the real CLI and the real client."""

from __future__ import annotations

import math
import uuid

import httpx
import pytest

import trainer_client
from tests.support import BOTH_DATABASES, ServerProcess, ganwatch, make_token, own_server, series


@pytest.fixture(scope="module", params=BOTH_DATABASES)
def locked(request, tmp_path_factory):
    with own_server(request.param, tmp_path_factory.mktemp("auth"),
                    {"GANWATCH_AUTH": "required"}) as proc:
        yield proc






def client(server, token=None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def points(run_id, values=(1.0, 2.0)):
    return {"batch_id": uuid.uuid4().hex,
            "series": {"loss": {"steps": list(range(len(values))), "values": list(values)}}}


def test_no_token_or_a_bad_one_is_a_401_and_health_stays_open(locked):
    with client(locked) as anonymous:
        assert anonymous.get("/api/v1/health").status_code == 200
        r = anonymous.get("/api/v1/runs")
        assert r.status_code == 401 and "token" in r.json()["detail"]
        assert r.headers["www-authenticate"].startswith("Bearer")
    for bad in ("nonsense", "gw_1_wrong", "gw_999999_x", "gw_abc_def", "Bearer"):
        with client(locked, bad) as c:
            r = c.get("/api/v1/runs")
            assert r.status_code == 401 and r.json()["detail"], bad


def test_a_token_reaches_only_its_project_and_its_scope(locked):
    ingest_a = make_token(locked, "ingest", "team-a")
    read_a = make_token(locked, "read", "team-a")
    ingest_b = make_token(locked, "ingest", "team-b")
    with client(locked, ingest_a) as a, client(locked, read_a) as ra, \
            client(locked, ingest_b) as b:
        run_a = a.post("/api/v1/runs", json={"name": "a-run"}).json()
        assert run_a["project"] == "team-a"
        assert a.post(f"/api/v1/runs/{run_a['id']}/points", json=points(run_a)).status_code == 200
        run_b = b.post("/api/v1/runs", json={"name": "b-run"}).json()["id"]
        # another project's run: neither read nor written, and as unknown as a missing one
        for r, run_id in ((b.get(f"/api/v1/runs/{run_a['id']}"), run_a["id"]),
                          (b.get(f"/api/v1/runs/{run_a['id']}/series", params={"key": "loss"}),
                           run_a["id"]),
                          (b.post(f"/api/v1/runs/{run_a['id']}/points", json=points(run_a)),
                           run_a["id"]),
                          (b.get("/api/v1/alerts", params={"run_id": run_a["id"]}), run_a["id"]),
                          (ra.get(f"/api/v1/runs/{run_b}"), run_b)):
            assert r.status_code == 404 and r.json()["detail"] == f"unknown run '{run_id}'"
        # resuming another project's run by its id is refused too: the id is taken
        r = b.post("/api/v1/runs", json={"name": "x", "id": run_a["id"]})
        assert r.status_code == 409 and "team-a" not in r.json()["detail"]
        r = b.post("/api/v1/runs", json={"name": "x", "project": "team-a"})
        assert r.status_code == 403
        # lists hold only the token's project
        assert {x["id"] for x in ra.get("/api/v1/runs").json()["data"]} == {run_a["id"]}
        assert {x["id"] for x in b.get("/api/v1/runs").json()["data"]} == {run_b}
        # a read token reads, and cannot write
        assert series(ra, run_a["id"], "loss")["count"] == 2
        r = ra.post(f"/api/v1/runs/{run_a['id']}/points", json=points(run_a))
        assert r.status_code == 403 and "read token" in r.json()["detail"]
        # webhooks are an admin's
        r = a.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"})
        assert r.status_code == 403 and "admin" in r.json()["detail"]
    admin = make_token(locked, "admin")
    with client(locked, admin) as ad:
        ids = {x["id"] for x in ad.get("/api/v1/runs").json()["data"]}
        assert {run_a["id"], run_b} <= ids
        assert ad.get("/api/v1/webhooks").status_code == 200


def test_the_client_sends_GANWATCH_TOKEN_and_a_revoked_token_stops_at_once(locked,
                                                                            monkeypatch,
                                                                            spool_dir):
    token = make_token(locked, "ingest", "team-c")
    monkeypatch.setenv("GANWATCH_TOKEN", token)
    run = trainer_client.init("with-a-token", server=locked.url)
    for step in range(50):
        run.log(step=step, loss=math.sin(step))
    run.finish(timeout=60)
    with client(locked, token) as c:
        assert series(c, run.id, "loss")["count"] == 50
        assert c.get(f"/api/v1/runs/{run.id}").json()["project"] == "team-c"
    token_id = token.split("_")[1]
    done = ganwatch(locked, "token", "revoke", token_id)
    assert done.returncode == 0 and "revoked" in done.stdout
    with client(locked, token) as c:
        assert c.get(f"/api/v1/runs/{run.id}").status_code == 401
    listed = ganwatch(locked, "token", "list")
    assert token.split("_", 2)[2] not in listed.stdout  # never shown again


def test_tokens_are_stored_hashed(locked):
    token = make_token(locked, "read", "team-d")
    secret = token.split("_", 2)[2]
    if locked.database_url:
        import psycopg

        with psycopg.connect(locked.database_url.replace("+psycopg", "")) as conn:
            rows = conn.execute("SELECT * FROM api_tokens").fetchall()
    else:
        import sqlite3

        with sqlite3.connect(locked.data_dir / "ganwatch.db") as conn:
            rows = conn.execute("SELECT * FROM api_tokens").fetchall()
    stored = repr(rows)
    assert rows and secret not in stored and token not in stored


def test_the_dashboard_signs_in_with_a_token_cookie(locked):
    token = make_token(locked, "read", "team-e")
    with client(locked) as anonymous:
        assert anonymous.get("/api/v1/session").json() == {
            "auth": "required", "signed_in": False, "scope": None, "project": None}
        r = anonymous.post("/api/v1/session", json={"token": "gw_1_nope"})
        assert r.status_code == 401
        r = anonymous.post("/api/v1/session", json={"token": token})
        assert r.status_code == 200 and r.json()["project"] == "team-e"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        # the cookie now opens the API, the live stream included
        assert anonymous.get("/api/v1/runs").status_code == 200


def test_an_open_server_on_loopback_needs_no_token(tmp_path):
    server = ServerProcess(data_dir=tmp_path / "open").start()  # GANWATCH_AUTH=auto, 127.0.0.1
    try:
        with client(server) as c:
            assert c.get("/api/v1/session").json()["auth"] == "open"
            assert c.post("/api/v1/runs", json={"name": "local"}).status_code == 201
    finally:
        server.stop()
