"""Loss families and vocabularies, through the real ingest path and rules engine (an SQLite
file per test): a healthy WGAN-GP run is quiet, one that blows up is caught, a trainer's own
metric names get the same verdicts as ganwatch's, and a run the rules cannot read says so."""

from __future__ import annotations

import random

import pytest

from monitor.rules import RULES, families, vocabulary
from monitor.rules.evaluate import applies
from monitor.rules.library import POINT_RULES
from tests.support.rules_harness import Store

GAN_RULES = [r for r in POINT_RULES if r != "non_finite"]  # non_finite reads any series


@pytest.fixture
def db(tmp_path):
    s = Store(tmp_path / "rules.db")
    yield s
    s.close()


def wgan_gp(n: int, seed: int = 0, blow_up_at: int | None = None) -> dict[str, list[float]]:
    """A WGAN-GP run logging only the critic's loss, G's loss and the critic's mean scores (and
    the client's gradient norms), shaped like a healthy run on digits: the critic loss falls
    from -0.5 to about -4 in the first 60 steps and stays there, D(x) about 4-5, D(G(z)) about
    0.4, gradient norms 3-10. From ``blow_up_at`` on (a learning rate 100x too high), the
    critic's loss and scores and the gradient norms grow geometrically."""
    rng = random.Random(seed)
    out: dict[str, list[float]] = {k: [] for k in ("d_loss", "g_loss", "d_real", "d_fake",
                                                   "grad_norm/G", "grad_norm/D")}
    for i in range(n):
        level = -0.5 - 3.5 * min(1.0, i / 60)
        grow = 1.0 if blow_up_at is None or i < blow_up_at else 1.08 ** (i - blow_up_at)
        out["d_loss"].append(level * grow + rng.gauss(0, 0.5))
        out["d_real"].append(4.5 * grow + rng.gauss(0, 0.4))
        out["d_fake"].append(0.4 + rng.gauss(0, 0.3))
        out["g_loss"].append(-out["d_fake"][-1])
        norm = 1.0 if blow_up_at is None or i < blow_up_at else 1.15 ** (i - blow_up_at)
        out["grad_norm/G"].append(rng.uniform(3, 10) * norm)
        out["grad_norm/D"].append(rng.uniform(3, 10) * norm)
    return out


@pytest.mark.parametrize("declared", [{"loss": "wgan-gp"}, {}], ids=["declared", "inferred"])
def test_a_healthy_wgan_gp_run_raises_nothing_in_600_steps(db, declared):
    for seed in range(3):
        run = db.run(**declared)
        db.feed(run, wgan_gp(600, seed))
        assert db.notes(run) == []
        assert db.family(run) == (("wgan-gp", "declared") if declared else ("wgan", "inferred"))
        coverage = db.coverage(run)
        assert coverage["critic_runaway"]["watching"]
        assert not coverage["d_loss_zero"]["applies"]  # a BCE sign means nothing here


@pytest.mark.parametrize("declared", [{"loss": "wgan-gp"}, {}], ids=["declared", "inferred"])
def test_a_wgan_gp_critic_that_blows_up_is_caught_within_150_steps(db, declared):
    run = db.run(**declared)
    series = wgan_gp(600, seed=1, blow_up_at=300)
    passes_100 = next(i for i, v in enumerate(series["d_loss"]) if v < -100)
    passes_1e4 = next(i for i, v in enumerate(series["grad_norm/G"]) if v > 1e4)
    assert passes_100 < 360 and passes_1e4 < 370  # the run the issue describes
    db.feed(run, series)
    fired = {n.rule: n.step for n in db.notes(run) if n.kind == "firing"}
    assert "critic_runaway" in fired and "exploding_gradients" in fired
    assert min(fired.values()) - 300 <= 150
    assert fired["critic_runaway"] - 300 <= 150
    assert not {"d_loss_zero", "d_loss_variance", "d_loss_spikes"} & set(fired)


def d_wins(n: int = 800) -> dict[str, list[float]]:
    """D wins outright from step 200: its loss to ~0, D(x) to 1, D(G(z)) to 0."""
    rng = random.Random(4)
    return {
        "d_loss": [1.2 + rng.gauss(0, 0.05) if i < 200 else 1e-4 for i in range(n)],
        "g_loss": [1.5 + rng.gauss(0, 0.05) if i < 200 else 9.0 for i in range(n)],
        "d_real": [0.6 if i < 200 else 0.999 for i in range(n)],
        "d_fake": [0.4 if i < 200 else 0.001 for i in range(n)],
    }


