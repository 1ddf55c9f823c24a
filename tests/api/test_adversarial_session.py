"""The dashboard's sign-in, cross-site requests, DNS rebinding and work before authentication,
as an attacker would try them: over HTTP against real servers, on SQLite and PostgreSQL, tokens
made with the real CLI (issue 21, defects 4, 5, 6, 10 and 11).

- The sign-in cookie holds a session's own random id (stored hashed), never the token; sign-out,
  expiry and the token's revocation end the session on the server.
- Requests that change something with the cookie (or with nothing, on an open server) must come
  from the dashboard's own origin; bearer-token requests are unaffected.
- Only the server's own host names are answered (loopback names, GANWATCH_ALLOWED_HOSTS).
- Without a token, a gzip bomb is refused before a byte of it is inflated; with one, the limit
  holds as bytes arrive.
- Token ids are ASCII digits; hostile tokens are 401s, never 500s.
- nosniff everywhere, a Content-Security-Policy on the pages, private sample PNGs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import socket
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from monitor.settings import Settings
from tests.support import BOTH_DATABASES, ROOT, ganwatch, make_token, own_server

TTL = 3600
MAX_BODY = 4 * 1024 * 1024
HYPOTHESIS = settings(max_examples=40, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", params=BOTH_DATABASES)
def locked(request, tmp_path_factory):
    with own_server(request.param, tmp_path_factory.mktemp("adv-session"),
                    {"GANWATCH_AUTH": "required", "GANWATCH_SESSION_TTL": str(TTL),
                     "GANWATCH_MAX_BODY_BYTES": str(MAX_BODY)}) as proc:
        yield proc


@pytest.fixture(scope="module", params=BOTH_DATABASES)
def open_server(request, tmp_path_factory):
    """An open loopback server (the default), which also answers two names of its own."""
    with own_server(request.param, tmp_path_factory.mktemp("adv-open"),
                    {"GANWATCH_ALLOWED_HOSTS": "ganwatch.internal, Dash.Example.com"}) as proc:
        yield proc






def bearer(server, token) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30,
                        headers={"Authorization": f"Bearer {token}"})


def with_cookie(server, session_id, **headers) -> httpx.Client:
    """A browser-like client holding only the session cookie (no Authorization header)."""
    return httpx.Client(base_url=server.url, timeout=30,
                        headers={"Cookie": f"ganwatch_session={session_id}", **headers})


def sign_in(server, token) -> tuple[str, httpx.Response]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.post("/api/v1/session", json={"token": token})
    assert r.status_code == 200, r.text
    return r.cookies["ganwatch_session"], r


def sql(server, statement: str, params: tuple = ()) -> list:
    """A statement on the server's own database ("?" placeholders)."""
    if server.database_url:
        import psycopg

        with psycopg.connect(server.database_url.replace("+psycopg", "")) as conn:
            cur = conn.execute(statement.replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []
    import sqlite3

    conn = sqlite3.connect(server.data_dir / "ganwatch.db")
    try:
        with conn:
            return conn.execute(statement, params).fetchall()
    finally:
        conn.close()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, format="PNG")
    return out.getvalue()


def points(values) -> dict:
    return {"batch_id": uuid.uuid4().hex,
            "series": {"loss": {"steps": list(range(len(values))), "values": list(values)}}}


# --- the session: a random id of its own, hashed, ended by sign-out, expiry, revocation ------

def test_the_cookie_holds_a_session_id_of_its_own_never_the_token(locked):
    token = make_token(locked, "read", "s-cookie")
    token_id, secret = token.split("_", 2)[1:]
    before = datetime.now(timezone.utc)
    session_id, r = sign_in(locked, token)
    assert token not in session_id and secret not in session_id and secret[:8] not in session_id
    assert len(session_id) >= 32
    cookie = r.headers["set-cookie"]
    assert token not in cookie and secret not in cookie
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered and "path=/" in lowered
    assert f"max-age={TTL}" in lowered  # GANWATCH_SESSION_TTL
    assert "secure" not in lowered  # plain http here; https gets Secure
    expires = datetime.fromisoformat(r.json()["expires_at"])
    assert before + timedelta(seconds=TTL - 60) < expires < before + timedelta(seconds=TTL + 60)
    with with_cookie(locked, session_id) as browser:
        assert browser.get("/api/v1/runs").status_code == 200
        assert browser.get("/api/v1/session").json()["project"] == "s-cookie"
    # stored hashed: the database holds its SHA-256, linked to the token, not the id itself
    rows = sql(locked, "SELECT * FROM dashboard_sessions WHERE token_id = ?", (int(token_id),))
    assert len(rows) == 1
    assert session_id not in repr(rows) and token not in repr(rows) and secret not in repr(rows)
    assert hashlib.sha256(session_id.encode()).hexdigest() in repr(rows)
    # two sign-ins are two sessions
    assert sign_in(locked, token)[0] != session_id


