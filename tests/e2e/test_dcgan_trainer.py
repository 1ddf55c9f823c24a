"""The reference DCGAN trainer and ``ganwatch demo`` as a user meets them: a dry run, repeatable
offline runs, one-line argument errors, and the demo's handling of the port it is given.

tests/e2e/test_trainer_and_demo.py covers streaming to a server and a demo that starts its own.
"""

import re
import socket
import subprocess
import sys

import pytest

import trainer_client
from ganwatch.demo import DEMO_RUN_NAME, run_demo
from tests.support import ROOT, series
from trainer_client.dcgan import TrainConfig, train

TINY = dict(batch_size=16, nz=8, ngf=8, ndf=8, eval_samples=200)  # seconds on a CPU


@pytest.fixture
def no_init(monkeypatch):
    """Fail the test if the trainer starts a ganwatch run: offline means offline."""

    def refuse(*args, **kwargs):
        raise AssertionError("trainer_client.init() was called by an offline run")

    monkeypatch.setattr(trainer_client, "init", refuse)


def test_dry_run_trains_three_steps_on_fake_data_without_a_server(no_init, tmp_path):
    summary = train(TrainConfig(dataset="fake", dry_run=True, out=str(tmp_path)))
    assert summary["steps"] == 3
    assert summary["run_id"] is None and summary["url"] is None
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert isinstance(summary[key], float)
    assert 0.0 < summary["d_real"] < 1.0 and 0.0 < summary["d_fake"] < 1.0  # probabilities


def test_offline_digits_runs_with_the_same_seed_end_with_the_same_losses(no_init, tmp_path):
    def run(seed: int, out: str) -> dict:
        summary = train(TrainConfig(dataset="digits", steps=5, seed=seed, no_server=True,
                                    out=str(tmp_path / out), **TINY))
        return {k: summary[k] for k in ("d_loss", "g_loss", "d_real", "d_fake")}

    first, second = run(7, "a"), run(7, "b")
    assert first == second
    assert run(8, "c") != first


@pytest.mark.parametrize("argv, message", [
    (["--steps", "abc"], "argument --steps: invalid int value: 'abc'"),
    (["--device", "gpu"], "argument --device: invalid choice: 'gpu'"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
])
def test_a_bad_argument_is_one_line_and_exit_code_2(argv, message):
    done = subprocess.run([sys.executable, "-m", "trainer_client.dcgan", *argv],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("python -m trainer_client.dcgan: error: ")
    assert done.stderr.count("\n") == 1 and message in done.stderr
    assert "Traceback" not in done.stderr


def test_demo_refuses_a_port_held_by_something_else(tmp_path, capsys):
    with socket.socket() as listener:  # accepts connections, never answers HTTP
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        code = run_demo(port=port, data_dir=tmp_path / "demo", steps=1, keep_serving=True)
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"port {port} is taken" in err
    assert not (tmp_path / "demo").exists()  # no server was started


def test_demo_reuses_a_running_server_and_names_only_its_own_run(sqlite_server, spool_dir,
                                                                 tmp_path, monkeypatch, capfd):
    server = sqlite_server.start()
    monkeypatch.chdir(tmp_path)  # the trainer's checkpoint and grids go under ./runs
    with server.client() as api:
        older = api.post("/api/v1/runs", json={"name": DEMO_RUN_NAME}).json()["id"]

        # A trainer that fails before it starts a run: its exit code, and no older run's URL.
        assert run_demo(port=server.port, data_dir=tmp_path / "unused", steps=0,
                        keep_serving=True) == 2
        out, err = capfd.readouterr()
        assert "using the server already running" in out and "this run:" not in out
        assert "steps must be at least 1" in err and "stored no run" in err

        # A short run: keep_serving does not wait on a server the demo did not start.
        assert run_demo(port=server.port, data_dir=tmp_path / "unused", steps=2,
                        keep_serving=True) == 0
        out, _ = capfd.readouterr()
        found = re.search(rf"this run: {re.escape(server.url)}/runs/([0-9a-f]+)", out)
        assert found and found.group(1) != older
        assert series(api, found.group(1), "d_loss")["steps"] == [0, 1]
    assert not (tmp_path / "unused").exists()  # the running server's data dir was used
