"""The standing hostile-input suite: no input takes a page down, poisons a series, switches rules
off or causes a 500 (issue 21, defects 2, 3, 7, 9 and 10).

Hostile strings (lone surrogates, NUL, control characters, 10 KB names, non-BMP characters, deep
JSON) and numbers (+-Infinity, NaN, 1e400, 2^63, -2^63-1, huge exponents written literally) go
to every write route as raw JSON text (so they reach the server as a client could send them);
each write must answer 2xx or 4xx with a ``detail``, never 5xx, and the reads the dashboard makes
afterwards (the runs list, the run, its series, samples, alerts and rules) must answer 200.
On SQLite and PostgreSQL (the ``server`` fixture); hypothesis is derandomized, so CI sees the
same examples every time.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import struct
import uuid
import zlib
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import trainer_client
from monitor import ingest
from monitor.rules import library
from monitor.store.rollups import LEVELS
from tests.support import series
from tests.support.rules_harness import Store

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))
JSON = {"Content-Type": "application/json"}


# -- hostile values ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Raw:
    """A number written literally into the JSON text (json.dumps cannot write 1e400)."""

    text: str


def dumps(value) -> str:
    """JSON text as a hostile client writes it: surrogates as \\ud800 escapes (ensure_ascii),
    NaN/Infinity as bare tokens, Raw numbers literally."""
    raws: dict[str, str] = {}

    def swap(v):
        if isinstance(v, Raw):
            marker = f"@@raw{len(raws)}@@"
            raws[marker] = v.text
            return marker
        if isinstance(v, dict):
            return {swap(k) if isinstance(k, Raw) else k: swap(x) for k, x in v.items()}
        if isinstance(v, list):
            return [swap(x) for x in v]
        return v

    text = json.dumps(swap(value), ensure_ascii=True)
    for marker, literal in raws.items():
        text = text.replace(f'"{marker}"', literal)
    return text


def nested(depth: int, leaf="x"):
    value = leaf
    for i in range(depth):
        value = {"a": value} if i % 2 else [value]
    return value


SPECIAL_TEXT = ["\ud800", "\udfff", "a\ud800b", "\udc00\ud800", "\x00", "a\x00b", "\x1b[31m\x07",
                "\u202e\u200b", "\U0001F600\U00010348", "x" * 10_000, "", " ", "\n\t\r",
                "<script>alert(1)</script>", "'; DROP TABLE runs; --", "\ufeff\uffff",
                "<!channel> @everyone", "../../etc/passwd", "%00", "NaN", "Infinity"]
hostile_text = st.one_of(
    st.sampled_from(SPECIAL_TEXT),
    st.text(st.one_of(st.characters(codec=None, exclude_categories=()),
                      st.sampled_from(["\ud800", "\udbff", "\udc00", "\x00"])), max_size=30))
SPECIAL_NUMBERS = [math.inf, -math.inf, math.nan, Raw("1e400"), Raw("-1e400"), Raw("1e99999"),
                   Raw("-1E+99999"), 2**63, -(2**63) - 1, 2**63 - 1, 2**64, Raw("9" * 400),
                   Raw("-0"), Raw("0e-99999"), 1e-320, 1.7976931348623157e308, 0, -1, 0.5, 1e300,
                   "NaN", "Infinity", "-Infinity", "1e400", True, None]
hostile_number = st.one_of(st.sampled_from(SPECIAL_NUMBERS), st.integers(), st.floats())
hostile_json = st.recursive(
    st.one_of(hostile_text, hostile_number),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(hostile_text, inner, max_size=4)),
    max_leaves=12)
deep_json = st.integers(1, 400).map(nested)
any_json = st.one_of(hostile_json, deep_json)


def path_part(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def query(params: dict) -> str:
    """A query string of hostile values (lone surrogates percent-encoded as their bytes)."""
    parts = []
    for name, value in params.items():
        for v in value if isinstance(value, list) else [value]:
            text = v.text if isinstance(v, Raw) else str(v)
            parts.append(f"{name}={path_part(text)}")
    return "&".join(parts)


def png(width: int, height: int) -> bytes:
    """A PNG whose header says width x height (its pixel data need not match)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0,
                                                             0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * (min(width, 64) + 1))) + chunk(b"IEND", b""))