def test_sign_out_ends_the_session_and_a_replayed_cookie_is_refused(locked):
    token = make_token(locked, "read", "s-out")
    kept, _ = sign_in(locked, token)
    ended, _ = sign_in(locked, token)
    with with_cookie(locked, ended) as browser:
        assert browser.get("/api/v1/runs").status_code == 200
        r = browser.delete("/api/v1/session")
        assert r.status_code == 204
        cleared = r.headers["set-cookie"].lower()
        assert cleared.startswith("ganwatch_session=") and ("max-age=0" in cleared
                                                            or "expires=" in cleared)
    with with_cookie(locked, ended) as replay:  # the old cookie, sent again
        r = replay.get("/api/v1/runs")
        assert r.status_code == 401 and "sign in again" in r.json()["detail"]
        assert replay.get("/api/v1/session").json()["signed_in"] is False
        assert replay.post("/api/v1/alerts/1/ack").status_code == 401
    with with_cookie(locked, kept) as other, bearer(locked, token) as client:
        assert other.get("/api/v1/runs").status_code == 200  # only that session ended
        assert client.get("/api/v1/runs").status_code == 200  # and the token lives on


def test_an_expired_session_is_refused(locked):
    token = make_token(locked, "read", "s-expired")
    session_id, _ = sign_in(locked, token)
    with with_cookie(locked, session_id) as browser:
        assert browser.get("/api/v1/runs").status_code == 200
        digest = hashlib.sha256(session_id.encode()).hexdigest()
        sql(locked, "UPDATE dashboard_sessions SET expires_at = created_at "
                    "WHERE secret_sha256 = ?", (digest,))
        r = browser.get("/api/v1/runs")
        assert r.status_code == 401 and "expired" in r.json()["detail"]
        assert browser.get("/api/v1/session").json()["signed_in"] is False


def test_revoking_the_token_ends_its_sessions(locked):
    token = make_token(locked, "ingest", "s-revoked")
    first, _ = sign_in(locked, token)
    second, _ = sign_in(locked, token)
    with with_cookie(locked, first) as a, with_cookie(locked, second) as b:
        assert a.get("/api/v1/runs").status_code == 200
        done = ganwatch(locked, "token", "revoke", token.split("_")[1])
        assert done.returncode == 0, done.stderr
        for browser in (a, b):
            assert browser.get("/api/v1/runs").status_code == 401
            assert browser.post("/api/v1/runs", json={"name": "after"}).status_code == 401
    # nor can it sign in again
    with httpx.Client(base_url=locked.url, timeout=30) as c:
        assert c.post("/api/v1/session", json={"token": token}).status_code == 401


def test_sessions_that_ended_a_day_ago_are_dropped_at_the_next_sign_in(locked):
    import sqlalchemy as sa

    from monitor.models import DashboardSession

    token = make_token(locked, "read", "s-purge")
    expired, signed_out, just_ended = (sign_in(locked, token)[0] for _ in range(3))
    for session_id in (signed_out, just_ended):
        with with_cookie(locked, session_id) as browser:
            assert browser.delete("/api/v1/session").status_code == 204
    digest = {s: hashlib.sha256(s.encode()).hexdigest() for s in (expired, signed_out,
                                                                   just_ended)}
    table = DashboardSession.__table__
    two_days_ago = datetime.now(timezone.utc) - timedelta(days=2)
    engine = sa.create_engine(locked.database_url
                              or f"sqlite:///{locked.data_dir / 'ganwatch.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(table.update().where(table.c.secret_sha256 == digest[expired])
                         .values(created_at=two_days_ago - timedelta(days=1),
                                 expires_at=two_days_ago))
            conn.execute(table.update().where(table.c.secret_sha256 == digest[signed_out])
                         .values(revoked_at=two_days_ago))
        sign_in(locked, token)
        with engine.connect() as conn:
            kept = set(conn.scalars(sa.select(table.c.secret_sha256)))
    finally:
        engine.dispose()
    assert digest[expired] not in kept and digest[signed_out] not in kept
    assert digest[just_ended] in kept  # still says "signed out" to its cookie for a day


