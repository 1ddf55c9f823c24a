"""The "track failures early" rules: one pure function per failure sign of the GAN folklore.

Each reads roles (``d_loss``, ``g_loss``, ``d_real``, ``d_fake``, the penalties: whichever key
plays them, see ``vocabulary``) and the client's own series (``grad_norm/G``,
``grad_norm/D/<layer>``, ``diversity/ratio``...) over a trailing window, and returns a Finding
while its condition holds. Each declares the loss families it applies to; ``FAMILY_PARAMS``
holds the thresholds that differ by family. Defaults live here, in one place; a run overrides
them with ``trainer_client.init(rules=...)`` or ``PATCH /api/v1/runs/{id}/rules``.
"""

from __future__ import annotations

import bisect
import math

from monitor.encoding import json_number
from monitor.rules import families
from monitor.rules.core import (
    LEVEL,
    SCORE,
    SECONDS,
    SHARE,
    WINDOW,
    Finding,
    Rule,
    Window,
    correlation,
    finite,
    fmt,
    mean,
    median,
    stdev,
)

# Rules muted while a run's non-finite alert is firing: once a loss is NaN, its "variance" and
# "spikes" say nothing new (Alertmanager's inhibition).
INHIBITED_BY_NON_FINITE = ("d_loss_variance", "d_loss_spikes")


def _enough(values: list[float], span: int, share: float = 0.5) -> bool:
    """A window is judged only when it holds at least ``share`` of its span (at least 3 points)."""
    return len(values) >= max(3, int(share * min(span, 50)))


def _tail(values: list[float], n: int = 5) -> list:
    return [json_number(v) for v in values[-n:]]


def _level(w: Window, key: str, span: int, stat, share: float = 0.5):
    """(steps, finite values, stat(values)) of a key over the last ``span`` steps, or None
    while the window holds too few points to judge."""
    steps, values = w.last(key, span)
    values = finite(values)
    if not _enough(values, span, share):
        return None
    return steps, values, stat(values)


def _level_evidence(key: str, name: str, m: float, steps: list[int], values: list) -> dict:
    return {"key": key, name: m, "from_step": steps[0], "to_step": steps[-1],
            "last_values": _tail(values)}


def non_finite(w: Window, p: dict) -> Finding | None:
    bad = []
    first = None
    start = min(w.previous_step, w.step - p["window"])
    for key in w.keys():
        view = w.series[key]
        i = bisect.bisect_right(view.steps, start)
        for step, value in zip(view.steps[i:], view.values[i:]):
            if step <= w.step and not math.isfinite(value):
                bad.append(key)
                first = step if first is None else min(first, step)
                break
    if not bad:
        return None
    shown = ", ".join(bad[:8]) + (f" and {len(bad) - 8} more" if len(bad) > 8 else "")
    return Finding(
        message=f"non-finite values (NaN/Inf) in {shown} from step {first}",
        value=math.nan, threshold=math.nan,
        evidence={"keys": bad, "first_step": first, "step": w.step})


def d_loss_zero(w: Window, p: dict) -> Finding | None:
    level = _level(w, p["key"], p["window"], mean)
    if level is None or level[2] >= p["threshold"]:
        return None
    steps, values, m = level
    return Finding(
        message=f"D loss averaged {fmt(m)} over steps {steps[0]}-{steps[-1]} "
                f"(threshold {fmt(p['threshold'])}): D wins outright and G learns nothing",
        value=m, threshold=p["threshold"],
        evidence=_level_evidence(p["key"], "mean", m, steps, values),
        severity="critical" if m < p["critical"] else None)


def _grad_subjects(w: Window) -> list[str]:
    return [k for k in w.keys("grad_norm/") if k.count("/") >= 1]


def exploding_gradients(w: Window, p: dict) -> Finding | None:
    key = w.subject
    level = _level(w, key, p["window"], median, 0.3)
    if level is None or level[2] <= p["threshold"]:
        return None
    steps, values, m = level
    what = key.removeprefix("grad_norm/")
    return Finding(
        message=f"gradient norm of {what} has a median of {fmt(m)} over steps "
                f"{steps[0]}-{steps[-1]} (threshold {fmt(p['threshold'])})",
        value=m, threshold=p["threshold"],
        evidence={"key": key, "median": m, "max": max(values), "from_step": steps[0],
                  "to_step": steps[-1], "last_values": _tail(values)},
        severity="critical" if m > p["critical"] else None)