def real_png(width: int = 4, height: int = 4) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height)).save(out, "PNG")
    return out.getvalue()


# -- what every answer must be ----------------------------------------------------------------

def answered(response: httpx.Response) -> httpx.Response:
    """2xx, or 4xx with a detail: never a 5xx."""
    assert response.status_code < 500, (response.request.method, str(response.request.url)[:300],
                                        response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert response.json().get("detail"), response.text[:500]
    return response


def send(client: httpx.Client, method: str, path: str, body=None, *, text: str | None = None,
         **kwargs) -> httpx.Response:
    if body is not None or text is not None:
        kwargs["content"] = (text if text is not None else dumps(body)).encode()
        kwargs["headers"] = {**JSON, **kwargs.get("headers", {})}
    return answered(client.request(method, path, **kwargs))


def reads_work(client: httpx.Client, run_id: str | None = None) -> None:
    """The reads the dashboard makes, all 200."""
    runs = client.get("/api/v1/runs", params={"limit": 1000})
    assert runs.status_code == 200, runs.text[:500]
    assert client.get("/api/v1/alerts", params={"limit": 100}).status_code == 200
    assert client.get("/api/v1/webhooks").status_code == 200
    for rid in [run_id] if run_id else []:
        run = client.get(f"/api/v1/runs/{rid}")
        assert run.status_code == 200, run.text[:500]
        keys = run.json()["series_keys"]
        for i in range(0, min(len(keys), 64), 16):  # as the run page asks: 16 keys a read
            qs = query({"key": keys[i:i + 16], "max_points": 2000})
            read = client.get(f"/api/v1/runs/{rid}/series?{qs}")
            assert read.status_code == 200, read.text[:500]
        for path in (f"/api/v1/runs/{rid}/samples", f"/api/v1/runs/{rid}/rules",
                     f"/api/v1/alerts?run_id={rid}&limit=500"):
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.text[:500])


@pytest.fixture(scope="module")
def alerting_run(server):
    """A run with a firing alert (non_finite fires at the first NaN), to acknowledge."""
    with server.client() as client:
        run_id = client.post("/api/v1/runs", json={"name": "adversarial-alerts"}).json()["id"]
        client.post(f"/api/v1/runs/{run_id}/points", content=b'{"batch_id": "nan", "series": '
                    b'{"loss": {"steps": [1], "values": [NaN]}}}', headers=JSON)
        alerts = client.get("/api/v1/alerts", params={"run_id": run_id}).json()["data"]
        assert alerts, "the non_finite rule did not fire"
        return run_id, alerts[0]["id"]


def new_run(client: httpx.Client, name: str = "adversarial") -> str:
    return client.post("/api/v1/runs", json={"name": name}).json()["id"]


# -- every write route, hostile input ----------------------------------------------------------

@SETTINGS
@given(name=hostile_text, project=st.one_of(st.none(), hostile_text), config=any_json,
       rules=any_json, checkin=hostile_number, run_id=st.one_of(st.none(), hostile_text))
def test_run_create_with_hostile_fields(server, name, project, config, rules, checkin, run_id):
    with server.client() as client:
        body = {"name": name, "config": {"k": config}, "rules": rules,
                "checkin_interval": checkin}
        if project is not None:
            body["project"] = project
        if run_id is not None:
            body["id"] = run_id
        created = send(client, "POST", "/api/v1/runs", body)
        reads_work(client, created.json()["id"] if created.status_code < 300 else None)


@SETTINGS
@given(config=any_json, rules=any_json, checkin=hostile_number, by_id=st.booleans())
def test_run_resume_with_hostile_settings(server, config, rules, checkin, by_id):
    with server.client() as client:
        name = f"resume-{uuid.uuid4().hex[:8]}"
        run_id = new_run(client, name)
        before = client.get(f"/api/v1/runs/{run_id}/rules").json()
        body = {"name": name, "config": config, "rules": rules, "checkin_interval": checkin}
        body.update({"id": run_id} if by_id else {"resume": True})
        resumed = send(client, "POST", "/api/v1/runs", body)
        if resumed.status_code >= 400:  # refused: nothing of it was stored
            assert client.get(f"/api/v1/runs/{run_id}/rules").json() == before
        reads_work(client, run_id)