@pytest.fixture(scope="module", params=BOTH_DATABASES)
def long_streams(request, tmp_path_factory):
    """A locked server whose live streams last an hour, unless their credentials end."""
    with own_server(request.param, tmp_path_factory.mktemp("adv-streams"),
                    {"GANWATCH_AUTH": "required", "GANWATCH_LIVE_STREAM_SECONDS": "3600"}) as proc:
        yield proc


@pytest.mark.parametrize("ending", ["sign-out", "token revoked"])
def test_an_open_live_stream_ends_with_its_session_or_token(long_streams, ending):
    server = long_streams
    token = make_token(server, "read", "s-stream")
    with bearer(server, make_token(server, "ingest", "s-stream")) as writer:
        run_id = writer.post("/api/v1/runs", json={"name": "stream"}).json()["id"]
    session_id, _ = sign_in(server, token)
    with with_cookie(server, session_id) as browser, \
            browser.stream("GET", f"/api/v1/runs/{run_id}/events") as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(line for line in lines if line.startswith("event:")) == "event: hello"
        if ending == "sign-out":
            with with_cookie(server, session_id) as other_tab:
                assert other_tab.delete("/api/v1/session").status_code == 204
        else:
            done = ganwatch(server, "token", "revoke", token.split("_")[1])
            assert done.returncode == 0, done.stderr
        # the stream would last an hour; keepalives come every 10 s, so this loop sees the
        # clock at least that often
        deadline = time.monotonic() + 30
        for _line in lines:
            assert time.monotonic() < deadline, f"the stream went on after {ending}"
    with with_cookie(server, session_id) as browser:  # and the reconnection is refused
        assert browser.get(f"/api/v1/runs/{run_id}/events").status_code == 401


def test_session_ids_and_cookies_that_are_not_ours_are_401s(locked):
    for bogus in ("x", "a" * 43, "gw_1_" + "a" * 43, "", "a b", "\u00b2" * 40, "a" * 5000):
        with httpx.Client(base_url=locked.url, timeout=30, headers={
                "Cookie": f"ganwatch_session={bogus}".encode()}) as c:
            r = c.get("/api/v1/runs")
            assert r.status_code == 401 and r.json()["detail"], bogus
    # the old cookie that held the token is no way in either
    token = make_token(locked, "read", "s-old")
    with httpx.Client(base_url=locked.url, timeout=30,
                      headers={"Cookie": f"ganwatch_token={token}"}) as c:
        assert c.get("/api/v1/runs").status_code == 401


def test_the_undocumented_token_header_is_gone(locked):
    token = make_token(locked, "read", "s-header")
    with httpx.Client(base_url=locked.url, timeout=30,
                      headers={"X-Ganwatch-Token": token}) as c:
        r = c.get("/api/v1/runs")
        assert r.status_code == 401 and "Authorization: Bearer" in r.json()["detail"]


# --- token ids: ASCII digits; anything else is a 401, never a 500 -----------------------------

HOSTILE_TOKENS = ["gw_\u00b2_x", "gw_\u0663_x", "gw_\uff11_x", "gw_\U0001d7d9_x", "gw_\u2167_x",
                  "gw_1\u0660_x", "gw_9999999999999999999_x", "gw_99999999999999999999999_x",
                  "gw_-1_x", "gw_+1_x", "gw_ 1_x", "gw_1_", "gw__x", "gw_1_\u00e9\u00e9",
                  "gw_0_" + "a" * 43, "GW_1_x"]