def d_loss_variance(w: Window, p: dict) -> Finding | None:
    steps, values = w.last(p["key"], p["window"])
    values = finite(values)
    if not _enough(values, p["window"]):
        return None
    s = stdev(values)
    if s <= p["threshold"]:
        return None
    return Finding(
        message=f"D loss is unstable: standard deviation {fmt(s)} over steps "
                f"{steps[0]}-{steps[-1]} (threshold {fmt(p['threshold'])}, mean "
                f"{fmt(mean(values))})",
        value=s, threshold=p["threshold"],
        evidence={"key": p["key"], "stdev": s, "mean": mean(values), "from_step": steps[0],
                  "to_step": steps[-1]})


def d_loss_spikes(w: Window, p: dict) -> Finding | None:
    steps, values = w.last(p["key"], p["window"])
    pairs = [(s, v) for s, v in zip(steps, values) if math.isfinite(v)]
    if not _enough([v for _, v in pairs], p["window"]):
        return None
    vals = [v for _, v in pairs]
    med = median(vals)
    mad = median([abs(v - med) for v in vals])
    jump = max(p["k"] * 1.4826 * mad, p["min_jump"], p["min_ratio"] * abs(med))
    # an excursion over consecutive logged points is one spike (at its highest point)
    spikes: list[tuple[int, float]] = []
    previous = -2
    for i, (s, v) in enumerate(pairs):
        if v - med <= jump:
            continue
        if i == previous + 1 and spikes:
            spikes[-1] = max(spikes[-1], (s, v), key=lambda x: x[1])
        else:
            spikes.append((s, v))
        previous = i
    if len(spikes) < p["min_spikes"]:
        return None
    return Finding(
        message=f"D loss spiked {len(spikes)} times in steps {steps[0]}-{steps[-1]} (more "
                f"than {fmt(jump)} above its median {fmt(med)})",
        value=len(spikes), threshold=p["min_spikes"],
        evidence={"key": p["key"], "median": med, "jump": jump,
                  "spike_steps": [s for s, _ in spikes[-10:]],
                  "spike_values": [v for _, v in spikes[-10:]]})