@SETTINGS
@given(key=hostile_text, steps=st.lists(hostile_number, max_size=4),
       values=st.lists(hostile_number, max_size=4),
       wall_times=st.one_of(st.none(), st.lists(hostile_number, max_size=4)),
       batch_id=hostile_text)
def test_points_with_hostile_keys_and_numbers(server, key, steps, values, wall_times, batch_id):
    with server.client() as client:
        run_id = new_run(client)
        cols = {"steps": steps, "values": values}
        if wall_times is not None:
            cols["wall_times"] = wall_times
        send(client, "POST", f"/api/v1/runs/{run_id}/points",
             {"batch_id": batch_id, "series": {key: cols}})
        # and the same numbers in a well-formed batch with an ordinary key
        n = min(len(values), len(wall_times or values))
        send(client, "POST", f"/api/v1/runs/{run_id}/points", {
            "batch_id": "b2", "series": {"loss": {
                "steps": list(range(n)), "values": values[:n],
                **({"wall_times": wall_times[:n]} if wall_times is not None else {})}}})
        reads_work(client, run_id)


@SETTINGS
@given(key=hostile_text, step=hostile_number, wall_time=hostile_number, batch_id=hostile_text,
       body=st.sampled_from(["png", "bomb", "wide", "zero", "garbage", "empty"]))
def test_samples_with_hostile_parameters_and_bodies(server, key, step, wall_time, batch_id, body):
    content = {"png": real_png(), "bomb": png(20000, 20000), "wide": png(2**31 - 1, 2**31 - 1),
               "zero": png(0, 5), "garbage": b"\x89PNG\r\n\x1a\n" + b"\xff" * 40,
               "empty": b""}[body]
    with server.client() as client:
        run_id = new_run(client)
        qs = query({"key": key, "step": step, "wall_time": wall_time, "batch_id": batch_id})
        answered(client.post(f"/api/v1/runs/{run_id}/samples?{qs}", content=content,
                             headers={"Content-Type": "image/png"}))
        answered(client.post(f"/api/v1/runs/{run_id}/samples?step=1", content=content,
                             headers={"Content-Type": "image/png"}))
        reads_work(client, run_id)


@SETTINGS
@given(rules=any_json, rule=hostile_text, by=any_json, token=any_json)
def test_rules_alerts_finish_and_session_with_hostile_input(server, alerting_run, rules, rule,
                                                             by, token):
    alert_run, alert_id = alerting_run
    with server.client() as client:
        run_id = new_run(client)
        send(client, "PATCH", f"/api/v1/runs/{run_id}/rules", {"rules": rules})
        send(client, "PATCH", f"/api/v1/runs/{run_id}/rules", {"rules": {"non_finite": rules}})
        send(client, "POST", f"/api/v1/runs/{run_id}/rules/{path_part(rule)}/silence")
        send(client, "DELETE", f"/api/v1/runs/{run_id}/rules/{path_part(rule)}/silence")
        send(client, "POST", f"/api/v1/runs/{path_part(rule)}/finish")
        send(client, "POST", f"/api/v1/runs/{run_id}/finish")
        send(client, "POST", f"/api/v1/alerts/{alert_id}/ack", {"by": by})
        send(client, "POST", "/api/v1/session", {"token": token})
        reads_work(client, run_id)
        reads_work(client, alert_run)


@SETTINGS
@given(name=any_json, url_tail=hostile_text, secret=any_json, rules=any_json, run_ids=any_json,
       enabled=hostile_number)
