"""The cross-project matrix: every route of the server, enumerated from its own OpenAPI schema (so
a route added without an entry in ROUTES fails here), called as every kind of principal against
project alpha's objects, project beta's, and ids that do not exist; on SQLite and PostgreSQL,
with GANWATCH_AUTH=required and tokens made by the real CLI.

For every call it asserts:
- the status: 401 without a valid token (none, malformed, revoked); 403 for the wrong scope (a
  read token writing, a project's token on webhooks); 404 for another project's run or alert,
  with the same body as for an id that does not exist; 2xx where allowed;
- that a refused call (any 4xx) left the database exactly as it was: every table, read through
  SQLAlchemy row by row in primary-key order, before and after. The one column left out is
  ``api_tokens.last_used_at``: it records that a valid token was presented, which a refused
  request with a valid token (and any read) does too;
- that no answer to project alpha's tokens holds beta's run name or config, nor beta's run id
  unless the request itself named it.

Besides the matrix: the probe of issue 21 (a refused resume silenced another project's rule),
alert ids spelled so that only the route reads them as a number, samples addressed under another
run's id, and resume ids that only the token's holder can work out from a run's name.
"""

from __future__ import annotations

import io
import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest
from PIL import Image
from sqlalchemy import MetaData, create_engine, select

import trainer_client
from tests.support import BOTH_DATABASES, ganwatch, make_token, own_server, series, wait_until
from tests.support.receiver import Receiver
from trainer_client.run import stable_run_id

API = "/api/v1"
# Columns a request may change without changing anything a user owns.
IGNORED_COLUMNS = {("api_tokens", "last_used_at")}
ANONYMOUS = ("none", "malformed", "revoked")
PRINCIPALS = ("none", "malformed", "revoked", "read", "ingest", "admin")
MISSING_ALERT = 987654321
MISSING_SAMPLE = 987654321
MISSING_WEBHOOK = 987654321


def png_bytes(color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buffer, format="PNG")
    return buffer.getvalue()


def cli(server, *argv) -> str:
    done = ganwatch(server, *argv)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()




def bearer(token: str | None) -> dict:
    if not token:
        return {}
    return {"Authorization": f"Bearer {token}".encode()}  # bytes: "gw_\u00b2_x" too


class Database:
    """Every row of every table, to compare before and after a request."""

    def __init__(self, server) -> None:
        url = (server.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
               if server.database_url else f"sqlite:///{server.data_dir / 'ganwatch.db'}")
        self.engine = create_engine(url)
        self.meta = MetaData()
        self.meta.reflect(self.engine)
        assert {"runs", "points", "samples", "alerts", "webhooks", "api_tokens"} <= set(
            self.meta.tables)

    def snapshot(self) -> dict[str, list[tuple]]:
        out = {}
        with self.engine.connect() as conn:
            for table in self.meta.sorted_tables:
                cols = [c for c in table.columns if (table.name, c.name) not in IGNORED_COLUMNS]
                order = list(table.primary_key.columns) or cols
                out[table.name] = [tuple(row) for row in
                                   conn.execute(select(*cols).order_by(*order))]
        return out

    def close(self) -> None:
        self.engine.dispose()


def changes(before: dict, after: dict) -> list[str]:
    out = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name, []), after.get(name, [])
        if old != new:
            gone = [r for r in old if r not in new][:3]
            added = [r for r in new if r not in old][:3]
            out.append(f"{name}: {len(old)} -> {len(new)} rows; removed/changed {gone!r}; "
                       f"added/changed {added!r}")
    return out


@dataclass
class World:
    server: object
    db: Database
    receiver: Receiver
    tokens: dict[str, str]          # principal -> what it sends
    admin_token: str
    runs: dict[str, str]            # "alpha" | "beta" | "missing" -> run id
    alerts: dict[str, int]
    samples: dict[str, int]
    webhook: int
    beta_name: str
    beta_secret: str                # in beta's config: must never reach alpha
    http: httpx.Client = field(repr=False, default=None)

    def request(self, who: str, method: str, url: str, **kwargs) -> httpx.Response:
        headers = {**bearer(self.tokens.get(who)), **kwargs.pop("headers", {})}
        try:
            if url.endswith("/events"):  # a stream: the status and the start are enough
                with self.http.stream(method, url, headers=headers, **kwargs) as r:
                    if r.status_code != 200:
                        r.read()
                    return r
            return self.http.request(method, url, headers=headers, **kwargs)
        finally:
            self.http.cookies.clear()  # a sign-in's cookie must not carry over to the next call

    def as_admin(self, method: str, url: str, **kwargs) -> httpx.Response:
        r = self.http.request(method, url, headers=bearer(self.admin_token), **kwargs)
        self.http.cookies.clear()
        return r