def encodings(text: str) -> list[bytes]:
    """A header value as a client may send it: the server reads headers as Latin-1, so "²" in
    Latin-1 arrives as "²" (in UTF-8 as "Â²")."""
    out = [text.encode()]
    try:
        out.append(text.encode("latin-1"))
    except UnicodeEncodeError:
        pass
    return out


def assert_refused_everywhere(server, raw: str) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for value in encodings(raw):
            r = c.get("/api/v1/runs", headers={"Authorization": b"Bearer " + value})
            assert r.status_code == 401, (raw, value, r.text)
            r = c.get("/api/v1/runs", headers={"Cookie": b"ganwatch_session=" + value})
            assert r.status_code == 401, (raw, value, r.text)
            r = c.get("/api/v1/runs", headers={"Cookie": b"ganwatch_token=" + value})
            assert r.status_code == 401, (raw, value, r.text)
        r = c.post("/api/v1/session", json={"token": raw})
        assert r.status_code in (401, 422), (raw, r.text)


def test_hostile_token_ids_are_401_in_the_header_the_cookie_and_the_session_route(locked):
    for raw in HOSTILE_TOKENS:
        assert_refused_everywhere(locked, raw)
        with httpx.Client(base_url=locked.url, timeout=30) as c:
            r = c.post("/api/v1/session", json={"token": raw})
            assert r.status_code == 401, (raw, r.text)
    with httpx.Client(base_url=locked.url, timeout=30) as c:  # a lone surrogate, NUL
        for body in (b'{"token": "gw_1_\\ud800"}', b'{"token": "gw_\\ud800_x"}',
                     b'{"token": "gw_1_\\u0000"}'):
            r = c.post("/api/v1/session", content=body,
                       headers={"Content-Type": "application/json"})
            assert r.status_code in (401, 422), (body, r.text)


@HYPOTHESIS
@given(raw=st.text(min_size=1, max_size=200))
def test_any_token_at_the_session_route_is_a_401_or_422(locked, raw):
    with httpx.Client(base_url=locked.url, timeout=30) as c:
        r = c.post("/api/v1/session", json={"token": raw})
    assert r.status_code in (401, 422), r.text


@HYPOTHESIS
@given(id_part=st.one_of(
    st.text(alphabet=st.sampled_from("0123456789\u00b2\u00b3\u00b9\u00bc\u00bd\u00be"),
            min_size=1, max_size=20),
    st.text(alphabet=st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=20)),
       secret=st.text(alphabet=st.characters(codec="latin-1", exclude_categories=["Cc"]),
                      max_size=60).map(str.strip))
def test_any_unicode_number_as_a_token_id_is_a_401(locked, id_part, secret):
    assert_refused_everywhere(locked, f"gw_{id_part}_{secret}")


# --- cross-site requests: cookie writes only from the dashboard's own origin ------------------

def _hostile_origins(server) -> list[dict]:
    port = server.url.rsplit(":", 1)[1]
    origins = ["http://evil.example", "null", "http://127.0.0.1:1", f"http://127.0.0.1:{port}.x",
               f"https://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}",
               f"http://127.0.0.1:{port}@evil.example", f"http://evil.example/{server.url}",
               "", f"{server.url}x", "file://", f"http://127.0.0.1:{int(port) + 1}"]
    cases = [{"Origin": o} for o in origins]
    cases += [{"Sec-Fetch-Site": s} for s in ("cross-site", "same-site", "Same-Site", "x")]
    cases += [{"Origin": server.url, "Sec-Fetch-Site": "cross-site"},
              {"Origin": "http://evil.example", "Sec-Fetch-Site": "same-origin"}]
    return cases