def test_webhooks_with_hostile_fields(server, name, url_tail, secret, rules, run_ids, enabled):
    # loopback URLs only: nothing generated leaves the machine (port 9: nobody listens)
    with server.client() as client:
        body = {"name": name, "url": "http://127.0.0.1:9/" + url_tail, "secret": secret,
                "rules": rules, "run_ids": run_ids, "enabled": False}
        created = send(client, "POST", "/api/v1/webhooks", body)
        hook = created.json()["id"] if created.status_code < 300 else None
        if hook is None:
            created = send(client, "POST", "/api/v1/webhooks",
                           {"url": "http://127.0.0.1:9/hook", "enabled": False})
            hook = created.json()["id"] if created.status_code < 300 else None
        if hook is not None:
            send(client, "PATCH", f"/api/v1/webhooks/{hook}",
                 {"name": name, "secret": secret, "rules": rules, "run_ids": run_ids,
                  "enabled": enabled, "url": "http://127.0.0.1:9/" + url_tail})
            send(client, "DELETE", f"/api/v1/webhooks/{hook}")
        reads_work(client)


@SETTINGS
@given(value=hostile_text, number=hostile_number)
def test_read_routes_with_hostile_query_parameters(server, alerting_run, value, number):
    run_id, alert_id = alerting_run
    with server.client() as client:
        for path, params in [
            ("/api/v1/runs", {"name": value, "limit": number, "offset": number}),
            (f"/api/v1/runs/{run_id}/series", {"key": value, "max_points": number,
                                               "min_step": number, "max_step": number}),
            (f"/api/v1/runs/{run_id}/series", {"key": "loss", "max_points": number}),
            (f"/api/v1/runs/{run_id}/samples", {"key": value, "limit": number}),
            ("/api/v1/alerts", {"run_id": value, "status": value, "rule": value}),
            ("/api/v1/alert-events", {"run_id": value, "after_id": number}),
            (f"/api/v1/runs/{path_part(value)}", {}),
            (f"/api/v1/runs/{path_part(value)}/series", {"key": "loss"}),
            (f"/api/v1/alerts/{path_part(value)}", {}),
        ]:
            answered(client.get(f"{path}?{query(params)}" if params else path))
        reads_work(client, run_id)


# -- defect 2: text the server cannot store or write back is refused, and stores nothing ------

@pytest.mark.parametrize(("body", "says"), [
    ('{"name": "%s", "config": {"k": "\\ud800"}}', "config.k"),
    ('{"name": "%s", "config": {"a": {"b": ["\\udfff"]}}}', "config.a.b[0]"),
    ('{"name": "%s", "config": {"\\ud800": 1}}', "lone surrogate"),
    ('{"name": "%s", "config": {"k": "a\\u0000b"}}', "NUL"),
    ('{"name": "%s", "config": ' + dumps(nested(300)) + "}", "32"),
    ('{"name": "%s", "config": {"k": "' + "x" * 70_000 + '"}}', "65536"),
    ('{"name": "%s\\ud800"}', "lone surrogate"),
    ('{"name": "%s\\u0000"}', "NUL"),
    ('{"name": "%s", "rules": {"d_loss_zero": {"key": "\\ud800"}}}', "lone surrogate"),
])
def test_unstorable_text_is_a_422_naming_it_and_stores_nothing(api, body, says):
    name = f"refused-{uuid.uuid4().hex[:8]}"
    response = api.post("/api/v1/runs", content=(body % name).encode(), headers=JSON)
    assert response.status_code == 422, response.text[:300]
    assert says in json.dumps(response.json()["detail"], ensure_ascii=False)
    assert "number" not in str(response.json()["detail"]).split("input")[0]
    assert api.get("/api/v1/runs", params={"name": name}).json()["count"] == 0
    assert api.get("/api/v1/runs").status_code == 200


def test_non_finite_config_values_are_stored_as_the_api_writes_them(api):
    created = api.post("/api/v1/runs", headers=JSON, content=(
        b'{"name": "nan-config", "config": {"lr": NaN, "clip": Infinity, "floor": -1e400, '
        b'"big": 18446744073709551616}}'))
    assert created.status_code == 201, created.text
    config = api.get(f"/api/v1/runs/{created.json()['id']}").json()["config"]
    assert config == {"lr": "NaN", "clip": "Infinity", "floor": "-Infinity",
                      "big": 18446744073709551616}
    assert api.get("/api/v1/runs").status_code == 200