def _quarters(steps: list[int], values: list[float]) -> tuple[list, float, float]:
    pairs = [(s, v) for s, v in zip(steps, values) if math.isfinite(v)]
    q = max(1, len(pairs) // 4)
    return pairs, mean([v for _, v in pairs[:q]]), mean([v for _, v in pairs[-q:]])


def g_fooling_d(w: Window, p: dict) -> Finding | None:
    g, g_first, g_last = _quarters(*w.last(p["g_key"], p["window"]))
    d, d_first, d_last = _quarters(*w.last(p["d_key"], p["window"]))
    f, f_first, f_last = _quarters(*w.last(p["fake_key"], p["window"]))
    enough = max(20, p["window"] // 10)
    if len(g) < enough or len(d) < enough:
        return None
    r = correlation([float(s) for s, _ in g], [v for _, v in g])
    drop = (g_first - g_last) / max(abs(g_first), 1e-8)
    # "fooling D": D's loss does not fall and, when D(G(z)) is logged, D scores fakes higher
    fooled = d_last >= d_first and (len(f) < enough or f_last - f_first >= p["min_fake_rise"])
    if not (r <= -p["min_correlation"] and drop >= p["min_drop"] and fooled):
        return None
    evidence = {"g_first": g_first, "g_last": g_last, "correlation": r, "d_first": d_first,
                "d_last": d_last, "from_step": g[0][0], "to_step": g[-1][0]}
    if len(f) >= enough:
        evidence.update(d_fake_first=f_first, d_fake_last=f_last)
    return Finding(
        message=f"G loss fell steadily from {fmt(g_first)} to {fmt(g_last)} (r = {r:.2f}) over "
                f"steps {g[0][0]}-{g[-1][0]} while D loss did not fall ({fmt(d_first)} -> "
                f"{fmt(d_last)}): G may be fooling D with garbage",
        value=drop, threshold=p["min_drop"], evidence=evidence)


def mode_collapse(w: Window, p: dict) -> Finding | None:
    level = _level(w, p["key"], p["window"], median, 0.2)
    if level is None or level[2] >= p["threshold"]:
        return None
    steps, values, m = level
    return Finding(
        message=f"sample diversity fell to {fmt(m)} of the real data's (median over steps "
                f"{steps[0]}-{steps[-1]}, threshold {fmt(p['threshold'])}): G is collapsing "
                f"onto a few modes",
        value=m, threshold=p["threshold"],
        evidence=_level_evidence(p["key"], "median", m, steps, values),
        severity="critical" if m < p["critical"] else None)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def d_overpowering(w: Window, p: dict) -> Finding | None:
    rs, rv = w.last(p["real_key"], p["window"])
    fs, fv = w.last(p["fake_key"], p["window"])
    rv, fv = finite(rv), finite(fv)
    if not (_enough(rv, p["window"]) and _enough(fv, p["window"])):
        return None
    scores = p["scores"]
    if scores == "auto":  # probabilities stay in [0, 1]; anything outside is a logit
        scores = "probabilities" if all(0.0 <= v <= 1.0 for v in rv + fv) else "logits"
    if scores == "logits":  # thresholds are probabilities: compare D's, not its logits
        rv, fv = [_sigmoid(v) for v in rv], [_sigmoid(v) for v in fv]
    real, fake = mean(rv), mean(fv)
    if not (real > p["real_above"] and fake < p["fake_below"]):
        return None
    evidence = {"d_real": real, "d_fake": fake, "scores": scores, "from_step": rs[0],
                "to_step": rs[-1]}
    message = (f"D overpowers G: D(x) averaged {fmt(real)} and D(G(z)) {fmt(fake)} over steps "
               f"{rs[0]}-{rs[-1]} (thresholds {fmt(p['real_above'])} / "
               f"{fmt(p['fake_below'])})")
    if p["g_grad_below"] > 0:  # margins met matter only once G's gradient is gone too
        level = _level(w, p["g_grad_key"], p["window"], median)
        if level is None or not level[2] < p["g_grad_below"]:
            return None
        evidence["g_grad_median"] = level[2]
        message += f", and G's median gradient norm is {fmt(level[2])}"
    return Finding(message=message, value=fake, threshold=p["fake_below"], evidence=evidence)


def vanishing_g_gradient(w: Window, p: dict) -> Finding | None:
    level = _level(w, p["key"], p["window"], median)
    if level is None or level[2] >= p["threshold"]:
        return None
    steps, values, m = level
    return Finding(
        message=f"G's gradient is vanishing: median norm {fmt(m)} over steps "
                f"{steps[0]}-{steps[-1]} (threshold {fmt(p['threshold'])})",
        value=m, threshold=p["threshold"],
        evidence=_level_evidence(p["key"], "median", m, steps, values))


def critic_runaway(w: Window, p: dict) -> Finding | None:
    """A Wasserstein critic's estimate or scores growing without bound."""
    worst = None
    for key, limit in ((p["key"], p["threshold"]), (p["real_key"], p["score_threshold"]),
                       (p["fake_key"], p["score_threshold"])):
        level = _level(w, key, p["window"], mean)
        if level is None or abs(level[2]) <= limit:
            continue
        ratio = abs(level[2]) / limit
        if worst is None or ratio > worst[0]:
            worst = (ratio, key, limit, level)
    if worst is None:
        return None
    ratio, key, limit, (steps, values, m) = worst
    return Finding(
        message=f"the critic is running away: {key} averaged {fmt(m)} over steps "
                f"{steps[0]}-{steps[-1]} (threshold +/-{fmt(limit)}); a critic kept 1-Lipschitz "
                "does not drift this far",
        value=abs(m), threshold=limit,
        evidence=_level_evidence(key, "mean", m, steps, values),
        severity="critical" if ratio >= p["critical_ratio"] else None)


def _penalty_subjects(w: Window) -> list[str]:
    return [role for role in ("gp", "r1") if w.get(role) is not None]


def penalty_runaway(w: Window, p: dict) -> Finding | None:
    """A gradient penalty (WGAN-GP) or an R1 penalty exploding."""
    role = w.subject
    level = _level(w, role, p["window"], median)
    if level is None or level[2] <= p["threshold"]:
        return None
    steps, values, m = level
    key = w.roles.get(role, role)
    return Finding(
        message=f"the {'gradient' if role == 'gp' else 'R1'} penalty ({key}) has a median of "
                f"{fmt(m)} over steps {steps[0]}-{steps[-1]} (threshold {fmt(p['threshold'])}): "
                "D's gradients are exploding",
        value=m, threshold=p["threshold"],
        evidence=_level_evidence(key, "median", m, steps, values),
        severity="critical" if m > p["critical"] else None)


def stalled(w: Window, p: dict) -> Finding | None:
    """Holds while no point has arrived for the declared check-in interval plus grace.

    The caller measures the seconds since the run's last point (``w.silent_for``); on ingest
    it is 0, so new points resolve the alert.
    """
    limit = p["checkin_interval"] + p["grace"]
    silent = w.silent_for
    if silent <= limit:
        return None
    return Finding(
        message=f"no points for {silent:.0f} s (the client checks in every "
                f"{fmt(p['checkin_interval'])} s, grace {fmt(p['grace'])} s): the run stopped "
                f"reporting without finishing",
        value=silent, threshold=limit,
        evidence={"silent_for_s": round(silent, 1), "last_step": w.step})


def rule_error(w: Window, p: dict) -> Finding | None:
    """Never holds on a window: evaluation (``monitor.rules.evaluate``) raises it, once per
    rule that failed to evaluate (the subject), with the error, and resolves it when that
    rule evaluates again."""
    return None


RULES: dict[str, Rule] = {r.name: r for r in [
    Rule("non_finite", "Non-finite values", "loss or gradient became NaN/Inf", non_finite,
         {"window": (1, "also look this many steps back (besides the steps since the last "
                        "evaluation)", (0, WINDOW[1])),
          "clear_for": (100, "steps without non-finite values before it resolves"),
          "severity": ("critical", "severity when it fires")},
         "Lower the learning rates (ganhacks #9: Adam at 2e-4, beta1 0.5), make sure inputs are "
         "in [-1, 1] with tanh on G (#1), avoid log(0) with soft labels (#6), and clip or check "
         "the gradients of the layer that went first.", needs=()),
    Rule("d_loss_zero", "D loss to zero", '"D loss goes to 0: failure mode"', d_loss_zero,
         {"key": ("d_loss", "the discriminator's loss series"),
          "window": (100, "steps averaged", WINDOW),
          "threshold": (0.05, "fires when the mean D loss is below this", LEVEL),
          "critical": (0.005, "critical below this", LEVEL),
          "warmup": (100, "steps before the rule is evaluated"),
          "for": (50, "steps the condition must hold")},
         "Make D's job harder: soft and noisy labels (ganhacks #6), instance noise on D's "
         "inputs (#13), fewer D steps or a lower D learning rate (#14), dropout or spectral "
         "norm in D.", inputs=("d_loss",), families=families.ALL - families.WASSERSTEIN,
         source="for hinge, least-squares and logistic losses too: each is 0 only when D "
                "separates real from fake with full confidence (hinge: both margins met, Lim & "
                "Ye 2017; LSGAN: outputs on their targets, Mao et al. 2017). LSGAN's "
                "thresholds are on its own scale (FAMILY_PARAMS): 0.005 is D's outputs "
                "within about 0.07 of both targets, as BCE's 0.05 is D's probabilities "
                "within 0.025 of them; a strong but not pinned LSGAN D (outputs 0.9 and "
                "0.1) is at 0.01-0.05. Not for a WGAN critic, whose loss is a difference of "
                "unbounded scores"),
    Rule("exploding_gradients", "Exploding gradients",
         '"check norms of gradients: if they are over 100 things are screwing up"',
         exploding_gradients,
         {"window": (50, "steps whose median is compared", WINDOW),
          "threshold": (100.0, "fires when the median gradient norm exceeds this", LEVEL),
          "critical": (1000.0, "critical above this", LEVEL),
          "for": (50, "steps the condition must hold (a norm that only brushes 100 is "
                      "not an explosion; a real one ends in NaN, which non_finite catches "
                      "at once)")},
         "Lower the learning rate or clip gradients; prefer Adam (ganhacks #9), normalise inputs "
         "to [-1, 1] (#1), use BatchNorm (#4) or spectral norm in D.",
         subjects=_grad_subjects, inputs=("grad_norm/",)),
    Rule("d_loss_variance", "Unstable D (variance)",
         '"D loss has low variance and goes down over time vs having huge variance and '
         'spiking"', d_loss_variance,
         {"key": ("d_loss", "the discriminator's loss series"),
          "window": (200, "steps in the rolling window", WINDOW),
          "threshold": (0.5, "fires when D loss's standard deviation exceeds this", LEVEL),
          "warmup": (200, "steps before the rule is evaluated"),
          "for": (100, "steps the condition must hold")},
         "Stabilise D: a lower D learning rate, label smoothing (ganhacks #6), instance noise "
         "(#13), experience replay of old fakes (#8).", inputs=("d_loss",),
         families=families.ALL - families.WASSERSTEIN,
         source="the threshold is on the BCE loss's scale; least-squares losses are a quarter "
                "of it at equilibrium (FAMILY_PARAMS). A WGAN critic's loss has no fixed scale"),
    Rule("d_loss_spikes", "Unstable D (spikes)",
         '"D loss ... having huge variance and spiking"', d_loss_spikes,
         {"key": ("d_loss", "the discriminator's loss series"),
          "window": (200, "steps in the rolling window", WINDOW),
          "k": (8.0, "a spike is more than k robust standard deviations above the median", LEVEL),
          "min_jump": (0.5, "... and at least this much above it", LEVEL),
          "min_ratio": (0.5, "... and at least this share of the median above it", LEVEL),
          "min_spikes": (3, "fires with at least this many spikes in the window", (1, 10_000)),
          "warmup": (200, "steps before the rule is evaluated"),
          "for": (20, "steps the condition must hold")},
         "Look at the steps of the spikes: a lower learning rate, label smoothing (ganhacks #6), "
         "instance noise (#13) and replaying old fakes (#8) calm D down.", inputs=("d_loss",),
         families=families.ALL - families.WASSERSTEIN,
         source="not for a WGAN critic: its loss moves with its unbounded scores; runaways are "
                "critic_runaway's. Hinge: a spike must double the median (FAMILY_PARAMS): the "
                "hinge loss is linear in D's scores, and healthy hinge runs swing by half "
                "their median as scores cross the margins (bench/RESULTS.md)"),
    Rule("g_fooling_d", "G fooling D with garbage",
         '"if loss of generator steadily decreases, then it\'s fooling D with garbage"',
         g_fooling_d,
         {"g_key": ("g_loss", "the generator's loss series"),
          "d_key": ("d_loss", "the discriminator's loss series"),
          "fake_key": ("d_fake", "mean D(G(z)); used when logged"),
          "window": (1000, "steps in the trend window", WINDOW),
          "min_fake_rise": (0.1, "rise of mean D(G(z)) (first vs last quarter) needed", SHARE),
          "min_correlation": (0.8, "|r| of G loss against step needed to call it steady", SHARE),
          "min_drop": (0.3, "relative fall of G loss (first vs last quarter) needed", LEVEL),
          "warmup": (1000, "steps before the rule is evaluated"),
          "for": (100, "steps the condition must hold")},
         "Look at the samples: if they are garbage, D is too weak or too slow; give D more "
         "capacity or steps (#14), try feature matching or minibatch discrimination (#15).",
         inputs=("g_loss", "d_loss", "d_fake"), needs=(("g_loss",), ("d_loss",)),
         families=families.ALL - families.WASSERSTEIN,
         source="not for WGAN: G's loss there is minus the critic's score on fakes, which "
                "drifts with the critic's scale"),
    Rule("mode_collapse", "Mode collapse", "the classic GAN failure: every sample alike",
         mode_collapse,
         {"key": ("diversity/ratio", "fake/real batch diversity ratio"),
          "window": (100, "steps whose median is compared", WINDOW),
          "threshold": (0.75, "fires when the median ratio is below this (healthy runs of "
                              "the reference trainer: ~1.0 on ring8, ~0.8 on digits; ring8 "
                              "collapsed onto 4 of 8 modes: ~0.63)", LEVEL),
          "critical": (0.2, "critical below this", LEVEL),
          "warmup": (200, "steps before the rule is evaluated"),
          "for": (100, "steps the condition must hold"),
          "clear_for": (100, "steps above the threshold before it resolves")},
         "Minibatch discrimination (ganhacks #15), experience replay of old fakes and old "
         "checkpoints (#8), label smoothing (#6), or unrolled/packed discriminators; check the "
         "sample grids at the alert's steps.", inputs=("diversity/ratio",)),
    Rule("d_overpowering", "D overpowering G", "D(x) -> 1 and D(G(z)) -> 0", d_overpowering,
         {"real_key": ("d_real", "mean D(x) series"),
          "fake_key": ("d_fake", "mean D(G(z)) series"),
          "window": (50, "steps averaged", WINDOW),
          "real_above": (0.95, "D(x) above this ...", SCORE),
          "fake_below": (0.05, "... and D(G(z)) below this", SCORE),
          "scores": ("auto", "D's outputs: probabilities, logits (compared after a sigmoid), "
                             "raw (compared as they are), or auto (probabilities while every "
                             "value is in [0, 1], logits otherwise)"),
          "g_grad_key": ("grad_norm/G", "G's total gradient norm; read when g_grad_below is "
                                        "set"),
          "g_grad_below": (0.0, "when above 0, D overpowers G only while G's median gradient "
                                "norm is below this too (0: scores alone)", (0.0, 1e6)),
          "warmup": (50, "steps before the rule is evaluated"),
          "for": (50, "steps the condition must hold")},
         "Use the non-saturating G loss (ganhacks #2), soft and noisy labels (#6), instance "
         "noise (#13), and train D less (#14) or with a lower learning rate.",
         inputs=("d_real", "d_fake", "grad_norm/G"), needs=(("d_real",), ("d_fake",)),
         needs_when=(("g_grad_below", "grad_norm/G"),),
         families=frozenset({"bce", "hinge", "lsgan", "r1"}),
         source="BCE and R1 (StyleGAN's logistic loss): D's probabilities, a sigmoid applied to "
                "logits; hinge: both margins met, D(x) >= 1 and D(G(z)) <= -1, while G's "
                "gradient vanishes (Lim & Ye 2017, Miyato et al. 2018; margins met alone are "
                "common in healthy hinge training, whose G loss -D(G(z)) keeps its gradient: "
                "measured in bench/RESULTS.md); LSGAN: D's "
                "outputs pinned at their targets 1 and 0 (Mao et al. 2017). Not for WGAN, "
                "whose scores are unbounded"),
    Rule("vanishing_g_gradient", "Vanishing G gradient", "G gradient norm -> 0",
         vanishing_g_gradient,
         {"key": ("grad_norm/G", "G's total gradient norm"),
          "window": (50, "steps whose median is compared", WINDOW),
          "threshold": (1e-3, "fires when the median norm is below this", LEVEL),
          "warmup": (50, "steps before the rule is evaluated"),
          "for": (50, "steps the condition must hold")},
         "G gets no signal from a saturated D: switch to the non-saturating loss (ganhacks #2), "
         "add label smoothing (#6) and instance noise (#13), slow D down (#14).",
         inputs=("grad_norm/G",)),
    Rule("critic_runaway", "Critic running away",
         '"the critic\'s loss or scores growing without bound"', critic_runaway,
         {"key": ("d_loss", "the critic's loss series"),
          "real_key": ("d_real", "the critic's mean score on real data"),
          "fake_key": ("d_fake", "the critic's mean score on generated data"),
          "window": (50, "steps averaged", WINDOW),
          "threshold": (100.0, "fires when the critic loss's mean is beyond +/- this (healthy "
                               "WGAN-GP on small images: -1 to -10)", LEVEL),
          "score_threshold": (1000.0, "... or a mean score beyond +/- this", LEVEL),
          "critical_ratio": (10.0, "critical at this many times the threshold", (1, 1e6)),
          "warmup": (20, "steps before the rule is evaluated"),
          "for": (10, "steps the condition must hold")},
         "Lower the critic's learning rate (WGAN-GP: Adam 1e-4, betas (0, 0.9)), check the "
         "gradient penalty is applied on interpolates with weight ~10, or tighten clipping "
         "(WGAN); a critic this far from 1-Lipschitz gives G no useful gradient.",
         inputs=("d_loss", "d_real", "d_fake"), needs=(("d_loss", "d_real", "d_fake"),),
         families=families.WASSERSTEIN,
         source="Arjovsky et al. 2017 (WGAN) and Gulrajani et al. 2017 (WGAN-GP): the critic's "
                "loss estimates the Wasserstein distance and tracks sample quality; an estimate "
                "that diverges means the Lipschitz constraint no longer holds"),
    Rule("penalty_runaway", "Penalty exploding",
         '"the gradient penalty or R1 penalty exploding"', penalty_runaway,
         {"window": (50, "steps whose median is compared", WINDOW),
          "threshold": (50.0, "fires when the penalty's median exceeds this", LEVEL),
          "critical": (1000.0, "critical above this", LEVEL),
          "warmup": (50, "steps before the rule is evaluated"),
          "for": (20, "steps the condition must hold")},
         "D's gradients on (interpolated or real) data are blowing up: lower D's learning rate, "
         "check the penalty's weight (WGAN-GP: 10; R1: gamma per resolution, StyleGAN2-ADA's "
         "heuristic 0.0002 * resolution^2 / batch), and look for a D that overfits (ADA).",
         subjects=_penalty_subjects, inputs=("gp", "r1"), needs=(("gp", "r1"),),
         families=frozenset({"wgan-gp", "r1"}),
         source="Gulrajani et al. 2017 (the gradient penalty); Mescheder et al. 2018, Karras et "
                "al. 2020 (R1): the penalty stays small while D's gradient norm is near its "
                "target; growing by orders of magnitude it means D has become sharp"),
    Rule("stalled", "Stalled run", "a run that stopped reporting without finishing", stalled,
         {"checkin_interval": (60.0, "seconds; the client's declared interval (from the run "
                                     "when it declares one)", SECONDS),
          "grace": (60.0, "seconds of grace on top of the interval", SECONDS),
          "clear_for": (0, "resolves on the next point"),
          "cooldown": (0, "may fire again at once")},
         "Check the training process: is it alive, hung in a data loader or a collective, out "
         "of memory, or killed? Runs that end should call run.finish().", inputs=()),
    Rule("rule_error", "Rule failed to evaluate", "a rule that cannot run watches nothing",
         rule_error,
         {"clear_for": (0, "resolves when the rule evaluates again"),
          "cooldown": (0, "may fire again at once")},
         "The message names the rule and its error: correct the run's settings of that rule "
         "(PATCH /api/v1/runs/{id}/rules, or reset them with null), or silence it; until then "
         "the rule raises no alert of its own.", inputs=()),
]}

# Thresholds that differ by loss family: {family: {rule: {param: value}}}, between a rule's
# defaults and a run's own settings.
FAMILY_PARAMS: dict[str, dict[str, dict]] = {
    "lsgan": {"d_loss_variance": {"threshold": 0.25}, "d_overpowering": {"scores": "raw"},
              "d_loss_zero": {"threshold": 0.005, "critical": 0.0005}},
    "hinge": {"d_overpowering": {"real_above": 1.0, "fake_below": -1.0, "scores": "raw",
                                 "g_grad_below": 1e-3},
              "d_loss_spikes": {"min_ratio": 1.0}},
    "r1": {"d_overpowering": {"scores": "logits"}},
}

# Rules evaluated over points on ingest (stalled is evaluated on a clock instead, rule_error
# raised by the evaluation when another rule fails).
POINT_RULES = tuple(name for name in RULES if name not in ("stalled", "rule_error"))
