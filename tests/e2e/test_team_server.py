"""A team server: one that requires tokens answers trainers by whatever host name they reach it
by (GANWATCH_URL=http://gpu-box:8765), unless GANWATCH_ALLOWED_HOSTS limits the names; an open
server still answers only its own (DNS rebinding). A NUL in a path or query parameter is the
same 422 on SQLite and PostgreSQL, before any authorisation looks the id up. Origins compare
without default ports. Real servers on both databases; tokens from the real CLI."""

from __future__ import annotations

import httpx
import pytest

from monitor.guard import _origin_of
from tests.support import BOTH_DATABASES, make_token, own_server


def bearer(server, token: str) -> httpx.Client:
    """A client of 127.0.0.1 (no name resolves here) that says whichever Host a test gives."""
    return httpx.Client(base_url=server.url, timeout=30,
                        headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module", params=BOTH_DATABASES)
def team(request, tmp_path_factory):
    with own_server(request.param, tmp_path_factory.mktemp("team"),
                    {"GANWATCH_AUTH": "required"}) as proc:
        proc.token = make_token(proc, "ingest", "team")
        yield proc


@pytest.fixture(scope="module", params=BOTH_DATABASES)
def listed(request, tmp_path_factory):
    with own_server(request.param, tmp_path_factory.mktemp("team-listed"),
                    {"GANWATCH_AUTH": "required", "GANWATCH_ALLOWED_HOSTS": "gpu-box"}) as proc:
        proc.token = make_token(proc, "ingest", "team")
        yield proc


@pytest.fixture(scope="module", params=BOTH_DATABASES)
def open_server(request, tmp_path_factory):
    with own_server(request.param, tmp_path_factory.mktemp("team-open")) as proc:
        yield proc


def test_a_server_requiring_tokens_answers_a_trainer_by_any_host_name(team):
    with bearer(team, team.token) as c:
        created = c.post("/api/v1/runs", json={"name": "remote", "project": "team"},
                         headers={"Host": "gpu-box:8765"})
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        r = c.post(f"/api/v1/runs/{run_id}/points", headers={"Host": "gpu-box:8765"},
                   json={"batch_id": "b1", "series": {"loss": {"steps": [0, 1],
                                                               "values": [1.0, 0.5]}}})
        assert r.status_code == 200, r.text
        r = c.get(f"/api/v1/runs/{run_id}", headers={"Host": "gpu-box:8765"})
        assert r.status_code == 200, r.text
    # without a token, a foreign name gets what any request without one gets: a 401
    with team.client() as c:
        r = c.get("/api/v1/runs", headers={"Host": "evil.example"})
        assert r.status_code == 401, r.text


def test_allowed_hosts_limits_the_names_of_a_server_requiring_tokens(listed):
    with bearer(listed, listed.token) as c:
        for host in ("gpu-box:8765", "GPU-BOX", f"127.0.0.1:{listed.port}"):
            r = c.get("/api/v1/runs", headers={"Host": host})
            assert r.status_code == 200, (host, r.text)
        for host in ("other:8765", "gpu-box.evil:8765"):
            r = c.get("/api/v1/runs", headers={"Host": host})
            assert r.status_code == 400, (host, r.text)
            assert "GANWATCH_ALLOWED_HOSTS" in r.json()["detail"]


def test_an_open_server_still_refuses_a_foreign_host(open_server):
    with open_server.client() as c:
        r = c.get("/api/v1/runs", headers={"Host": "gpu-box:8765"})
        assert r.status_code == 400, r.text
        assert "GANWATCH_ALLOWED_HOSTS" in r.json()["detail"]
        assert c.get("/api/v1/runs", headers={"Host": "localhost"}).status_code == 200


def test_a_write_behind_the_default_port_keeps_its_origin(open_server):
    # a browser's Origin omits :80, a Host header may carry it: the same origin
    with open_server.client() as c:
        r = c.post("/api/v1/runs", json={"name": "port-80"},
                   headers={"Host": "localhost:80", "Origin": "http://localhost",
                            "Sec-Fetch-Site": "same-origin"})
        assert r.status_code == 201, r.text
        r = c.post("/api/v1/runs", json={"name": "port-81"},
                   headers={"Host": "localhost:81", "Origin": "http://localhost",
                            "Sec-Fetch-Site": "same-origin"})
        assert r.status_code == 403, r.text


NUL_PATH = "the path parameter 'run_id' holds a NUL character (at 0)"
NUL_QUERY = "the query parameter 'run_id' holds a NUL character (at 0)"


def test_a_nul_in_a_parameter_is_the_same_422_on_every_database(team):
    with bearer(team, team.token) as c:
        r = c.get("/api/v1/runs/%00")
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == NUL_PATH
        r = c.get("/api/v1/alerts?run_id=%00")
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == NUL_QUERY


@pytest.mark.parametrize(("url", "origin"), [
    ("http://gpu-box:80", "http://gpu-box"),
    ("http://gpu-box", "http://gpu-box"),
    ("HTTP://GPU-Box:80/", "http://gpu-box"),
    ("https://gpu-box:443/path", "https://gpu-box"),
    ("https://gpu-box:80", "https://gpu-box:80"),
    ("http://gpu-box:443", "http://gpu-box:443"),
    ("http://gpu-box:8765", "http://gpu-box:8765"),
    ("http://user:pw@gpu-box:8765", "http://gpu-box:8765"),
    ("http://[::1]:80", "http://[::1]"),
    ("http://[::1]:8765", "http://[::1]:8765"),
    ("null", None),
    ("http://gpu-box:port", None),
    ("", None),
])
def test_origins_compare_without_default_ports(url, origin):
    assert _origin_of(url) == origin