def points_body(steps, values) -> dict:
    return {"batch_id": uuid.uuid4().hex, "series": {"loss": {"steps": steps, "values": values}}}


def _make_project_run(w_http, token, name, config) -> tuple[str, int, int]:
    """A run with points (NaN among them: the non_finite alert fires), a sample and rule
    settings; (run id, alert id, sample id)."""
    h = bearer(token)
    run = w_http.post(f"{API}/runs", json={"name": name, "config": config,
                                           "rules": {"mode_collapse": {"threshold": 0.4}}},
                      headers=h)
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]
    r = w_http.post(f"{API}/runs/{run_id}/points", headers=h,
                    json=points_body([0, 1, 2, 3], [1.0, "NaN", "Infinity", 0.5]))
    assert r.status_code == 200, r.text
    r = w_http.post(f"{API}/runs/{run_id}/samples", params={"step": 2}, content=png_bytes(),
                    headers={**h, "Content-Type": "image/png"})
    assert r.status_code == 201, r.text
    sample_id = r.json()["id"]
    r = w_http.patch(f"{API}/runs/{run_id}/rules", headers=h,
                     json={"rules": {"d_loss_zero": {"threshold": 0.01}}})
    assert r.status_code == 200, r.text
    alerts = w_http.get(f"{API}/alerts", params={"run_id": run_id, "rule": "non_finite"},
                        headers=h).json()["data"]
    assert alerts and alerts[0]["status"] == "firing", alerts
    return run_id, alerts[0]["id"], sample_id


@pytest.fixture(scope="module", params=BOTH_DATABASES)
def world(request, tmp_path_factory):
    receiver = Receiver()
    env = {"GANWATCH_AUTH": "required",
           "GANWATCH_STALL_CHECK_INTERVAL": "3600",  # no sweep writes while the matrix runs
           "GANWATCH_LIVE_STREAM_SECONDS": "1",
           "GANWATCH_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"}  # the receiver
    with own_server(request.param, tmp_path_factory.mktemp("authz"), env) as server:
        admin = make_token(server, "admin")
        ingest_alpha = make_token(server, "ingest", "alpha")
        read_alpha = make_token(server, "read", "alpha")
        ingest_beta = make_token(server, "ingest", "beta")
        revoked = make_token(server, "ingest", "alpha")
        http = httpx.Client(base_url=server.url, timeout=30)
        alpha = _make_project_run(http, ingest_alpha, "alpha-run", {"lr": 2e-4})
        beta_name = f"beta-private-{uuid.uuid4().hex[:8]}"
        beta_secret = f"beta-config-{uuid.uuid4().hex}"
        beta = _make_project_run(http, ingest_beta, beta_name, {"note": beta_secret})
        assert "revoked" in cli(server, "token", "revoke", revoked.split("_")[1])
        hook = http.post(f"{API}/webhooks", headers=bearer(admin), json={
            "url": receiver.url, "name": "authz", "run_ids": ["no-such-run"]})
        assert hook.status_code == 201, hook.text
        db = Database(server)
        w = World(server=server, db=db, receiver=receiver, http=http, admin_token=admin,
                  tokens={"none": None, "malformed": "gw_\u00b2_x", "revoked": revoked,
                          "read": read_alpha, "ingest": ingest_alpha, "admin": admin},
                  runs={"alpha": alpha[0], "beta": beta[0],
                        "missing": f"no-such-run-{uuid.uuid4().hex[:8]}"},
                  alerts={"alpha": alpha[1], "beta": beta[1], "missing": MISSING_ALERT},
                  samples={"alpha": alpha[2], "beta": beta[2], "missing": MISSING_SAMPLE},
                  webhook=hook.json()["id"], beta_name=beta_name, beta_secret=beta_secret)
        w.ingest_beta = ingest_beta
        try:
            yield w
        finally:
            http.close()
            db.close()
            receiver.close()


# -- the table: how to call each route, and what each principal may ---------------------------