@pytest.mark.parametrize("key", ["\\ud800", "a\\u0000", "\\udc00x"])
def test_an_unstorable_series_key_is_a_422_not_a_500(api, key):
    run_id = new_run(api)
    response = api.post(f"/api/v1/runs/{run_id}/points", headers=JSON, content=(
        '{"batch_id": "b", "series": {"KEY": {"steps": [1], "values": [1]}}}'
        .replace("KEY", key)).encode())
    assert response.status_code == 422 and response.json()["detail"]
    assert api.get(f"/api/v1/runs/{run_id}").json()["series_keys"] == []


def test_nul_in_a_parameter_is_a_422_that_says_so(api):
    run_id = new_run(api)
    for path in ("/api/v1/runs?name=%00", f"/api/v1/runs/{run_id}/series?key=a%00",
                 "/api/v1/runs/x%00y", "/api/v1/alerts?rule=%00"):
        response = api.get(path)
        assert response.status_code == 422, (path, response.text)
        assert "NUL" in response.json()["detail"] and "number" not in response.json()["detail"]


# -- defect 3: wall times are finite ----------------------------------------------------------

@pytest.mark.parametrize("bad", ["Infinity", "-Infinity", "NaN", "1e400", '"Infinity"', '"NaN"'])
def test_a_non_finite_wall_time_is_a_422_naming_the_key_and_index(api, bad):
    run_id = new_run(api)
    url = f"/api/v1/runs/{run_id}/points"
    assert api.post(url, json={"batch_id": "ok", "series": {"loss": {
        "steps": [0], "values": [1.0], "wall_times": [1.7e9]}}}).status_code == 200
    response = api.post(url, headers=JSON, content=(
        '{"batch_id": "bad", "series": {"loss": {"steps": [1, 2], "values": [1, 2], '
        '"wall_times": [1700000000, BAD]}}}'.replace("BAD", bad)).encode())
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"][-3:] == ["loss", "wall_times", 1]
    data = series(api, run_id, "loss")  # the series still reads, without the refused batch
    assert data["steps"] == [0] and data["wall_times"] == [1.7e9]
    # the refused batch's id was not used up
    assert api.post(url, json={"batch_id": "bad", "series": {"loss": {
        "steps": [1], "values": [2.0]}}}).json()["duplicate"] is False


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1e400", "Infinity"])
def test_a_non_finite_sample_wall_time_is_a_422(api, bad):
    run_id = new_run(api)
    response = api.post(f"/api/v1/runs/{run_id}/samples",
                        params={"step": 0, "wall_time": bad}, content=real_png(),
                        headers={"Content-Type": "image/png"})
    assert response.status_code == 422 and "wall_time" in str(response.json()["detail"])
    assert api.get(f"/api/v1/runs/{run_id}/samples").json()["count"] == 0


# -- defect 7: bounded reads ------------------------------------------------------------------

def test_series_reads_are_bounded_with_a_422_naming_the_limit(api):
    run_id = new_run(api)
    api.post(f"/api/v1/runs/{run_id}/points", json={"batch_id": "b", "series": {
        "x": {"steps": [0, 1], "values": [1.0, 2.0]}}})
    url = f"/api/v1/runs/{run_id}/series"
    probe = api.get(url, params={"key": ["x"] * 20, "max_points": 100_000})
    assert probe.status_code == 422 and "GANWATCH_MAX_SERIES_POINTS" in probe.json()["detail"]
    over = api.get(url, params={"key": "x", "max_points": 100_001})  # was clamped silently
    assert over.status_code == 422 and "100000" in over.json()["detail"]
    many = api.get(url, params={"key": ["x"] * 33, "max_points": 3})
    assert many.status_code == 422 and "GANWATCH_MAX_SERIES_KEYS" in many.json()["detail"]
    # the largest reads allowed answer
    assert api.get(url, params={"key": "x", "max_points": 100_000}).status_code == 200
    assert len(api.get(url, params={"key": ["x"] * 32, "max_points": 3125}).json()[
        "series"]) == 32