DCGAN_EXAMPLE = {"d_loss": "Loss_D", "g_loss": "Loss_G", "d_real": "D(x)", "d_fake": "D(G(z))"}
STYLEGAN = {"d_loss": "Loss/D/loss", "g_loss": "Loss/G/loss", "d_real": "Loss/scores/real",
            "d_fake": "Loss/scores/fake"}
LIGHTNING_STEPS = {"d_loss": "d_loss_step", "g_loss": "g_loss_step", "d_real": "train/d_real",
                   "d_fake": "train/d_fake"}
SPELLINGS = {"d_loss": "errD", "g_loss": "errG", "d_real": "D_x", "d_fake": "D_G_z1"}


@pytest.mark.parametrize("names", [DCGAN_EXAMPLE, STYLEGAN, LIGHTNING_STEPS, SPELLINGS],
                         ids=["dcgan-example", "stylegan", "lightning", "errD"])
def test_a_d_wins_run_under_a_trainers_own_names_gets_the_same_alerts(db, names):
    ours = db.run()
    db.feed(ours, d_wins())
    theirs = db.run()
    db.feed(theirs, {names[k]: v for k, v in d_wins().items()})
    expected = [(n.rule, n.kind, n.step, n.severity) for n in db.notes(ours)]
    assert {r for r, kind, _, _ in expected if kind == "firing"} >= {"d_loss_zero",
                                                                     "d_overpowering"}
    assert [(n.rule, n.kind, n.step, n.severity) for n in db.notes(theirs)] == expected
    coverage = db.coverage(theirs)
    assert coverage["d_loss_zero"]["watching"] and coverage["d_overpowering"]["watching"]


def test_declared_keys_map_names_no_alias_knows(db):
    ours = db.run()
    db.feed(ours, d_wins())
    theirs = db.run(keys={"d_loss": "disc/total", "d_real": "p_real", "d_fake": "p_fake",
                          "g_loss": "gen/total"})
    renamed = {"d_loss": "disc/total", "d_real": "p_real", "d_fake": "p_fake",
               "g_loss": "gen/total"}
    db.feed(theirs, {renamed[k]: v for k, v in d_wins().items()})
    assert [(n.rule, n.kind, n.step) for n in db.notes(theirs)] == [
        (n.rule, n.kind, n.step) for n in db.notes(ours)]


def test_a_run_logging_only_unknown_names_shows_every_gan_rule_not_watching(db):
    run = db.run()
    rng = random.Random(0)
    db.feed(run, {"foo": [rng.random() for _ in range(300)],
                  "metrics/bar": [rng.random() * 1e-4 for _ in range(300)]})
    coverage = db.coverage(run)
    for rule in GAN_RULES:
        if coverage[rule]["applies"]:
            assert coverage[rule]["watching"] is False and coverage[rule]["missing"], rule
    assert coverage["d_loss_zero"]["missing"] == ["d_loss"]
    assert coverage["d_overpowering"]["missing"] == ["d_real", "d_fake"]
    assert coverage["non_finite"]["watching"]  # it reads whatever is logged
    assert db.notes(run) == []  # quiet, and not a false all-clear: nothing watches


def test_a_healthy_bce_run_under_the_dcgan_example_names_watches_everything_it_can(db):
    run = db.run()
    db.feed(run, {DCGAN_EXAMPLE[k]: v for k, v in {
        "d_loss": [1.2] * 300, "g_loss": [1.5] * 300, "d_real": [0.6] * 300,
        "d_fake": [0.4] * 300}.items()})
    coverage = db.coverage(run)
    watching = {r for r in GAN_RULES if coverage[r]["watching"]}
    assert {"d_loss_zero", "d_loss_variance", "d_loss_spikes", "g_fooling_d",
            "d_overpowering"} <= watching
    assert coverage["vanishing_g_gradient"]["missing"] == ["grad_norm/G"]
    assert db.family(run) == ("bce", "default")


# -- each family's own signs ------------------------------------------------------------------