@dataclass
class Route:
    """One (method, path) of the schema. ``call(world, target, who)`` gives the request's url and
    keyword arguments for a target: "alpha", "beta" or "missing" (the object addressed), or None
    for a route that addresses none."""

    call: Callable
    targets: tuple = (None,)
    ok: int = 200
    write: bool = False
    reader: bool = False        # a write that a read token may make (the dashboard's buttons)
    admin: bool = False         # admin tokens only
    expect: Callable | None = None  # (who, target) -> status, where the rule above does not fit
    after: Callable | None = None   # (world, response): wait for what an allowed call set off


RUN_TARGETS = ("alpha", "beta", "missing")
LIST_TARGETS = (None, "alpha", "beta", "missing")
HOOK_TARGETS = ("existing", "missing")


def run_url(suffix=""):
    return lambda w, t, who: (f"{API}/runs/{w.runs[t]}{suffix}", {})


def hook_id(w, t):
    return w.webhook if t == "existing" else MISSING_WEBHOOK


def create_run_call(w, t, who):
    run_id = w.runs[t] if t != "missing" else f"fresh-{uuid.uuid4().hex[:12]}"
    return f"{API}/runs", {"json": {"id": run_id, "name": "x", "rules": {"non_finite": False},
                                    "checkin_interval": 604800}}


def create_run_expect(who, t):
    if who in ANONYMOUS:
        return 401
    if who == "read":
        return 403
    if t == "missing":
        return 201
    # one's own run resumes; another project's id is taken (409, the same whichever project;
    # an admin without "project" is in project "default")
    return 200 if (who, t) == ("ingest", "alpha") else 409


def session_post_expect(who, t):
    return 401 if who in ANONYMOUS else 200


def throwaway_hook(w, t, who):
    if t == "missing":
        return f"{API}/webhooks/{MISSING_WEBHOOK}", {}
    made = w.as_admin("POST", f"{API}/webhooks", json={"url": w.receiver.url,
                                                       "run_ids": ["no-such-run"]})
    assert made.status_code == 201, made.text
    return f"{API}/webhooks/{made.json()['id']}", {}