@pytest.fixture(scope="module")
def targets(locked):
    """A run with a firing alert, an ingest token's session cookie, and how to read the state
    that the four cookie writes (ack, silence, finish, sample upload) would change."""
    token = make_token(locked, "ingest", "csrf")
    with bearer(locked, token) as c:
        run_id = c.post("/api/v1/runs", json={
            "name": "csrf", "rules": {"non_finite": {"clear_for": 100_000}}}).json()["id"]
        assert c.post(f"/api/v1/runs/{run_id}/points",
                      json=points([1.0, "NaN", 1.0])).status_code == 200
        alert_id = c.get("/api/v1/alerts", params={"run_id": run_id}).json()["data"][0]["id"]
    session_id, _ = sign_in(locked, token)

    def state():
        with bearer(locked, token) as c:
            alert = c.get(f"/api/v1/alerts/{alert_id}").json()
            return (alert["acknowledged_at"],
                    c.get(f"/api/v1/runs/{run_id}/rules").json()["silenced"],
                    c.get(f"/api/v1/runs/{run_id}").json()["status"],
                    c.get(f"/api/v1/runs/{run_id}/samples").json()["count"])

    writes = [("POST", f"/api/v1/alerts/{alert_id}/ack", {"json": {"by": "csrf"}}),
              ("POST", f"/api/v1/runs/{run_id}/rules/non_finite/silence", {}),
              ("POST", f"/api/v1/runs/{run_id}/finish", {}),
              ("POST", f"/api/v1/runs/{run_id}/samples",
               {"params": {"step": 1}, "content": png(),
                "headers": {"Content-Type": "image/png"}})]
    return {"token": token, "session": session_id, "state": state, "writes": writes,
            "run_id": run_id}


def test_cross_origin_cookie_writes_are_403_and_change_nothing(locked, targets):
    before = targets["state"]()
    assert before == (None, [], "running", 0)
    with with_cookie(locked, targets["session"]) as browser:
        for hostile in _hostile_origins(locked):
            for method, url, kwargs in targets["writes"]:
                headers = {**kwargs.get("headers", {}), **hostile}
                r = browser.request(method, url, **{**kwargs, "headers": headers})
                assert r.status_code == 403, (hostile, url, r.text)
                assert "refused" in r.json()["detail"]
        # sign-out from another origin is refused too: the session lives on
        r = browser.delete("/api/v1/session", headers={"Origin": "http://evil.example"})
        assert r.status_code == 403
        assert browser.get("/api/v1/runs").status_code == 200
    assert targets["state"]() == before


@HYPOTHESIS
@given(origin=st.one_of(
    st.from_regex(r"\Ahttps?://[a-z0-9.-]{1,30}(:[0-9]{1,5})?\Z"),
    st.text(alphabet=st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=60)
    .map(str.strip)))
def test_any_other_origin_is_refused(locked, targets, origin):
    if origin.strip().lower() == locked.url:
        return
    alert_url = targets["writes"][0][1]
    with with_cookie(locked, targets["session"]) as browser:
        r = browser.post(alert_url, json={"by": "csrf"}, headers={"Origin": origin})
    assert r.status_code == 403, (origin, r.text)