def test_a_range_too_short_for_the_buckets_asked_is_read_from_the_finest_buckets(api):
    """Many points over few steps per bucket asked: read point by point only up to a bound
    (reading them all is what made 20 keys at max_points=100000 take a minute), beyond it from
    the finest pre-aggregated buckets, whose minima and maxima are exact."""
    run_id = new_run(api)
    steps = list(range(40_000))
    values = [math.sin(s / 300) + (s % 7) / 10 for s in steps]
    values[12_345], values[23_456] = 40.0, "NaN"
    for lo in range(0, len(steps), 20_000):
        assert api.post(f"/api/v1/runs/{run_id}/points", json={"batch_id": f"b{lo}", "series": {
            "v": {"steps": steps[lo:lo + 20_000], "values": values[lo:lo + 20_000]}}}
        ).status_code == 200
    window = {"min_step": 5, "max_step": 39_990}
    # one key: within what a read takes point by point (GANWATCH_MAX_SERIES_POINTS), the
    # resolution asked, split evenly
    assert series(api, run_id, "v", max_points=3000, **window)["bucket_steps"] is None
    # 32 keys share that budget: each is read from the finest stored buckets
    read = api.get(f"/api/v1/runs/{run_id}/series",
                   params={"key": ["v"] * 32, "max_points": 3000, **window})
    assert read.status_code == 200
    data = read.json()["series"][0]
    assert data["downsampled"] and data["bucket_steps"] == LEVELS[0]
    assert data["count"] == 39_986
    got = dict(zip(data["steps"], data["values"]))
    assert got[5] == values[5] and got[39_990] == values[39_990]  # the ends
    assert got[23_456] == "NaN" and 40.0 in data["values"]
    for bucket in range(5 // 64, 39_990 // 64 + 1):  # every bucket's exact min and max
        inside = [v for s, v in zip(steps, values)
                  if 5 <= s <= 39_990 and s // 64 == bucket and isinstance(v, float)]
        shown = [v for s, v in got.items() if s // 64 == bucket and isinstance(v, float)]
        assert min(inside) in shown and max(inside) in shown
    assert len(data["steps"]) <= 2 * (39_990 // 64 + 1) + 3


# -- defect 10: samples whose header claims too many pixels -----------------------------------

@pytest.mark.parametrize("size", [(20000, 20000), (2**31 - 1, 2**31 - 1), (5000, 5000)])
def test_a_png_claiming_too_many_pixels_is_a_413_before_it_is_decoded(api, size):
    run_id = new_run(api)
    response = api.post(f"/api/v1/runs/{run_id}/samples", params={"step": 0},
                        content=png(*size), headers={"Content-Type": "image/png"})
    assert response.status_code == 413
    assert "GANWATCH_MAX_SAMPLE_PIXELS" in response.json()["detail"]
    assert api.get(f"/api/v1/runs/{run_id}/samples").json()["count"] == 0


# -- defect 9: rule parameters are bounded, and a failing rule is an alert ---------------------

@pytest.mark.parametrize(("rules", "says"), [
    ('{"non_finite": {"window": Infinity}}', "rules.non_finite.window"),
    ('{"d_loss_zero": {"window": 1e300}}', "between 1 and 100000"),
    ('{"d_loss_zero": {"threshold": 1e400}}', "rules.d_loss_zero.threshold"),
    ('{"d_loss_zero": {"for": 1e300}}', "rules.d_loss_zero.for"),
    ('{"g_fooling_d": {"min_correlation": 2}}', "between 0 and 1"),
    ('{"stalled": {"grace": 1e12}}', "rules.stalled.grace"),
    ('{"d_loss_zero": {"warmup": ' + "9" * 400 + "}}", "rules.d_loss_zero.warmup"),
])
def test_rule_parameters_out_of_bounds_are_a_422_on_create_patch_and_resume(api, rules, says):
    name = f"bounded-{uuid.uuid4().hex[:8]}"
    created = api.post("/api/v1/runs", headers=JSON,
                       content=f'{{"name": "{name}", "rules": {rules}}}'.encode())
    assert created.status_code == 422 and says in str(created.json()["detail"])
    assert api.get("/api/v1/runs", params={"name": name}).json()["count"] == 0
    run_id = api.post("/api/v1/runs", json={"name": name, "rules": {
        "mode_collapse": {"threshold": 0.4}}}).json()["id"]
    patched = api.patch(f"/api/v1/runs/{run_id}/rules", headers=JSON,
                        content=f'{{"rules": {rules}}}'.encode())
    assert patched.status_code == 422 and says in str(patched.json()["detail"])
    for resume in (f'"id": "{run_id}"', '"resume": true'):
        resumed = api.post("/api/v1/runs", headers=JSON, content=(
            f'{{"name": "{name}", {resume}, "rules": {rules}}}').encode())
        assert resumed.status_code == 422 and says in str(resumed.json()["detail"])
    assert api.get(f"/api/v1/runs/{run_id}/rules").json()["overrides"] == {
        "mode_collapse": {"threshold": 0.4}}


def test_the_rules_catalogue_states_every_numeric_parameters_bounds(api):
    catalogue = api.get("/api/v1/rules").json()
    assert "rule_error" in {rule["name"] for rule in catalogue}
    for rule in catalogue:
        for name, param in rule["params"].items():
            if isinstance(param["default"], (int, float)) and not isinstance(
                    param["default"], bool):
                assert param["minimum"] <= param["default"] <= param["maximum"], (rule, name)
                assert math.isfinite(param["maximum"])


@pytest.fixture
def db(tmp_path):
    store = Store(tmp_path / "rules.db")
    yield store
    store.close()


def test_a_rule_that_fails_to_evaluate_raises_a_rule_error_alert(db, monkeypatch):
    def boom(window, params):
        raise ZeroDivisionError("the rule divided by zero")

    monkeypatch.setitem(library.RULES, "d_loss_zero", dataclasses.replace(
        library.RULES["d_loss_zero"], check=boom))
    run = db.run(rules={"d_loss_zero": {"warmup": 0}})
    db.feed(run, {"d_loss": [0.5] * 40 + [math.nan] + [0.5] * 9})
    notes = db.notes(run)
    assert ("rule_error", "d_loss_zero", "firing") in {(n.rule, n.subject, n.kind) for n in notes}
    assert ("non_finite", "", "firing") in {(n.rule, n.subject, n.kind) for n in notes}
    [alert] = [a for a in db.alerts(run) if a.rule == "rule_error"]
    assert alert.status == "firing" and alert.title == "Rule failed to evaluate: d_loss_zero"
    assert "d_loss_zero" in alert.message and "ZeroDivisionError" in alert.message
    assert "divided by zero" in alert.evidence["error"]
    monkeypatch.undo()  # the rule works again: its rule_error alert resolves
    db.feed(run, {"d_loss": [0.5] * 50}, start=50)
    [alert] = [a for a in db.alerts(run) if a.rule == "rule_error"]
    assert alert.status == "resolved"


def test_an_evaluation_that_fails_as_a_whole_raises_a_rule_error_alert(db, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("cannot read the window")

    run = db.run()
    monkeypatch.setattr(ingest, "load_window", broken)
    db.feed(run, {"d_loss": [0.5] * 10})
    [alert] = [a for a in db.alerts(run) if a.rule == "rule_error"]
    assert alert.status == "firing" and alert.subject == ""
    assert "cannot read the window" in alert.message
    monkeypatch.undo()
    db.feed(run, {"d_loss": [0.5] * 10}, start=10)
    [alert] = [a for a in db.alerts(run) if a.rule == "rule_error"]
    assert alert.status == "resolved"


# -- the client: a config the server refuses does not cost the run ----------------------------

@pytest.mark.parametrize("config", [nested(40), {"notes": "x" * 70_000}])
def test_client_with_a_config_the_server_refuses_still_streams(server, api, spool_dir, capfd,
                                                                config):
    run = trainer_client.init("big-config", server=server.url, flush_interval=0.05,
                              config={"k": config}, rules={"d_loss_zero": {"window": 20}})
    for step in range(20):
        run.log(step=step, d_loss=1.0)
    run.finish()
    assert series(api, run.id, "d_loss")["steps"] == list(range(20))
    stored = api.get(f"/api/v1/runs/{run.id}").json()
    assert stored["config"] == {}
    assert api.get(f"/api/v1/runs/{run.id}/rules").json()["overrides"] == {
        "d_loss_zero": {"window": 20}}  # only the config was dropped
    assert "refused this run's config" in capfd.readouterr().err