def wait_delivered(w, response):
    delivery = response.json()["id"]

    def done():
        rows = w.as_admin("GET", f"{API}/webhooks/{w.webhook}/deliveries").json()["data"]
        return any(d["id"] == delivery and d["status"] != "pending" for d in rows)

    wait_until(done, what="the test delivery")


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/api/v1/health"): Route(lambda w, t, who: (f"{API}/health", {}),
                                     expect=lambda who, t: 200),
    ("GET", "/api/v1/session"): Route(lambda w, t, who: (f"{API}/session", {}),
                                      expect=lambda who, t: 200),
    ("POST", "/api/v1/session"): Route(
        lambda w, t, who: (f"{API}/session", {"json": {"token": w.tokens[who] or "gw_1_x"}}),
        expect=session_post_expect),
    ("DELETE", "/api/v1/session"): Route(lambda w, t, who: (f"{API}/session", {}),
                                         expect=lambda who, t: 204),
    ("POST", "/api/v1/runs"): Route(create_run_call, targets=RUN_TARGETS, write=True,
                                    expect=create_run_expect),
    ("GET", "/api/v1/runs"): Route(lambda w, t, who: (f"{API}/runs", {"params": {"limit": 1000}})),
    ("GET", "/api/v1/runs/{run_id}"): Route(run_url(), targets=RUN_TARGETS),
    ("POST", "/api/v1/runs/{run_id}/points"): Route(
        lambda w, t, who: (f"{API}/runs/{w.runs[t]}/points",
                           {"json": points_body([100, 101], [0.5, 0.25])}),
        targets=RUN_TARGETS, write=True),
    ("GET", "/api/v1/runs/{run_id}/series"): Route(
        lambda w, t, who: (f"{API}/runs/{w.runs[t]}/series", {"params": {"key": "loss"}}),
        targets=RUN_TARGETS),
    ("POST", "/api/v1/runs/{run_id}/samples"): Route(
        lambda w, t, who: (f"{API}/runs/{w.runs[t]}/samples",
                           {"params": {"step": 7}, "content": png_bytes((1, 2, 3)),
                            "headers": {"Content-Type": "image/png"}}),
        targets=RUN_TARGETS, write=True, ok=201),
    ("GET", "/api/v1/runs/{run_id}/samples"): Route(run_url("/samples"), targets=RUN_TARGETS),
    ("GET", "/api/v1/runs/{run_id}/samples/{sample_id}"): Route(
        lambda w, t, who: (f"{API}/runs/{w.runs[t]}/samples/{w.samples[t]}", {}),
        targets=RUN_TARGETS),
    ("GET", "/api/v1/runs/{run_id}/events"): Route(run_url("/events"), targets=RUN_TARGETS),
    ("GET", "/api/v1/alerts"): Route(
        lambda w, t, who: (f"{API}/alerts", {"params": {"run_id": w.runs[t]} if t else {}}),
        targets=LIST_TARGETS),
    ("GET", "/api/v1/alerts/{alert_id}"): Route(
        lambda w, t, who: (f"{API}/alerts/{w.alerts[t]}", {}), targets=RUN_TARGETS),
    ("POST", "/api/v1/alerts/{alert_id}/ack"): Route(
        lambda w, t, who: (f"{API}/alerts/{w.alerts[t]}/ack", {"json": {"by": who}}),
        targets=RUN_TARGETS, write=True, reader=True),
    ("GET", "/api/v1/alert-events"): Route(
        lambda w, t, who: (f"{API}/alert-events", {"params": {"run_id": w.runs[t]} if t else {}}),
        targets=LIST_TARGETS),
    ("GET", "/api/v1/rules"): Route(lambda w, t, who: (f"{API}/rules", {})),
    ("GET", "/api/v1/runs/{run_id}/rules"): Route(run_url("/rules"), targets=RUN_TARGETS),
    ("PATCH", "/api/v1/runs/{run_id}/rules"): Route(
        lambda w, t, who: (f"{API}/runs/{w.runs[t]}/rules",
                           {"json": {"rules": {"mode_collapse": {"threshold": 0.5}}}}),
        targets=RUN_TARGETS, write=True),
    ("POST", "/api/v1/runs/{run_id}/rules/{rule}/silence"): Route(
        run_url("/rules/d_loss_zero/silence"), targets=RUN_TARGETS, write=True, reader=True),
    ("DELETE", "/api/v1/runs/{run_id}/rules/{rule}/silence"): Route(
        run_url("/rules/d_loss_zero/silence"), targets=RUN_TARGETS, write=True, reader=True),
    ("POST", "/api/v1/webhooks"): Route(
        lambda w, t, who: (f"{API}/webhooks", {"json": {"url": w.receiver.url,
                                                        "run_ids": ["no-such-run"]}}),
        write=True, admin=True, ok=201),
    ("GET", "/api/v1/webhooks"): Route(lambda w, t, who: (f"{API}/webhooks", {}), admin=True),
    ("GET", "/api/v1/webhooks/{webhook_id}"): Route(
        lambda w, t, who: (f"{API}/webhooks/{hook_id(w, t)}", {}), targets=HOOK_TARGETS,
        admin=True),
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): Route(
        lambda w, t, who: (f"{API}/webhooks/{hook_id(w, t)}", {"json": {"name": f"by {who}"}}),
        targets=HOOK_TARGETS, admin=True, write=True),
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): Route(
        lambda w, t, who: (f"{API}/webhooks/{hook_id(w, t)}/deliveries", {}),
        targets=HOOK_TARGETS, admin=True),
    ("POST", "/api/v1/webhooks/{webhook_id}/test"): Route(
        lambda w, t, who: (f"{API}/webhooks/{hook_id(w, t)}/test", {}), targets=HOOK_TARGETS,
        admin=True, write=True, ok=202, after=wait_delivered),
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): Route(
        throwaway_hook, targets=HOOK_TARGETS, admin=True, write=True, ok=204),
    # last: it changes the runs' status (harmless to what comes before, but kept apart)
    ("POST", "/api/v1/runs/{run_id}/finish"): Route(run_url("/finish"), targets=RUN_TARGETS,
                                                    write=True),
}


def expected_status(route: Route, who: str, target) -> int:
    if route.expect is not None:
        return route.expect(who, target)
    if who in ANONYMOUS:
        return 401
    if route.admin and who != "admin":
        return 403
    if route.write and who == "read" and not route.reader:
        return 403
    if target == "missing":
        return 404
    if target == "beta" and who != "admin":
        return 404
    return route.ok


def masked(text: str, *ids) -> str:
    """``text`` with each of ``ids`` (a whole word) written as <ID>."""
    for one in ids:
        text = re.sub(rf"(?<![0-9A-Za-z_.-]){re.escape(str(one))}(?![0-9A-Za-z_.-])", "<ID>",
                      text)
    return text


