"""Bodies over the configured limits get a 413 that names the setting; nothing stored changes."""

import gzip
import io
import json
import random

import pytest
from PIL import Image

from tests.support import ServerProcess, series


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    proc = ServerProcess(data_dir=tmp_path_factory.mktemp("limits"),
                         env={"GANWATCH_MAX_BODY_BYTES": "20000",
                              "GANWATCH_MAX_SAMPLE_BYTES": "2000",
                              "GANWATCH_MAX_BATCH_POINTS": "100",
                              "GANWATCH_MAX_SERIES_PER_RUN": "3",
                              "GANWATCH_MAX_SAMPLE_PIXELS": "2500"}).start()
    yield proc
    proc.stop()


def batch(n, batch_id):
    return {"batch_id": batch_id, "series": {"x": {"steps": [7] * n, "values": [0.123456789] * n}}}


def test_oversized_and_inflating_bodies_get_413(small_server):
    with small_server.client() as api:
        run_id = api.post("/api/v1/runs", json={"name": "limits"}).json()["id"]
        url = f"/api/v1/runs/{run_id}/points"
        assert api.post(url, json=batch(10, "ok")).status_code == 200
        big = api.post(url, json=batch(3000, "big"))
        assert big.status_code == 413 and "GANWATCH_MAX_BODY_BYTES" in big.json()["detail"]
        # Small on the wire, huge once inflated: refused without inflating it all.
        bomb = gzip.compress(json.dumps(batch(200_000, "bomb")).encode())
        assert len(bomb) < 20000
        inflated = api.post(url, content=bomb, headers={"Content-Encoding": "gzip",
                                                        "Content-Type": "application/json"})
        assert inflated.status_code == 413
        assert series(api, run_id, "x")["count"] == 10


def test_oversized_sample_gets_413(small_server):
    with small_server.client() as api:
        run_id = api.post("/api/v1/runs", json={"name": "limits"}).json()["id"]
        out = io.BytesIO()
        noise = random.Random(0).randbytes(100 * 100)  # incompressible: about 10 kB of PNG
        Image.frombytes("L", (100, 100), noise).save(out, "PNG")
        response = api.post(f"/api/v1/runs/{run_id}/samples", params={"step": 0},
                            content=out.getvalue(), headers={"Content-Type": "image/png"})
        assert response.status_code == 413
        assert "GANWATCH_MAX_SAMPLE_BYTES" in response.json()["detail"]


def test_too_many_points_in_a_batch_get_413_naming_the_limit(small_server):
    with small_server.client() as api:
        run_id = api.post("/api/v1/runs", json={"name": "limits"}).json()["id"]
        url = f"/api/v1/runs/{run_id}/points"
        assert api.post(url, json=batch(100, "at-the-limit")).status_code == 200
        over = api.post(url, json=batch(101, "over"))
        assert over.status_code == 413 and "GANWATCH_MAX_BATCH_POINTS" in over.json()["detail"]
        assert series(api, run_id, "x")["count"] == 100


def test_too_many_series_in_a_run_get_422_and_the_batch_can_be_sent_again(small_server):
    with small_server.client() as api:
        run_id = api.post("/api/v1/runs", json={"name": "limits"}).json()["id"]
        url = f"/api/v1/runs/{run_id}/points"

        def body(batch_id, keys):
            return {"batch_id": batch_id,
                    "series": {k: {"steps": [0], "values": [1.0]} for k in keys}}

        assert api.post(url, json=body("a", ["k1", "k2"])).status_code == 200
        over = api.post(url, json=body("b", ["k2", "k3", "k4"]))
        assert over.status_code == 422
        assert "GANWATCH_MAX_SERIES_PER_RUN" in over.json()["detail"]
        run = api.get(f"/api/v1/runs/{run_id}").json()
        assert sorted(run["series_keys"]) == ["k1", "k2"]  # nothing of the refused batch
        assert series(api, run_id, "k2")["count"] == 1
        # the refused batch's id was not used up: within the limit, it is stored
        again = api.post(url, json=body("b", ["k2", "k3"]))
        assert again.status_code == 200 and again.json()["duplicate"] is False


def test_a_sample_with_too_many_pixels_gets_413(small_server):
    with small_server.client() as api:
        run_id = api.post("/api/v1/runs", json={"name": "limits"}).json()["id"]
        out = io.BytesIO()
        Image.new("L", (60, 50)).save(out, "PNG")  # 3,000 pixels, a few hundred bytes
        assert len(out.getvalue()) < 2000
        response = api.post(f"/api/v1/runs/{run_id}/samples", params={"step": 0},
                            content=out.getvalue(), headers={"Content-Type": "image/png"})
        assert response.status_code == 413
        assert "GANWATCH_MAX_SAMPLE_PIXELS" in response.json()["detail"]
        assert api.get(f"/api/v1/runs/{run_id}/samples").json()["count"] == 0
