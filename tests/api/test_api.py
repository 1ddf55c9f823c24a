"""The HTTP API as a client sees it: idempotent ingest, NaN/Inf as data, clear 4xx errors."""

import gzip
import io
import json
import math
import uuid

import pytest
import torch
from PIL import Image

import trainer_client
from tests.support import series


def new_run(api, name="api-test"):
    response = api.post("/api/v1/runs", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def post_points(api, run_id, batch_id, values, key="loss", start=0, **kwargs):
    body = {"batch_id": batch_id, "series": {key: {
        "steps": list(range(start, start + len(values))), "values": values}}}
    return api.post(f"/api/v1/runs/{run_id}/points", json=body, **kwargs)


def png_bytes(size=(8, 6)):
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_same_batch_posted_twice_is_stored_once(api):
    run_id = new_run(api)
    first = post_points(api, run_id, "batch-1", [1.0, 2.0, 3.0])
    again = post_points(api, run_id, "batch-1", [1.0, 2.0, 3.0])
    assert first.json() == {"batch_id": "batch-1", "accepted": 3, "duplicate": False}
    assert again.status_code == 200
    assert again.json() == {"batch_id": "batch-1", "accepted": 0, "duplicate": True}
    assert series(api, run_id, "loss")["steps"] == [0, 1, 2]


def test_gzip_batches_are_accepted(api):
    run_id = new_run(api)
    body = json.dumps({"batch_id": "gz", "series": {"a": {"steps": [5], "values": [0.5]}}})
    response = api.post(f"/api/v1/runs/{run_id}/points", content=gzip.compress(body.encode()),
                        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert series(api, run_id, "a")["values"] == [0.5]


def test_nan_and_infinities_round_trip_from_log_to_series(server, api, spool_dir):
    run = trainer_client.init("non-finite", server=server.url, flush_interval=0.05)
    run.log(loss=float("nan"), t=torch.tensor(float("inf")))
    run.log(loss=float("inf"), t=torch.tensor(float("-inf")))
    run.log(loss=float("-inf"), t=torch.tensor(float("nan")))
    run.log(loss=1.5, t=torch.tensor(2.5))
    run.finish(timeout=30)
    assert series(api, run.id, "loss")["values"] == ["NaN", "Infinity", "-Infinity", 1.5]
    assert series(api, run.id, "t")["values"] == ["Infinity", "-Infinity", "NaN", 2.5]


def test_non_finite_strings_and_tokens_are_accepted_on_ingest(api):
    run_id = new_run(api)
    raw = ('{"batch_id": "tok", "series": {"v": {"steps": [0, 1, 2, 3], '
           '"values": [NaN, Infinity, "-Infinity", "NaN"]}}}')
    response = api.post(f"/api/v1/runs/{run_id}/points", content=raw,
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert series(api, run_id, "v")["values"] == ["NaN", "Infinity", "-Infinity", "NaN"]


BAD_BATCHES = {
    "bad JSON": ("{not json", {"Content-Type": "application/json"}),
    "values not numbers": (
        {"batch_id": "b", "series": {"x": {"steps": [9], "values": ["abc"]}}}, {}),
    "steps not integers": (
        {"batch_id": "b", "series": {"x": {"steps": ["one"], "values": [1]}}}, {}),
    "series not a mapping": ({"batch_id": "b", "series": [1, 2]}, {}),
    "lengths differ": ({"batch_id": "b", "series": {"x": {"steps": [9, 10], "values": [1]}}}, {}),
    "no batch id": ({"series": {"x": {"steps": [9], "values": [1]}}}, {}),
    "unknown field": ({"batch_id": "b", "series": {}, "extra": 1}, {}),
    "bad batch id": ({"batch_id": "a b/c", "series": {}}, {}),
    "broken gzip": (b"not gzip at all", {"Content-Type": "application/json",
                                         "Content-Encoding": "gzip"}),
}


@pytest.mark.parametrize("case", list(BAD_BATCHES))
def test_malformed_batches_get_4xx_with_detail_and_keep_earlier_data(api, case):
    run_id = new_run(api)
    assert post_points(api, run_id, "good", [1.0, 2.0]).status_code == 200
    body, headers = BAD_BATCHES[case]
    if isinstance(body, dict):
        response = api.post(f"/api/v1/runs/{run_id}/points", json=body, headers=headers)
    else:
        response = api.post(f"/api/v1/runs/{run_id}/points", content=body, headers=headers)
    assert 400 <= response.status_code < 500, (case, response.status_code, response.text)
    assert response.json()["detail"], case
    assert series(api, run_id, "loss") | {"wall_times": None} == {
        "key": "loss", "steps": [0, 1], "values": [1.0, 2.0], "wall_times": None, "count": 2,
        "downsampled": False, "bucket_steps": None}


def test_points_for_an_unknown_run_get_404(api):
    response = post_points(api, "no-such-run", "b1", [1.0])
    assert response.status_code == 404
    assert response.json()["detail"] == "unknown run 'no-such-run'"


def test_unknown_run_and_series_reads_get_404(api):
    run_id = new_run(api)
    assert api.get("/api/v1/runs/nope").status_code == 404
    response = api.get(f"/api/v1/runs/{run_id}/series", params={"key": "missing"})
    assert response.status_code == 404
    assert "missing" in response.json()["detail"]
    assert api.get(f"/api/v1/runs/{run_id}/series").status_code == 422  # no key at all


def test_sample_upload_list_and_fetch(api):
    run_id = new_run(api)
    png = png_bytes()
    batch = uuid.uuid4().hex
    url = f"/api/v1/runs/{run_id}/samples"
    created = api.post(url, params={"step": 7, "batch_id": batch}, content=png,
                       headers={"Content-Type": "image/png"})
    assert created.status_code == 201, created.text
    assert (created.json()["width"], created.json()["height"]) == (8, 6)
    duplicate = api.post(url, params={"step": 7, "batch_id": batch}, content=png,
                         headers={"Content-Type": "image/png"})
    assert duplicate.status_code == 200
    listed = api.get(url).json()
    assert listed["count"] == 1 and listed["data"][0]["step"] == 7
    assert api.get(listed["data"][0]["url"]).content == png


PNG_TYPE = {"Content-Type": "image/png"}


@pytest.mark.parametrize("body", [b"GIF89a not a png", b"\x89PNG\r\n\x1a\n truncated", b""])
def test_non_png_samples_get_415_and_earlier_samples_stay(api, body):
    run_id = new_run(api)
    url = f"/api/v1/runs/{run_id}/samples"
    assert api.post(url, params={"step": 1}, content=png_bytes(),
                    headers=PNG_TYPE).status_code == 201
    response = api.post(url, params={"step": 2}, content=body, headers=PNG_TYPE)
    assert response.status_code == 415
    assert "PNG" in response.json()["detail"]
    assert [s["step"] for s in api.get(url).json()["data"]] == [1]


def test_sample_for_unknown_run_gets_404(api):
    response = api.post("/api/v1/runs/ghost/samples", params={"step": 1}, content=png_bytes(),
                        headers=PNG_TYPE)
    assert response.status_code == 404


def test_runs_are_created_resumed_and_listed(api):
    rid = uuid.uuid4().hex[:12]
    created = api.post("/api/v1/runs",
                       json={"id": rid, "name": "resumable", "config": {"lr": 2e-4}})
    assert created.status_code == 201
    again = api.post("/api/v1/runs", json={"id": rid, "name": "resumable"})
    assert again.status_code == 200 and again.json()["id"] == rid
    assert again.json()["config"] == {"lr": 2e-4}
    by_name = api.post("/api/v1/runs", json={"name": "resumable", "resume": True})
    assert by_name.status_code == 200 and by_name.json()["id"] == rid
    fresh = api.post("/api/v1/runs", json={"name": "resumable"})
    assert fresh.status_code == 201 and fresh.json()["id"] != rid
    listed = api.get("/api/v1/runs", params={"name": "resumable"}).json()
    assert {r["id"] for r in listed["data"]} == {rid, fresh.json()["id"]}
    assert api.post("/api/v1/runs", json={"id": "bad id!", "name": "x"}).status_code == 422
    assert api.post("/api/v1/runs", json={"name": ""}).status_code == 422


def test_health_and_openapi(api):
    health = api.get("/api/v1/health").json()
    assert health["status"] == "ok"
    paths = api.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/runs", "/api/v1/runs/{run_id}/points", "/api/v1/runs/{run_id}/series",
                 "/api/v1/runs/{run_id}/samples"):
        assert path in paths
    assert api.get("/docs").status_code == 200


def test_resumed_client_continues_the_step_count(server, api, spool_dir):
    name = f"resume-{uuid.uuid4().hex[:6]}"
    first = trainer_client.init(name, server=server.url, resume=True, flush_interval=0.05)
    for _ in range(5):
        first.log(x=1.0)
    first.finish(timeout=30)
    second = trainer_client.init(name, server=server.url, resume=True, flush_interval=0.05)
    assert second.id == first.id
    second.log(x=2.0)
    second.finish(timeout=30)
    assert series(api, first.id, "x")["steps"] == [0, 1, 2, 3, 4, 5]
    assert math.isclose(series(api, first.id, "x")["values"][-1], 2.0)


def test_dashboard_files_are_served_with_plotly_offline(api):
    run_id = new_run(api)
    index = api.get("/")
    assert index.status_code == 200 and "Runs" in index.text
    page = api.get(f"/runs/{run_id}")
    assert page.status_code == 200 and "/static-vendor/plotly.min.js" in page.text
    plotly = api.get("/static-vendor/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    assert api.get("/static/run.js").status_code == 200


def test_numbers_too_large_for_the_database_are_a_422_not_a_500(api):
    run_id = new_run(api)
    huge = 2**70
    r = api.post(f"/api/v1/runs/{run_id}/points", json={
        "batch_id": "huge", "series": {"loss": {"steps": [huge], "values": [1.0]}}})
    assert r.status_code == 422 and r.json()["detail"]
    for path, params in ((f"/api/v1/alerts/{huge}", {}), ("/api/v1/alert-events",
                                                           {"after_id": huge}),
                         (f"/api/v1/runs/{run_id}/series", {"key": "loss", "min_step": huge}),
                         (f"/api/v1/webhooks/{huge}", {})):
        r = api.get(path, params=params)
        assert r.status_code in (404, 422) and r.json()["detail"], (path, r.status_code)
    assert post_points(api, run_id, "after", [1.0]).status_code == 200


def test_a_declared_loss_and_keys_reach_the_run_and_its_rules(server, api, spool_dir):
    run = trainer_client.init("wgan-declared", server=server.url, flush_interval=0.05,
                              loss="WGAN_GP", keys={"d_loss": "critic/total"})
    for step in range(5):
        run.log(step, **{"critic/total": -4.0, "D(x)": 4.5, "mystery": 1.0})
    run.finish(timeout=30)
    shown = api.get(f"/api/v1/runs/{run.id}").json()
    assert (shown["loss"], shown["loss_source"]) == ("wgan-gp", "declared")
    assert shown["roles"] == {"d_loss": "critic/total", "d_real": "D(x)"}
    rules = api.get(f"/api/v1/runs/{run.id}/rules").json()
    assert rules["loss"] == "wgan-gp" and rules["roles"]["d_loss"] == "critic/total"
    assert rules["rules"]["critic_runaway"] == {"applies": True, "silenced": False,
                                                "watching": True, "missing": []}
    assert rules["rules"]["d_loss_zero"]["applies"] is False
    assert rules["rules"]["mode_collapse"] == {"applies": True, "silenced": False,
                                               "watching": False,
                                               "missing": ["diversity/ratio"]}


def test_unknown_names_leave_the_gan_rules_not_watching_and_a_bad_family_is_a_422(api):
    run_id = new_run(api, "unknown-names")
    assert post_points(api, run_id, "b", [0.5] * 20, key="accuracy").status_code == 200
    rules = api.get(f"/api/v1/runs/{run_id}/rules").json()["rules"]
    blind = {name for name, r in rules.items() if not r["watching"]}
    assert blind == set(rules) - {"non_finite"}
    shown = api.get(f"/api/v1/runs/{run_id}").json()
    assert shown["health"] == "unwatched" and shown["open_alerts"] == 0  # not "ok"
    listed = {r["id"]: r for r in api.get("/api/v1/runs", params={"limit": 200}).json()["data"]}
    assert listed[run_id]["health"] == "unwatched"
    assert rules["d_loss_zero"]["missing"] == ["d_loss"]
    refused = api.post("/api/v1/runs", json={"name": "x", "loss": "cyclegan"})
    assert refused.status_code == 422 and "the families are" in str(refused.json()["detail"])
    refused = api.post("/api/v1/runs", json={"name": "x", "keys": {"dloss": "a"}})
    assert refused.status_code == 422 and "unknown role" in str(refused.json()["detail"])
    made = api.post("/api/v1/runs", json={"name": "cfg", "config": {"loss": "hinge"}}).json()
    assert (made["loss"], made["loss_source"]) == ("hinge", "declared")