def normalized(response: httpx.Response, w: World, target: str) -> str:
    """A 404's body with the ids asked for masked: another project's object and a missing one
    must read the same."""
    return masked(response.text, w.runs[target], w.alerts[target], w.samples[target])


def assert_no_leak(w: World, who: str, request_text: str, response: httpx.Response) -> None:
    if who not in ("read", "ingest"):
        return
    body = response.text if not response.headers.get("content-type", "").startswith(
        ("image/", "text/event-stream")) else ""
    assert w.beta_name not in body and w.beta_secret not in body, (request_text, body[:500])
    if w.runs["beta"] not in request_text:
        assert w.runs["beta"] not in body, (request_text, body[:500])


def schema_routes(w: World) -> set[tuple[str, str]]:
    schema = w.http.get("/openapi.json").json()
    return {(method.upper(), path) for path, item in schema["paths"].items()
            for method in item if method in ("get", "post", "put", "patch", "delete", "head")}


def test_the_matrix_covers_every_route_of_the_schema(world):
    assert set(ROUTES) == schema_routes(world), (
        "routes without a matrix entry: "
        f"{sorted(schema_routes(world) - set(ROUTES))}; entries without a route: "
        f"{sorted(set(ROUTES) - schema_routes(world))}")


# -- beside the matrix --------------------------------------------------------------------------

def test_a_refused_resume_of_another_projects_run_changes_nothing(world):
    """Issue 21, defect 1: the probe that silenced beta's non_finite rule."""
    w = world
    beta = w.runs["beta"]
    rules_before = w.as_admin("GET", f"{API}/runs/{beta}/rules").json()
    run_before = w.as_admin("GET", f"{API}/runs/{beta}").json()
    before = w.db.snapshot()
    r = w.request("ingest", "POST", f"{API}/runs", json={
        "id": beta, "name": "x", "rules": {"non_finite": False}, "checkin_interval": 604800})
    assert changes(before, w.db.snapshot()) == []  # refused: nothing of beta's run changed
    assert r.status_code == 409, r.text
    assert "taken" in r.json()["detail"] and "beta" not in r.json()["detail"].replace(beta, "")
    assert w.as_admin("GET", f"{API}/runs/{beta}/rules").json() == rules_before
    assert "non_finite" not in rules_before["silenced"]
    assert w.as_admin("GET", f"{API}/runs/{beta}").json()["checkin_interval"] == \
        run_before["checkin_interval"]
    # the answer is the same for any id another project holds (here: an admin's "default" run)
    other = w.as_admin("POST", f"{API}/runs", json={"name": "default-run"}).json()["id"]
    r2 = w.request("ingest", "POST", f"{API}/runs", json={"id": other, "name": "x"})
    assert r2.status_code == 409
    assert masked(r2.json()["detail"], other) == masked(r.json()["detail"], beta)
    # resuming by name finds only the token's own project's runs: a new run in alpha
    name = f"beta-resumable-{uuid.uuid4().hex[:6]}"
    theirs = w.http.post(f"{API}/runs", json={"name": name}, headers=bearer(w.ingest_beta))
    assert theirs.status_code == 201
    theirs_rules = w.as_admin("GET", f"{API}/runs/{theirs.json()['id']}/rules").json()
    r = w.request("ingest", "POST", f"{API}/runs", json={
        "name": name, "resume": True, "rules": {"non_finite": False}})
    assert r.status_code == 201 and r.json()["project"] == "alpha"
    assert r.json()["id"] != theirs.json()["id"]
    assert w.as_admin("GET", f"{API}/runs/{theirs.json()['id']}/rules").json() == theirs_rules
    assert w.as_admin("GET", f"{API}/runs/{beta}/rules").json() == rules_before


@pytest.mark.parametrize("spell", ["{}.0", "+{}", "0{}", " {}", "0_{}"])
def test_alert_ids_are_checked_as_the_route_reads_them(world, spell):
    """"7.0", "+7", "07" are alert 7 to the route: another project's alert, spelled so, is a 404
    like a missing one, and cannot be acknowledged."""
    w = world
    for who in ("read", "ingest"):
        for method, suffix in (("GET", ""), ("POST", "/ack")):
            before = w.db.snapshot()
            theirs = w.request(who, method, f"{API}/alerts/{spell.format(w.alerts['beta'])}"
                               f"{suffix}")
            missing = w.request(who, method, f"{API}/alerts/{spell.format(MISSING_ALERT)}"
                                f"{suffix}")
            assert theirs.status_code == missing.status_code == 404, (theirs.text, missing.text)
            assert masked(theirs.json()["detail"], w.alerts["beta"]) == \
                masked(missing.json()["detail"], MISSING_ALERT)
            assert changes(before, w.db.snapshot()) == []
    beta_alert = w.as_admin("GET", f"{API}/alerts/{w.alerts['beta']}").json()
    assert beta_alert["acknowledged_at"] is None


