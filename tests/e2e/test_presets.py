"""The failure presets reproduce their failure, as a user sees it in ganwatch."""

import dataclasses
import math
import os
import re
import subprocess
import sys

import pytest

from tests.support import ROOT, series


def run_preset(server, tmp_path, preset, steps):
    done = subprocess.run(
        [sys.executable, "-m", "trainer_client.dcgan", "--preset", preset, "--steps", str(steps),
         "--server", server.url, "--name", f"preset-{preset}", "--out", str(tmp_path / "out"),
         "--sample-every", "0"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**os.environ, "GANWATCH_SPOOL_DIR": str(tmp_path / "spool")})
    assert done.returncode == 0, done.stderr[-2000:]
    return re.search(r"/runs/([0-9a-f]+)", done.stdout).group(1)


@pytest.fixture
def sqlite_only(server):
    if server.database_url:
        pytest.skip("the presets need one server, not one per database")
    return server


def test_d_wins_drives_d_loss_to_zero_and_g_gradient_away(sqlite_only, api, tmp_path):
    run_id = run_preset(sqlite_only, tmp_path, "d-wins", 60)
    d_loss = series(api, run_id, "d_loss")["values"]
    g_norm = series(api, run_id, "grad_norm/G")["values"]
    assert max(d_loss[-10:]) < 0.01
    assert series(api, run_id, "d_real")["values"][-1] > 0.99
    assert series(api, run_id, "d_fake")["values"][-1] < 0.01
    assert max(g_norm[-10:]) < g_norm[0] / 10  # G's gradient vanishes


def test_diverge_explodes_then_goes_nan(sqlite_only, api, tmp_path):
    run_id = run_preset(sqlite_only, tmp_path, "diverge", 60)
    d_loss = series(api, run_id, "d_loss")["values"]
    assert d_loss[0] != "NaN" and d_loss[-1] == "NaN"
    d_norm = series(api, run_id, "grad_norm/D")["values"]
    first_bad = next(i for i, v in enumerate(d_norm) if isinstance(v, str) or v > 100)
    assert first_bad > 0 and all(isinstance(v, float) and math.isfinite(v)
                                 for v in d_norm[:first_bad])


def test_a_flag_equal_to_its_default_still_wins_over_the_preset():
    from trainer_client.dcgan.config import PRESETS, TrainConfig, parse_args

    # collapse sets lr 1e-3, norm none, hard labels; the user asks for the defaults back
    assert PRESETS["collapse"]["lr"] != TrainConfig.lr
    config = parse_args(["--preset", "collapse", "--lr", str(TrainConfig.lr),
                         "--norm", TrainConfig.norm, "--label-smoothing"])
    assert (config.lr, config.norm, config.label_smoothing) == (2e-4, "batch", True)
    assert config.instance_noise == 0.0  # what was not given is the preset's
    # the same from Python, and a config rebuilt from its saved fields keeps them
    assert TrainConfig(preset="collapse", lr=2e-4).lr == 2e-4
    saved = dataclasses.asdict(config)
    assert dataclasses.asdict(TrainConfig(**saved)) == saved


def test_wgan_gp_at_100x_the_learning_rate_runs_its_critic_away(sqlite_only, api, tmp_path):
    """A WGAN-GP run is declared as one (the server judges it by WGAN's signs, not BCE's),
    logs its gradient penalty, and the runaway critic is what ganwatch alerts on."""
    run_id = run_preset(sqlite_only, tmp_path, "wgan-gp-diverge", 600)
    run = api.get(f"/api/v1/runs/{run_id}").json()
    assert (run["loss"], run["loss_source"]) == ("wgan-gp", "declared")
    assert "gp" in run["series_keys"]
    d_loss = [v for v in series(api, run_id, "d_loss", max_points=1000)["values"]
              if isinstance(v, float)]
    assert max(abs(v) for v in d_loss) > 100  # the blow-up the preset documents
    alerts = api.get("/api/v1/alerts", params={"run_id": run_id}).json()["data"]
    fired = {a["rule"] for a in alerts if a["fired_step"] is not None}
    assert "critic_runaway" in fired
    assert not fired & {"d_loss_zero", "d_loss_variance", "d_loss_spikes", "d_overpowering"}