def test_hinge_margins_met_with_g_gradients_gone_is_d_overpowering(db):
    run = db.run(loss="hinge")
    n = 500
    db.feed(run, {"d_loss": [0.8] * 100 + [0.0] * (n - 100),
                  "d_real": [0.5] * 100 + [2.5] * (n - 100),
                  "d_fake": [-0.5] * 100 + [-2.5] * (n - 100),
                  "grad_norm/G": [2.0] * 100 + [1e-6] * (n - 100)})
    fired = {n.rule for n in db.notes(run) if n.kind == "firing"}
    assert {"d_overpowering", "vanishing_g_gradient", "d_loss_zero"} <= fired
    alert = next(a for a in db.alerts(run) if a.rule == "d_overpowering")
    assert alert.evidence["scores"] == "raw" and alert.threshold == -1.0


def test_hinge_margins_met_while_g_still_learns_are_not_overpowering(db):
    # healthy hinge training on digits (bench/RESULTS.md): D(x) ~1.5, D(G(z)) ~-1.6, G's
    # gradient norm 12-20: the margins are met, but G's loss -D(G(z)) still has its gradient
    run = db.run(loss="hinge")
    rng = random.Random(4)
    db.feed(run, {"d_loss": [2.7 + rng.gauss(0, 0.1) for _ in range(500)],
                  "d_real": [1.5 + rng.gauss(0, 0.3) for _ in range(500)],
                  "d_fake": [-1.6 + rng.gauss(0, 0.3) for _ in range(500)],
                  "grad_norm/G": [rng.uniform(12, 20) for _ in range(500)]})
    assert db.notes(run) == []
    assert db.coverage(run)["d_overpowering"]["watching"]


def test_hinge_overpowering_needs_gs_gradient_and_says_so(db):
    run = db.run(loss="hinge")
    db.feed(run, {"d_real": [2.5] * 300, "d_fake": [-2.5] * 300})
    assert db.notes(run) == []
    assert db.coverage(run)["d_overpowering"]["missing"] == ["grad_norm/G"]
    bce = db.run()
    db.feed(bce, {"d_real": [0.99] * 300, "d_fake": [0.01] * 300})
    assert db.coverage(bce)["d_overpowering"]["missing"] == []
    assert "d_overpowering" in {n.rule for n in db.notes(bce) if n.kind == "firing"}


def test_hinge_spikes_must_double_the_median(db):
    # a healthy hinge D loss around 2.8 that swings to 4.2 as scores cross the margins
    hinge, bce = db.run(loss="hinge"), db.run()
    rng = random.Random(5)
    loss = [2.8 + rng.gauss(0, 0.05) + (1.4 if i % 40 == 0 else 0.0) for i in range(600)]
    db.feed(hinge, {"d_loss": loss})
    db.feed(bce, {"d_loss": loss})
    assert "d_loss_spikes" not in {n.rule for n in db.notes(hinge)}
    assert "d_loss_spikes" in {n.rule for n in db.notes(bce) if n.kind == "firing"}


def test_hinge_scores_inside_the_margins_are_not_overpowering(db):
    run = db.run(loss="hinge")
    rng = random.Random(2)
    db.feed(run, {"d_loss": [1.0 + rng.gauss(0, 0.1) for _ in range(500)],
                  "d_real": [0.9 + rng.gauss(0, 0.1) for _ in range(500)],
                  "d_fake": [-0.9 + rng.gauss(0, 0.1) for _ in range(500)]})
    assert db.notes(run) == []


def test_stylegan_logits_are_read_as_probabilities_after_a_sigmoid(db):
    healthy, winning = db.run(loss="r1"), db.run(loss="r1")
    rng = random.Random(3)
    db.feed(healthy, {"Loss/scores/real": [0.8 + rng.gauss(0, 0.5) for _ in range(400)],
                      "Loss/scores/fake": [-0.8 + rng.gauss(0, 0.5) for _ in range(400)]})
    db.feed(winning, {"Loss/scores/real": [0.8] * 100 + [6.0] * 300,
                      "Loss/scores/fake": [-0.8] * 100 + [-6.0] * 300})
    assert db.notes(healthy) == []
    assert {n.rule for n in db.notes(winning) if n.kind == "firing"} == {"d_overpowering"}


