"""A plain DCGAN loop with two lines added stores everything a user needs, read back over HTTP."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import series

LOOP = Path(__file__).resolve().parents[1] / "loops" / "dcgan_example.py"


@pytest.fixture(scope="module")
def dcgan_run(server, tmp_path_factory):
    """Train once per server (SQLite, PostgreSQL) and let the tests read what was stored."""
    api = server.client()
    spool = tmp_path_factory.mktemp("spool")
    env = dict(os.environ, GANWATCH_URL=server.url, GANWATCH_SPOOL_DIR=str(spool))
    earlier = api.get("/api/v1/runs", params={"name": "dcgan-example"}).json()["data"]
    before = {r["id"] for r in earlier}
    done = subprocess.run([sys.executable, str(LOOP), "--niter", "1", "--nbatches", "6"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    runs = api.get("/api/v1/runs", params={"name": "dcgan-example"}).json()["data"]
    [run] = [r for r in runs if r["id"] not in before]
    return run, done


def test_two_lines_store_losses_d_outputs_norms_diversity_and_samples(dcgan_run, api):
    run, done = dcgan_run
    assert "not sent" not in done.stderr
    assert run["status"] == "finished"
    assert run["config"]["batchSize"] == 16
    keys = set(run["series_keys"])
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "grad_norm/G", "grad_norm/D",
                "diversity/fake", "diversity/real", "diversity/ratio"):
        assert key in keys, key
        data = series(api, run["id"], key)
        assert data["steps"] == list(range(6)), key
    # Per-layer norms of both networks: each conv/batchnorm layer of pytorch's DCGAN.
    layers_g = {k for k in keys if k.startswith("grad_norm/G/")}
    layers_d = {k for k in keys if k.startswith("grad_norm/D/")}
    assert {"grad_norm/G/main.0", "grad_norm/G/main.1", "grad_norm/G/main.12"} <= layers_g
    assert {"grad_norm/D/main.0", "grad_norm/D/main.11"} <= layers_d
    assert len(layers_g) == 9 and len(layers_d) == 8

    # The values are the loop's own: the printed D(x) of the last batch is what d_real stores.
    last_line = [line for line in done.stdout.splitlines() if line.startswith("[0/1][5/6]")][0]
    printed_dx = float(last_line.split("D(x): ")[1].split()[0])
    assert series(api, run["id"], "d_real")["values"][-1] == pytest.approx(printed_dx, abs=1e-4)

    # A network's total norm is the root of the sum of its layers' squared norms.
    for net, layers in (("G", layers_g), ("D", layers_d)):
        total = series(api, run["id"], f"grad_norm/{net}")["values"]
        per_layer = [series(api, run["id"], k)["values"] for k in layers]
        for step in range(6):
            assert total[step] == pytest.approx(sum(v[step] ** 2 for v in per_layer) ** 0.5)

    ratio = series(api, run["id"], "diversity/ratio")["values"]
    fake = series(api, run["id"], "diversity/fake")["values"]
    real = series(api, run["id"], "diversity/real")["values"]
    assert ratio == pytest.approx([f / r for f, r in zip(fake, real)])


def test_two_lines_store_sample_grids_as_png(dcgan_run, api):
    run, _ = dcgan_run
    samples = api.get(f"/api/v1/runs/{run['id']}/samples").json()
    # sample_every=3 over steps 0..5: grids at steps 0 and 3, each 16 images of 64x64 in a 4x4 grid
    assert [s["step"] for s in samples["data"]] == [0, 3]
    first = samples["data"][0]
    assert (first["width"], first["height"]) == (4 * 66 + 2, 4 * 66 + 2)
    png = api.get(first["url"])
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
