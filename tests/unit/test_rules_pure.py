"""Rules called on a hand-built window: no database, no server."""

from __future__ import annotations

import math

from monitor.rules.config import effective_params
from monitor.rules.core import SeriesView, Window
from monitor.rules.evaluate import carry, check_stalled, evaluate
from monitor.rules.library import RULES


def window(step: int, series: dict[str, list[float]], **kw) -> Window:
    return Window(step=step, series={k: SeriesView(list(range(len(v))), v)
                                     for k, v in series.items()}, **kw)


def test_nothing_has_fired_on_a_healthy_window():
    params = effective_params({})
    assert evaluate(window(10, {"d_loss": [0.7] * 11}), {}, params) == []


def test_a_nan_fires_non_finite_at_once():
    params = effective_params({})
    [t] = evaluate(window(10, {"d_loss": [0.7] * 10 + [math.nan]}, previous_step=9), {}, params)
    assert (t.rule, t.subject, t.change.notify, t.state.status) == (
        "non_finite", "", "firing", "firing")


def test_each_gradient_subject_gets_its_own_view_and_the_window_is_unchanged():
    params = effective_params({"exploding_gradients": {"for": 0, "window": 10}})
    w = window(20, {"grad_norm/D": [500.0] * 21, "grad_norm/G": [1.0] * 21})
    fired = [t for t in evaluate(w, {}, params) if t.rule == "exploding_gradients"]
    assert [(t.subject, t.change.notify) for t in fired] == [("grad_norm/D", "firing")]
    assert w.subject == ""


def test_states_passed_in_are_not_changed_and_carry_moves_them_on():
    params = effective_params({"d_loss_zero": {"warmup": 0, "for": 2, "window": 5}})
    states: dict = {}
    w = window(5, {"d_loss": [0.0] * 6})
    first = [t for t in evaluate(w, states, params) if t.rule == "d_loss_zero"]
    assert states == {} and first[0].state.status == "pending"
    states = carry(states, first)
    w = window(7, {"d_loss": [0.0] * 8}, previous_step=5)
    [t] = [t for t in evaluate(w, states, params) if t.rule == "d_loss_zero"]
    assert t.change.notify == "firing" and states[t.key].status == "pending"


def test_a_rule_that_raises_is_a_rule_error_transition():
    params = effective_params({})

    def subjects(_w):
        raise ZeroDivisionError("boom")

    import dataclasses
    original = RULES["exploding_gradients"]
    RULES["exploding_gradients"] = dataclasses.replace(original, subjects=subjects)
    try:
        out = evaluate(window(10, {"d_loss": [0.7] * 11}), {}, params)
    finally:
        RULES["exploding_gradients"] = original
    [t] = out
    assert (t.rule, t.subject, t.change.notify) == ("rule_error", "exploding_gradients", "firing")
    assert "ZeroDivisionError: boom" in t.finding.evidence["error"]


def test_stalled_reads_the_clock_from_the_window():
    params = effective_params({})
    assert check_stalled(window(3, {}, silent_for=100.0), {}, params) == []
    [t] = check_stalled(window(3, {}, silent_for=121.0), {}, params)
    assert t.rule == "stalled" and t.change.notify == "firing"
