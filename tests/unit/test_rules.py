"""Rules as tables (promtool style): synthetic series in, the notifications a user would get out,
through the real ingest path and rules engine. Cases that must fire and cases that must not."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import pytest

from monitor.ingest import sweep_stalled
from monitor.models import utcnow
from tests.support.rules_harness import Note, Store


@pytest.fixture
def db(tmp_path):
    s = Store(tmp_path / "rules.db")
    yield s
    s.close()


def noisy(n: int, level: float, spread: float, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [level + rng.uniform(-spread, spread) for _ in range(n)]


def healthy(n: int, seed: int = 0) -> dict[str, list[float]]:
    """A healthy run's canonical series: D loss wandering around 1.2, G loss around 1.5,
    D(x) ~0.6, D(G(z)) ~0.4, gradient norms of a few units, diversity ratio near 1."""
    rng = random.Random(seed)
    d = [1.2 + 0.25 * math.sin(i / 150) + rng.gauss(0, 0.1) for i in range(n)]
    g = [1.5 + 0.4 * math.sin(i / 230 + 1) + rng.gauss(0, 0.15) for i in range(n)]
    return {
        "d_loss": d, "g_loss": g,
        "d_real": noisy(n, 0.6, 0.1, seed + 1), "d_fake": noisy(n, 0.4, 0.1, seed + 2),
        "grad_norm/G": noisy(n, 3.0, 1.5, seed + 3), "grad_norm/D": noisy(n, 5.0, 2.0, seed + 4),
        "grad_norm/D/main.0": noisy(n, 2.0, 1.0, seed + 5),
        "diversity/ratio": noisy(n, 1.0, 0.25, seed + 6),
    }


def kinds(notes: list[Note], rule: str) -> list[tuple[str, int]]:
    return [(n.kind, n.step) for n in notes if n.rule == rule]


def test_healthy_runs_raise_nothing(db):
    for seed in range(3):
        run = db.run()
        db.feed(run, healthy(3000, seed))
        assert db.notes(run) == []
        assert db.alerts(run) == []


def test_non_finite_fires_at_once_and_resolves_after_clear_for(db):
    run = db.run()
    series = healthy(600)
    series["d_loss"][300] = math.nan
    series["grad_norm/G"][301] = math.inf
    db.feed(run, series)
    notes = kinds(db.notes(run), "non_finite")
    assert notes[0][0] == "firing" and 300 <= notes[0][1] <= 302  # the first evaluation
    assert notes[1][0] == "resolved" and 401 <= notes[1][1] <= 450
    alert = [a for a in db.alerts(run) if a.rule == "non_finite"][0]
    assert alert.severity == "critical"
    assert "d_loss" in alert.evidence["keys"] and alert.evidence["first_step"] == 300
    assert "#9" in alert.action


@pytest.mark.parametrize(("case", "series_fn", "expect"), [
    # D loss collapses to ~0 at step 400: fires (critical: the mean goes below 0.005)
    ("d-loss-zero", lambda: {"d_loss": [1.0] * 400 + [1e-4] * 600}, "firing"),
    # D loss low but not zero (0.2): must not fire
    ("d-loss-low", lambda: {"d_loss": noisy(1000, 0.2, 0.05)}, None),
])
def test_d_loss_zero(db, case, series_fn, expect):
    run = db.run()
    db.feed(run, series_fn())
    notes = kinds(db.notes(run), "d_loss_zero")
    if expect is None:
        assert notes == []
        return
    kind, step = notes[0]
    assert kind == "firing" and 400 < step <= 400 + 100 + 50 + 50
    alert = [a for a in db.alerts(run) if a.rule == "d_loss_zero"][0]
    assert alert.severity == "critical" and alert.value < 0.05
    assert "#6" in alert.action and "#13" in alert.action


def test_exploding_gradients_per_layer_but_not_for_one_spike(db):
    run = db.run()
    n = 600
    conv = noisy(n, 2.0, 1.0)
    conv[100] = 1e4  # a single spike: the median over 50 steps ignores it
    blowup = noisy(300, 2.0, 1.0) + noisy(300, 500.0, 100.0)
    db.feed(run, {"grad_norm/D/conv1": conv, "grad_norm/G/deconv2": blowup,
                  "grad_norm/G": blowup})
    notes = db.notes(run)
    subjects = {n.subject for n in notes if n.rule == "exploding_gradients"}
    assert subjects == {"grad_norm/G/deconv2", "grad_norm/G"}
    firing = [n for n in notes if n.rule == "exploding_gradients" and n.kind == "firing"]
    # the median over 50 steps crosses 100 ~25 steps in, then it must hold 50 steps
    assert all(300 + 50 < n.step <= 300 + 25 + 50 + 20 for n in firing)


def test_unstable_d_variance_and_spikes(db):
    calm, stormy, spiky, one_spike = db.run(), db.run(), db.run(), db.run()
    db.feed(calm, {"d_loss": noisy(1000, 1.0, 0.3)})
    db.feed(stormy, {"d_loss": noisy(400, 1.0, 0.1) + noisy(600, 2.0, 2.0, seed=3)})
    spikes = noisy(1000, 1.0, 0.1)
    for i in (500, 540, 580, 620):
        spikes[i] = 6.0
    single = noisy(1000, 1.0, 0.1)
    single[500] = 6.0
    db.feed(spiky, {"d_loss": spikes})
    db.feed(one_spike, {"d_loss": single})
    assert db.notes(calm) == [] and db.notes(one_spike) == []
    assert ("firing", "d_loss_variance") in {(n.kind, n.rule) for n in db.notes(stormy)}
    spike_notes = kinds(db.notes(spiky), "d_loss_spikes")
    assert spike_notes and spike_notes[0][0] == "firing" and 580 <= spike_notes[0][1] <= 650


def test_g_fooling_d(db):
    fooled, wandering = db.run(), db.run()
    n = 2000
    g = [3.0] * 1000 + [3.0 - 2.0 * i / 1500 for i in range(1500)]
    d = [0.6] * 1000 + [0.6 + 0.3 * i / 1500 for i in range(1500)]
    f = [0.3] * 1000 + [0.3 + 0.4 * i / 1500 for i in range(1500)]
    db.feed(fooled, {"g_loss": g, "d_loss": d, "d_fake": f})
    db.feed(wandering, {k: v for k, v in healthy(n).items()
                        if k in ("g_loss", "d_loss", "d_fake")})
    notes = kinds(db.notes(fooled), "g_fooling_d")
    assert notes and notes[0][0] == "firing" and 1000 < notes[0][1] < 2500
    assert db.notes(wandering) == []


def test_mode_collapse_fires_when_diversity_stays_low_not_for_noise(db):
    collapsing, noisy_run = db.run(), db.run()
    ratio = noisy(1000, 1.0, 0.2) + noisy(1000, 0.1, 0.05, seed=1) + noisy(600, 1.0, 0.2)
    db.feed(collapsing, {"diversity/ratio": ratio})
    jittery = noisy(2000, 1.0, 0.3)
    for i in range(300, 2000, 97):  # occasional single low readings
        jittery[i] = 0.05
    db.feed(noisy_run, {"diversity/ratio": jittery})
    notes = kinds(db.notes(collapsing), "mode_collapse")
    assert [k for k, _ in notes] == ["firing", "resolved"]
    assert 1000 < notes[0][1] <= 1000 + 100 + 100 + 50  # within the window + for of the onset
    assert notes[1][1] > 2000
    assert db.notes(noisy_run) == []
    alert = db.alerts(collapsing)[0]
    assert alert.severity == "critical" and alert.status == "resolved"
    assert "#15" in alert.action


def test_d_overpowering_and_vanishing_g_gradient(db):
    run = db.run()
    n = 600
    db.feed(run, {"d_real": [0.6] * 100 + [0.999] * (n - 100),
                  "d_fake": [0.4] * 100 + [0.001] * (n - 100),
                  "grad_norm/G": [2.0] * 100 + [1e-6] * (n - 100)})
    rules = {n.rule for n in db.notes(run) if n.kind == "firing"}
    assert rules == {"d_overpowering", "vanishing_g_gradient"}


def test_stalled_run_fires_on_the_clock_and_resolves_on_new_points(db):
    run = db.run(checkin_interval=5)
    db.feed(run, {"d_loss": [1.0] * 10})
    with db.sessions() as session:
        assert sweep_stalled(session, now=utcnow() + timedelta(seconds=30)) == 0  # 5 + 60 grace
        assert sweep_stalled(session, now=utcnow() + timedelta(seconds=70)) == 1
        assert sweep_stalled(session, now=utcnow() + timedelta(seconds=80)) == 0  # once
    db.feed(run, {"d_loss": [1.0] * 5}, start=10)
    assert kinds(db.notes(run), "stalled") == [("firing", 9), ("resolved", 10)]
    alert = db.alerts(run)[0]
    assert alert.evidence["silent_for_s"] >= 65 and alert.status == "resolved"