def test_same_origin_cookie_writes_work_and_bearer_writes_ignore_origin(locked, targets):
    own = {"Origin": locked.url, "Sec-Fetch-Site": "same-origin"}
    with with_cookie(locked, targets["session"]) as browser:
        for method, url, kwargs in targets["writes"][:2]:  # ack, silence: as the dashboard
            r = browser.request(method, url, **{**kwargs, "headers": {
                **kwargs.get("headers", {}), **own}})
            assert r.status_code in (200, 201), (url, r.text)
    acked, silenced, status, _ = targets["state"]()
    assert acked is not None and silenced == ["non_finite"] and status == "running"
    # a client with a bearer token: Origin and Sec-Fetch-Site do not matter (a page cannot
    # send an Authorization header to another origin without CORS, which is never allowed)
    with bearer(locked, targets["token"]) as client:
        hostile = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
        for method, url, kwargs in targets["writes"][2:]:  # finish, sample upload
            r = client.request(method, url, **{**kwargs, "headers": {
                **kwargs.get("headers", {}), **hostile}})
            assert r.status_code in (200, 201), (url, r.text)
        # and the server never opens itself to other origins
        r = client.options("/api/v1/runs", headers={"Origin": "http://evil.example",
                                                     "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in r.headers
    assert targets["state"]()[2:] == ("finished", 1)


def test_an_open_server_refuses_cross_site_writes_too(open_server):
    with open_server.client() as c:
        run_id = c.post("/api/v1/runs", json={"name": "open-csrf"}).json()["id"]
        for hostile in _hostile_origins(open_server):
            r = c.post(f"/api/v1/runs/{run_id}/finish", headers=hostile)
            assert r.status_code == 403, (hostile, r.text)
            r = c.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x"}, headers=hostile)
            assert r.status_code == 403, (hostile, r.text)
        assert c.get(f"/api/v1/runs/{run_id}").json()["status"] == "running"
        assert c.post(f"/api/v1/runs/{run_id}/finish", headers={
            "Origin": open_server.url, "Sec-Fetch-Site": "same-origin"}).status_code == 200


def test_a_sample_upload_must_say_image_png(locked, targets):
    url = f"/api/v1/runs/{targets['run_id']}/samples"
    with bearer(locked, targets["token"]) as client:
        count = client.get(url).json()["count"]
        for content_type in (None, "text/plain", "application/x-www-form-urlencoded",
                             "multipart/form-data; boundary=x", "application/octet-stream",
                             "image/pngx", "image/gif"):
            headers = {"Content-Type": content_type} if content_type else {}
            r = client.post(url, params={"step": 2}, content=png(), headers=headers)
            assert r.status_code == 415 and "image/png" in r.json()["detail"], content_type
        assert client.get(url).json()["count"] == count
        r = client.post(url, params={"step": 2}, content=png(),
                        headers={"Content-Type": "Image/PNG; charset=binary"})
        assert r.status_code == 201, r.text


def test_the_trainer_client_sends_its_samples_as_image_png(open_server, spool_dir):
    import trainer_client

    torch = pytest.importorskip("torch")
    run = trainer_client.init("client-png", server=open_server.url)
    run.log(step=0, loss=1.0)
    run.log_images("fake", torch.rand(4, 3, 8, 8), step=0)
    run.finish(timeout=60)
    with open_server.client() as c:
        assert c.get(f"/api/v1/runs/{run.id}/samples").json()["count"] == 1


# --- DNS rebinding: only the server's own host names ---------------------------------------

def _host_cases(server) -> tuple[list[str], list[str]]:
    port = server.url.rsplit(":", 1)[1]
    hostile = ["evil.example", f"evil.example:{port}", f"127.0.0.1.nip.io:{port}",
               "localhost.evil.example", f"127.0.0.1.evil:{port}", "ganwatch.internal.evil",
               "xganwatch.internal", "dash.example.com.evil", "0.0.0.0", f"0.0.0.0:{port}",
               "[::1].evil", f"localhost:{port}:{port}", "localhost:abc", "[::1", "[]",
               "user@localhost", "localhost/evil", "::1", "10.0.0.1", "*"]
    allowed = [f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost",
               f"LOCALHOST:{port}", "127.0.0.1", "localhost.", "ganwatch.internal",
               "ganwatch.internal:8080", "dash.example.com", "DASH.example.COM:443"]
    return hostile, allowed


def test_a_foreign_host_header_is_refused_for_reads_and_writes(open_server):
    hostile, allowed = _host_cases(open_server)
    with open_server.client() as c:
        run_id = c.post("/api/v1/runs", json={"name": "rebind"}).json()["id"]
        hooks = c.get("/api/v1/webhooks").json()
        for host in hostile:
            for method, url, kwargs in (("GET", "/api/v1/runs", {}),
                                        ("GET", f"/api/v1/runs/{run_id}", {}),
                                        ("GET", "/", {}),
                                        ("POST", "/api/v1/webhooks",
                                         {"json": {"url": "http://127.0.0.1:9/x"}})):
                r = c.request(method, url, headers={"Host": host}, **kwargs)
                assert r.status_code in (400, 421), (host, url, r.status_code)
                assert "GANWATCH_ALLOWED_HOSTS" in r.json()["detail"], host
        assert c.get("/api/v1/webhooks").json() == hooks  # nothing was created
        for host in allowed:
            r = c.get(f"/api/v1/runs/{run_id}", headers={"Host": host})
            assert r.status_code == 200, (host, r.text)


@HYPOTHESIS
@given(name=st.from_regex(r"\A[a-z0-9-]{1,20}(\.[a-z0-9-]{1,20}){0,3}\Z"),
       port=st.one_of(st.none(), st.integers(1, 65535)))
def test_any_other_host_name_is_refused(open_server, name, port):
    if name.rstrip(".") in ("localhost", "127.0.0.1", "ganwatch.internal", "dash.example.com"):
        return
    host = name if port is None else f"{name}:{port}"
    with open_server.client() as c:
        r = c.get("/api/v1/runs", headers={"Host": host})
    assert r.status_code == 400, (host, r.text)


def test_the_allowed_hosts_setting_and_a_server_listening_on_every_address():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    public = compose["services"]["server"]["environment"]["GANWATCH_PUBLIC_URL"]
    team = Settings(host="0.0.0.0", public_url=public)  # as docker-compose.yml starts it
    assert team.host_allowed("127.0.0.1:8765")  # its own health check, a browser on the host
    assert not team.host_allowed("evil.example:8765")
    named = Settings(host="0.0.0.0", public_url="https://ganwatch.team.example/")
    assert named.host_allowed("ganwatch.team.example") and named.host_allowed(
        "GANWATCH.team.example:443")
    assert not named.host_allowed("ganwatch.team.example.evil")
    listed = Settings(host="0.0.0.0", allowed_hosts="gpu-box, 10.1.2.3 ,[fd00::1]")
    assert all(listed.host_allowed(h) for h in ("gpu-box:8765", "10.1.2.3:8765",
                                                "[fd00::1]:8765", "[::1]:8765"))
    assert not listed.host_allowed("gpu-box.evil:8765")
    assert Settings(allowed_hosts="*").host_allowed("anything.example")
    assert Settings(host="10.1.2.3").host_allowed("10.1.2.3:8765")  # the address it listens on


# --- work before authentication: a gzip bomb -------------------------------------------------

def _bomb(inflated: int) -> bytes:
    head = b'{"batch_id": "bomb", "series": {"loss": {"steps": [0], "values": ['
    return gzip.compress(head + b"0," * ((inflated - len(head)) // 2) + b"0]}}}", 9)


def _answer_to_a_partial_body(server, path: str, sent: bytes, claimed: int,
                              headers: dict[str, str]) -> tuple[int, dict]:
    """POST ``path`` announcing ``claimed`` body bytes but sending only ``sent``, then read the
    answer. A server that read the whole body first would wait for bytes that never come (the
    socket's timeout fails the test); one that decides early answers at once."""
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}",
            f"Content-Length: {claimed}", "Connection: close",
            *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + sent)
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(65536)  # raises TimeoutError if the server waits for the body
            assert chunk, f"the server closed the connection without answering: {reply!r}"
            reply += chunk
        status_line, rest = reply.split(b"\r\n", 1)
        header_block, body = rest.split(b"\r\n\r\n", 1)
        length = next(int(line.split(b":", 1)[1]) for line in header_block.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            chunk = sock.recv(65536)
            assert chunk, "the answer was cut short"
            body += chunk
    return int(status_line.split()[1]), json.loads(body[:length])


GZIP_JSON = {"Content-Encoding": "gzip", "Content-Type": "application/json"}


def test_a_gzip_bomb_without_a_token_is_a_401_before_its_body_is_read(locked):
    bomb = _bomb(64 * 1024 * 1024)  # ~65 KB that would inflate to 64 MiB (the issue's probe)
    assert len(bomb) < 100_000
    with httpx.Client(base_url=locked.url, timeout=60) as anonymous:
        expected = anonymous.get("/api/v1/runs").json()["detail"]
    for url in ("/api/v1/runs/any/points", "/api/v1/runs", "/api/v1/webhooks", "/metrics"):
        # the first KB of the body sent, the rest never: the 401 comes without it
        status, body = _answer_to_a_partial_body(locked, url, bomb[:1024], len(bomb), GZIP_JSON)
        assert status == 401, (url, body)
        assert body["detail"] == expected  # the route's own 401
        with httpx.Client(base_url=locked.url, timeout=60) as anonymous:
            r = anonymous.post(url, content=bomb, headers=GZIP_JSON)  # and whole
        assert r.status_code == 401 and r.json()["detail"] == expected
        assert r.headers["www-authenticate"].startswith("Bearer")
    # a bad session cookie is no way in either
    status, _ = _answer_to_a_partial_body(locked, "/api/v1/runs/any/points", bomb[:1024],
                                          len(bomb), {**GZIP_JSON,
                                                      "Cookie": f"ganwatch_session={'a' * 43}"})
    assert status == 401
    # the sign-in route is open, so its body is small: refused once past a few KB
    with httpx.Client(base_url=locked.url, timeout=60) as anonymous:
        r = anonymous.post("/api/v1/session", content=bomb, headers=GZIP_JSON)
    assert r.status_code == 413


def test_a_gzip_bomb_with_a_token_is_a_413_as_the_bytes_arrive(locked):
    token = make_token(locked, "ingest", "bomb")
    with bearer(locked, token) as client:
        run_id = client.post("/api/v1/runs", json={"name": "bomb"}).json()["id"]
    bomb = _bomb(16 * MAX_BODY)  # 64 MiB inflated, the limit 4 MiB
    # Half the compressed body inflates to ~32 MiB, far past the limit; the other half never
    # comes. Inflating as the bytes arrive, the server refuses without waiting for it.
    status, body = _answer_to_a_partial_body(
        locked, f"/api/v1/runs/{run_id}/points", bomb[:len(bomb) // 2], len(bomb),
        {**GZIP_JSON, "Authorization": f"Bearer {token}"})
    assert status == 413 and "GANWATCH_MAX_BODY_BYTES" in body["detail"]
    with bearer(locked, token) as client:
        r = client.post(f"/api/v1/runs/{run_id}/points", content=bomb, headers=GZIP_JSON)
        assert r.status_code == 413 and "GANWATCH_MAX_BODY_BYTES" in r.json()["detail"]
        assert client.get(f"/api/v1/runs/{run_id}").json()["series_keys"] == []


# --- response headers ----------------------------------------------------------------------

CSP_NEEDS = ("default-src 'self'", "script-src 'self'", "object-src 'none'",
             "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'")


def test_every_response_says_nosniff_and_the_pages_carry_a_csp(open_server):
    with open_server.client() as c:
        run_id = c.post("/api/v1/runs", json={"name": "headers"}).json()["id"]
        for url in ("/", "/login", "/compare", "/webhooks", f"/runs/{run_id}"):
            r = c.get(url)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            assert r.headers["x-content-type-options"] == "nosniff"
            policy = r.headers["content-security-policy"]
            for directive in CSP_NEEDS:
                assert directive in policy, (url, directive)
            assert "'unsafe-eval'" not in policy
            script = policy.split("script-src", 1)[1].split(";")[0]
            assert "'unsafe-inline'" not in script
        for url in ("/api/v1/runs", "/api/v1/runs/ghost", "/static/api.js",
                    "/static-vendor/plotly.min.js", "/metrics", "/api/v1/health"):
            r = c.get(url)
            assert r.headers["x-content-type-options"] == "nosniff", url
            assert r.headers["cross-origin-resource-policy"] == "same-origin", url
        r = c.get("/api/v1/runs", headers={"Host": "evil.example"})
        assert r.headers["x-content-type-options"] == "nosniff"


def test_sample_pngs_are_private_to_the_browser(locked):
    token = make_token(locked, "ingest", "private-png")
    with bearer(locked, token) as client:
        run_id = client.post("/api/v1/runs", json={"name": "png"}).json()["id"]
        sample = client.post(f"/api/v1/runs/{run_id}/samples", params={"step": 0},
                             content=png(), headers={"Content-Type": "image/png"}).json()
        r = client.get(sample["url"])
        assert r.status_code == 200 and r.content == png()
        cache = r.headers["cache-control"]
        assert "public" not in cache and "private" in cache, cache
        assert r.headers["x-content-type-options"] == "nosniff"
    with httpx.Client(base_url=locked.url, timeout=30) as anonymous:
        assert anonymous.get(sample["url"]).status_code == 401


def test_the_401s_403s_and_400s_here_are_json_with_a_detail(locked):
    with httpx.Client(base_url=locked.url, timeout=30) as c:
        for r in (c.get("/api/v1/runs"), c.get("/api/v1/runs", headers={"Host": "x.example"}),
                  c.post("/api/v1/runs", json={}, headers={"Origin": "http://x.example"})):
            assert r.headers["content-type"].startswith("application/json")
            assert r.json()["detail"]