def test_odd_alert_ids_are_a_4xx_never_a_500(world):
    for who in ("read", "ingest", "admin"):
        for odd in ("\u00b2", "\u0661", "1e3", "0x1", "-1", str(2**63), str(2**70), "nan"):
            r = world.request(who, "GET", f"{API}/alerts/{odd}")
            assert r.status_code in (404, 422), (who, odd, r.status_code, r.text)


def test_samples_and_run_ids_addressed_across_projects(world):
    w = world
    alpha, beta = w.runs["alpha"], w.runs["beta"]
    for who in ("read", "ingest"):
        # beta's sample under alpha's run: as missing as a sample that does not exist
        theirs = w.request(who, "GET", f"{API}/runs/{alpha}/samples/{w.samples['beta']}")
        missing = w.request(who, "GET", f"{API}/runs/{alpha}/samples/{MISSING_SAMPLE}")
        assert theirs.status_code == missing.status_code == 404
        assert masked(theirs.json()["detail"], w.samples["beta"]) == \
            masked(missing.json()["detail"], MISSING_SAMPLE)
        # alpha's sample under beta's run: beta's run is unknown to alpha
        r = w.request(who, "GET", f"{API}/runs/{beta}/samples/{w.samples['alpha']}")
        assert r.status_code == 404 and r.json()["detail"] == f"unknown run '{beta}'"
        # a run id repeated in the query: each one is checked
        for params in ([("run_id", alpha), ("run_id", beta)], [("run_id", beta),
                                                              ("run_id", alpha)]):
            for route in ("/alerts", "/alert-events"):
                r = w.request(who, "GET", f"{API}{route}", params=params)
                assert r.status_code == 404, (route, params, r.text)
                assert w.beta_name not in r.text
        # a run id in the query of a route that takes none is checked too
        r = w.request(who, "GET", f"{API}/runs/{alpha}", params={"run_id": beta})
        assert r.status_code == 404


def test_resume_ids_are_keyed_by_the_token(world, monkeypatch, spool_dir):
    """resume=True: the same name and token continue the same run; the id cannot be worked out
    from the name without the token, and another token (even of the same project) makes
    another run."""
    w = world
    name = f"resumable {uuid.uuid4().hex[:6]}"
    token = w.tokens["ingest"]
    other = w.ingest_beta
    assert stable_run_id(name, token) == stable_run_id(name, token)
    assert stable_run_id(name, token) != stable_run_id(name, other)
    assert stable_run_id(name, token) != stable_run_id(name)  # not the name's hash alone
    assert stable_run_id(name, token) != stable_run_id(name, token + "x")
    assert len(stable_run_id("n" * 500, token)) <= 64
    monkeypatch.setenv("GANWATCH_TOKEN", token)
    assert stable_run_id(name) == stable_run_id(name, token)  # GANWATCH_TOKEN by default
    first = trainer_client.init(name, server=w.server.url, resume=True, flush_interval=0.05)
    for step in range(3):
        first.log(loss=math.cos(step))
    first.finish(timeout=60)
    second = trainer_client.init(name, server=w.server.url, resume=True, flush_interval=0.05)
    second.log(loss=1.0)
    second.finish(timeout=60)
    assert second.id == first.id == stable_run_id(name, token)
    with httpx.Client(base_url=w.server.url, headers=bearer(token), timeout=30) as c:
        assert series(c, first.id, "loss")["steps"] == [0, 1, 2, 3]
        assert c.get(f"{API}/runs/{first.id}").json()["project"] == "alpha"
    # beta's token, the same name: its own run, not alpha's
    monkeypatch.setenv("GANWATCH_TOKEN", other)
    third = trainer_client.init(name, server=w.server.url, resume=True, flush_interval=0.05)
    third.log(loss=2.0)
    third.finish(timeout=60)
    assert third.id != first.id
    with httpx.Client(base_url=w.server.url, headers=bearer(other), timeout=30) as c:
        assert c.get(f"{API}/runs/{third.id}").json()["project"] == "beta"
        assert series(c, third.id, "loss")["steps"] == [0]


