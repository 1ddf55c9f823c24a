"""The alert lifecycle: the pure state machine step by step, then through the engine and the
database (one notification per transition, none when a batch is retried, inhibition)."""

from __future__ import annotations

import math
import uuid

import pytest

from monitor.rules.core import Finding
from monitor.rules.library import RULES
from monitor.rules.lifecycle import State, advance
from tests.support.rules_harness import Store

HOLDS = Finding(message="holds", value=1.0, threshold=0.5)
CRITICAL = Finding(message="holds badly", value=9.0, threshold=0.5, severity="critical")


def params(**overrides):
    return {**RULES["mode_collapse"].defaults(), "for": 10, "clear_for": 5, "cooldown": 20,
            "escalate_after": 0, **overrides}


def drive(state: State, timeline: list[tuple[int, Finding | None]], p: dict) -> list:
    """Advance through (step, finding) pairs; returns [(step, status, notify)] per step."""
    out = []
    for step, finding in timeline:
        change = advance(state, finding, step, p)
        out.append((step, state.status, change.notify))
    return out


def notifications(trace) -> list[tuple[int, str]]:
    return [(step, notify) for step, _, notify in trace if notify]


def test_pending_firing_resolved_and_refire_after_cooldown():
    p, state = params(), State()
    timeline = ([(s, HOLDS) for s in range(0, 15)]  # fires at step 10 (held 10 steps)
                + [(s, None) for s in range(15, 25)]  # clear from 15: resolves at 20
                + [(s, HOLDS) for s in range(25, 35)]  # within the 20-step cooldown: nothing
                + [(s, HOLDS) for s in range(40, 55)])  # after it: pending at 40, fires at 50
    trace = drive(state, timeline, p)
    assert [status for step, status, _ in trace if step in (0, 9, 10, 19, 20, 30, 40, 50)] == [
        "pending", "pending", "firing", "firing", "resolved", "resolved", "pending", "firing"]
    assert notifications(trace) == [(10, "firing"), (20, "resolved"), (50, "firing")]


def test_pending_that_clears_never_notifies():
    p, state = params(), State()
    trace = drive(state, [(s, HOLDS) for s in range(5)] + [(5, None)], p)
    assert notifications(trace) == []
    assert state.status == "inactive"


def test_a_short_clear_while_firing_does_not_resolve():
    p, state = params(), State()
    timeline = ([(s, HOLDS) for s in range(12)] + [(12, None), (13, None)]
                + [(s, HOLDS) for s in range(14, 30)])
    trace = drive(state, timeline, p)
    assert notifications(trace) == [(10, "firing")]
    assert state.status == "firing" and state.clear_since is None


def test_escalation_by_time_and_by_a_critical_finding():
    by_time, state = params(escalate_after=30), State()
    trace = drive(state, [(s, HOLDS) for s in range(60)], by_time)
    assert notifications(trace) == [(10, "firing"), (40, "escalated")]
    assert state.severity == "critical"

    state = State()
    trace = drive(state, [(s, HOLDS) for s in range(15)] + [(15, CRITICAL), (16, CRITICAL)],
                  params())
    assert notifications(trace) == [(10, "firing"), (15, "escalated")]

    state = State()  # critical from the start: fires as critical, nothing to escalate
    trace = drive(state, [(s, CRITICAL) for s in range(20)], params())
    assert notifications(trace) == [(10, "firing")] and state.severity == "critical"


def test_for_zero_fires_on_the_first_evaluation():
    state = State()
    trace = drive(state, [(7, HOLDS)], params(**{"for": 0}))
    assert notifications(trace) == [(7, "firing")]


# -- through the engine and the database ------------------------------------------------------


@pytest.fixture
def db(tmp_path):
    s = Store(tmp_path / "lifecycle.db")
    yield s
    s.close()


def collapse_then_recover(n_good=300, n_bad=400, n_after=400):
    return [1.0] * n_good + [0.1] * n_bad + [1.0] * n_after


def test_one_notification_per_transition_and_none_for_a_retried_batch(db):
    run = db.run()
    ratio = collapse_then_recover()
    body = None
    for lo in range(0, len(ratio), 50):
        body = {"batch_id": uuid.uuid4().hex, "series": {"diversity/ratio": {
            "steps": list(range(lo, lo + 50)), "values": ratio[lo:lo + 50]}}}
        db.post(run, body)
        if lo == 500:  # the same batch again (a client retry): stored once, nobody told twice
            assert db.post(run, body) == (0, True)
    db.post(run, body)  # and the last one again
    notes = [(n.kind, n.step) for n in db.notes(run)]
    assert [k for k, _ in notes] == ["firing", "resolved"]
    assert len(db.alerts(run)) == 1


def test_refire_after_cooldown_is_a_new_alert(db):
    run = db.run(rules={"mode_collapse": {"cooldown": 100}})
    ratio = collapse_then_recover() + [0.1] * 400
    db.feed(run, {"diversity/ratio": ratio})
    notes = [n.kind for n in db.notes(run) if n.rule == "mode_collapse"]
    assert notes == ["firing", "resolved", "firing"]
    first, second = db.alerts(run)
    assert (first.status, second.status) == ("resolved", "firing")
    assert first.fingerprint == second.fingerprint and first.id != second.id


def test_non_finite_inhibits_the_variance_and_spike_rules(db):
    inhibited, control = db.run(), db.run()
    stormy = [1.0 + (3.0 if i % 37 == 0 else 0.0) for i in range(1200)]
    with_nan = list(stormy)
    for i in range(150, 1200, 60):  # from before the rules warm up, non_finite keeps firing
        with_nan[i] = math.nan
    db.feed(control, {"d_loss": stormy})
    db.feed(inhibited, {"d_loss": with_nan})
    assert {n.rule for n in db.notes(control)} >= {"d_loss_spikes"}
    fired = {n.rule for n in db.notes(inhibited)}
    assert "non_finite" in fired
    assert not fired & {"d_loss_spikes", "d_loss_variance"}
