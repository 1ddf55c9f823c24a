"""The reference trainer (its first version) and `ganwatch demo`, as a user runs them."""

import os
import re
import subprocess
import sys

import pytest

from tests.support import ROOT, free_port, series
from trainer_client.dcgan import TrainConfig, train


def test_dry_run_completes_without_a_server():
    summary = train(TrainConfig(dry_run=True))
    assert summary["steps"] == 3 and summary["run_id"] is None


def test_cpu_runs_with_a_seed_are_repeatable():
    config = dict(steps=4, batch_size=16, ngf=8, ndf=8, nz=8, no_server=True, seed=3)
    first, second = train(TrainConfig(**config)), train(TrainConfig(**config))
    assert first["d_loss"] == second["d_loss"] and first["g_loss"] == second["g_loss"]
    other = train(TrainConfig(**{**config, "seed": 4}))
    assert other["d_loss"] != first["d_loss"]


@pytest.mark.parametrize("argv, message", [
    (["--steps", "abc"], "invalid int value"),
    (["--image-size", "48"], "image-size must be 32 or 64"),
    (["--batch-size", "0"], "batch-size must be at least 1"),
])
def test_bad_trainer_arguments_are_one_line(argv, message):
    done = subprocess.run([sys.executable, "-m", "trainer_client.dcgan", *argv],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and message in done.stderr


def test_trainer_streams_to_the_server(server, api, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "trainer_client.dcgan", "--steps", "12", "--batch-size", "16",
         "--sample-every", "5", "--server", server.url, "--name", "trainer-stream"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "GANWATCH_SPOOL_DIR": str(tmp_path / "spool")})
    assert done.returncode == 0, done.stderr
    run_id = re.search(r"/runs/([0-9a-f]+)", done.stdout).group(1)
    run = api.get(f"/api/v1/runs/{run_id}").json()
    assert run["config"]["steps"] == 12 and run["status"] == "finished"
    assert series(api, run_id, "d_loss")["steps"] == list(range(12))
    assert 0.0 < series(api, run_id, "d_real")["values"][0] < 1.0
    def sample_steps(key):
        listed = api.get(f"/api/v1/runs/{run_id}/samples", params={"key": key}).json()
        return [s["step"] for s in listed["data"]]

    assert sample_steps("fake") == [0, 5, 10]  # the training batch, every --sample-every steps
    assert sample_steps("fixed") == [0, 5, 10]  # the fixed-noise grid alongside
    assert sample_steps("interpolation") == [11]  # the slerp sheet at the end
    evaluation = series(api, run_id, "eval/class_coverage")
    assert evaluation["steps"] == [11] and 1 <= evaluation["values"][0] <= 10


def test_demo_starts_a_server_trains_and_prints_the_run_url(tmp_path):
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "ganwatch", "demo", "--steps", "8", "--exit", "--port", str(port),
         "--data-dir", str(tmp_path / "demo")],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "GANWATCH_SPOOL_DIR": str(tmp_path / "spool")})
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(rf"this run: http://127\.0\.0\.1:{port}/runs/[0-9a-f]+", done.stdout)
    assert (tmp_path / "demo" / "ganwatch.db").is_file()