def test_a_run_an_earlier_client_resumed_by_name_is_continued_if_it_is_the_tokens(
        world, monkeypatch, spool_dir):
    """Earlier clients made resume ids from the name alone: after the upgrade, resume=True
    continues such a run of its own project instead of leaving it behind; one of another
    project (an id anyone could have taken first) is not continued."""
    w = world
    monkeypatch.setenv("GANWATCH_TOKEN", w.tokens["ingest"])
    name, squatted = (f"{what} {uuid.uuid4().hex[:6]}" for what in ("older", "squatted"))
    with httpx.Client(base_url=w.server.url, headers=bearer(w.tokens["ingest"]),
                      timeout=30) as alpha:
        legacy = stable_run_id(name, token="")  # what the earlier client sent
        assert alpha.post(f"{API}/runs", json={"id": legacy, "name": name}).status_code == 201
        assert alpha.post(f"{API}/runs/{legacy}/points", json={"batch_id": uuid.uuid4().hex,
                          "series": {"loss": {"steps": [0, 1], "values": [1.0, 0.5]}}}
                          ).status_code == 200
    with httpx.Client(base_url=w.server.url, headers=bearer(w.ingest_beta),
                      timeout=30) as beta:  # beta took the old-style id of alpha's next name
        assert beta.post(f"{API}/runs", json={"id": stable_run_id(squatted, token=""),
                                              "name": squatted}).status_code == 201
    resumed = trainer_client.init(name, server=w.server.url, resume=True, flush_interval=0.05)
    resumed.log(loss=0.25)
    resumed.finish(timeout=60)
    fresh = trainer_client.init(squatted, server=w.server.url, resume=True, flush_interval=0.05)
    fresh.log(loss=0.25)
    fresh.finish(timeout=60)
    assert resumed.id == legacy
    assert fresh.id == stable_run_id(squatted, w.tokens["ingest"])
    with httpx.Client(base_url=w.server.url, headers=bearer(w.tokens["ingest"]),
                      timeout=30) as alpha:
        assert series(alpha, legacy, "loss")["steps"] == [0, 1, 2]  # continued after step 1
        assert series(alpha, fresh.id, "loss")["steps"] == [0]
        assert alpha.get(f"{API}/runs/{fresh.id}").json()["project"] == "alpha"


# -- the matrix (last: its allowed calls acknowledge, silence and finish) -----------------------

def test_every_route_as_every_principal_own_other_and_missing(world):
    w = world
    failures: list[str] = []
    baseline = w.db.snapshot()
    for (method, _path), route in ROUTES.items():
        for who in PRINCIPALS:
            bodies: dict = {}
            for target in route.targets:
                url, kwargs = route.call(w, target, who)
                if route.call is throwaway_hook:
                    baseline = w.db.snapshot()  # the throwaway webhook is not the request's
                request_text = url + json.dumps(kwargs.get("params", {})) + json.dumps(
                    kwargs.get("json", {}))
                response = w.request(who, method, url, **kwargs)
                want = expected_status(route, who, target)
                what = f"{method} {url} as {who} ({target})"
                if response.status_code != want:
                    failures.append(f"{what}: {response.status_code} (expected {want}): "
                                    f"{response.text[:300]}")
                if response.status_code >= 400:
                    assert response.json().get("detail"), what
                assert_no_leak(w, who, request_text, response)
                if response.status_code >= 400:
                    after = w.db.snapshot()
                    changed = changes(baseline, after)
                    if changed:
                        failures.append(f"{what} answered {response.status_code} and changed "
                                        f"the database: {changed}")
                    baseline = after
                else:
                    if route.after is not None:
                        route.after(w, response)
                    baseline = w.db.snapshot()
                if target in ("beta", "missing") and response.status_code == 404:
                    bodies[target] = normalized(response, w, target)
            if "beta" in bodies and "missing" in bodies and who != "admin":
                if bodies["beta"] != bodies["missing"]:
                    failures.append(f"{method} {_path} as {who}: another project's object "
                                    f"reads {bodies['beta']!r}, a missing one "
                                    f"{bodies['missing']!r}")
    assert not failures, "\n".join(failures)
