"""Bodies over the configured limits get a 413 that names the setting; nothing stored changes."""

import gzip
import io
import json
import random

import pytest
from conftest import ServerProcess, series
from PIL import Image


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    proc = ServerProcess(data_dir=tmp_path_factory.mktemp("limits"),
                         env={"GANWATCH_MAX_BODY_BYTES": "20000",
                              "GANWATCH_MAX_SAMPLE_BYTES": "2000"}).start()
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
                            content=out.getvalue())
        assert response.status_code == 413
        assert "GANWATCH_MAX_SAMPLE_BYTES" in response.json()["detail"]