def test_an_exploding_r1_penalty_is_caught_and_names_its_key(db):
    run = db.run()
    db.feed(run, {"Loss/D/loss": [0.6] * 500, "Loss/r1_penalty": [0.05] * 200 + [5e3] * 300})
    assert db.family(run) == ("r1", "inferred")
    [alert] = [a for a in db.alerts(run) if a.rule == "penalty_runaway"]
    assert alert.subject == "r1" and alert.severity == "critical"
    assert alert.evidence["key"] == "Loss/r1_penalty"


def test_lsgan_uses_its_own_variance_scale(db):
    lsgan, bce = db.run(loss="lsgan"), db.run()
    rng = random.Random(7)
    wobbly = [0.5 + rng.gauss(0, 0.35) for _ in range(600)]  # stdev 0.35: past LSGAN's 0.25
    db.feed(lsgan, {"d_loss": wobbly})
    db.feed(bce, {"d_loss": wobbly})
    assert "d_loss_variance" in {n.rule for n in db.notes(lsgan) if n.kind == "firing"}
    assert "d_loss_variance" not in {n.rule for n in db.notes(bce)}


def test_alerts_of_a_bce_rule_clear_once_the_run_turns_out_to_be_a_wgan(db):
    """A run whose first batches looked like BCE (a positive D loss) and whose critic loss
    then goes negative: the rules for BCE stop, and what they raised clears."""
    run = db.run()
    db.feed(run, {"d_loss": [1e-4] * 400 + [-3.0] * 400})
    notes = [(n.rule, n.kind) for n in db.notes(run)]
    assert ("d_loss_zero", "firing") in notes and ("d_loss_zero", "resolved") in notes
    assert db.family(run) == ("wgan", "inferred")


# -- the vocabulary and the families, directly -------------------------------------------------

def test_resolve_prefers_declared_then_exact_then_aliases_then_stripped_names():
    keys = ["Loss_D", "d_loss_epoch", "d_loss_step", "errG", "D(x)", "train/d_fake"]
    assert vocabulary.resolve(keys) == {"d_loss": "Loss_D", "g_loss": "errG", "d_real": "D(x)",
                                        "d_fake": "train/d_fake"}
    assert vocabulary.resolve(["d_loss_epoch", "d_loss_step"])["d_loss"] == "d_loss_step"
    assert vocabulary.resolve(["d_loss", "Loss_D"])["d_loss"] == "d_loss"
    assert vocabulary.resolve(keys, {"d_loss": "mine"})["d_loss"] == "mine"
    assert vocabulary.resolve(["accuracy", "lr"]) == {}
    with pytest.raises(ValueError, match="unknown role"):
        vocabulary.check_declared({"dloss": "x"})


def test_every_family_has_rules_and_the_gradient_rules_watch_all_of_them():
    for family in families.FAMILIES:
        for rule in ("non_finite", "exploding_gradients", "vanishing_g_gradient",
                     "mode_collapse"):
            assert applies(rule, family), (rule, family)
    for family in families.WASSERSTEIN:
        assert applies("critic_runaway", family) and not applies("d_loss_zero", family)
    assert {families.canonical(s) for s in ("NS", "hinge", "WGAN_GP", "stylegan2")} == {
        "bce", "hinge", "wgan-gp", "r1"}
    with pytest.raises(ValueError, match="the families are"):
        families.canonical("cyclegan")
    for name, rule in RULES.items():  # a rule that is not for every family says why
        if rule.families is not None and rule.families != families.ALL:
            assert rule.source, name


def test_lsgan_d_loss_to_zero_is_on_its_own_scale(db):
    # a strong LSGAN D, outputs ~0.9 and ~0.1, has a loss of ~0.03: on BCE's scale that is D
    # winning outright, on LSGAN's it is not; outputs pinned at 1 and 0 (loss ~0.001) are
    strong_ls, strong_bce, pinned = db.run(loss="lsgan"), db.run(), db.run(loss="lsgan")
    rng = random.Random(8)
    strong = [abs(0.03 + rng.gauss(0, 0.005)) for _ in range(400)]
    db.feed(strong_ls, {"d_loss": strong})
    db.feed(strong_bce, {"d_loss": strong})
    db.feed(pinned, {"d_loss": [0.25] * 100 + [0.001] * 300})
    assert "d_loss_zero" not in {n.rule for n in db.notes(strong_ls)}
    assert "d_loss_zero" in {n.rule for n in db.notes(strong_bce) if n.kind == "firing"}
    assert "d_loss_zero" in {n.rule for n in db.notes(pinned) if n.kind == "firing"}
