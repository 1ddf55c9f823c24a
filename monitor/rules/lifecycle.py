"""The alert lifecycle of one fingerprint (run, rule, subject), as a pure state machine.

    inactive --holds--> pending --held `for` steps--> firing --clear `clear_for` steps--> resolved
        ^                  |                            |  \\--held `escalate_after` steps, or a
        +---clears---------+                            |     critical finding--> escalated
                                                        |     (still firing, severity critical)
    resolved --holds, `cooldown` steps after resolving--> pending (a new alert)

Steps, not wall-clock seconds, measure every hold, because a training run's pace varies and a
replayed run has no clock. Transitions that users are told about (firing, escalated, resolved)
are returned so the caller can store exactly one notification for each.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.rules.core import Finding

FIRING, RESOLVED, ESCALATED = "firing", "resolved", "escalated"


@dataclass
class State:
    status: str = "inactive"  # inactive | pending | firing | resolved
    pending_since: int | None = None
    fired_step: int | None = None
    clear_since: int | None = None
    resolved_step: int | None = None
    severity: str = "warning"
    last_step: int | None = None


@dataclass(frozen=True)
class Change:
    """What one evaluation did to a fingerprint; ``notify`` is None when nobody is told."""

    opened: bool = False  # a new alert (pending or straight to firing)
    dropped: bool = False  # a pending alert cleared before firing: it never existed
    notify: str | None = None  # firing | escalated | resolved


def advance(state: State, finding: Finding | None, step: int, params: dict) -> Change:
    """Move ``state`` (in place) by one evaluation at ``step``; say what changed."""
    state.last_step = step
    holds = finding is not None
    hold_for, clear_for = int(params["for"]), int(params["clear_for"])

    if state.status in ("inactive", "resolved"):
        if not holds:
            return Change()
        if state.status == "resolved" and state.resolved_step is not None \
                and step - state.resolved_step < int(params["cooldown"]):
            return Change()  # in cooldown: the resolved alert stays resolved
        state.status, state.pending_since, state.clear_since = "pending", step, None
        state.fired_step = state.resolved_step = None
        state.severity = params["severity"]
        change = _maybe_fire(state, finding, step, hold_for)
        return Change(opened=True, notify=change.notify)

    if state.status == "pending":
        if not holds:
            state.status, state.pending_since = "inactive", None
            return Change(dropped=True)
        return _maybe_fire(state, finding, step, hold_for)

    # firing
    if holds:
        state.clear_since = None
        escalate_after = int(params["escalate_after"])
        if state.severity != "critical" and (
                finding.severity == "critical"
                or (escalate_after and step - state.fired_step >= escalate_after)):
            state.severity = "critical"
            return Change(notify=ESCALATED)
        return Change()
    if state.clear_since is None:
        state.clear_since = step
    if step - state.clear_since >= clear_for:
        state.status, state.resolved_step = "resolved", step
        return Change(notify=RESOLVED)
    return Change()


def _maybe_fire(state: State, finding: Finding, step: int, hold_for: int) -> Change:
    if step - state.pending_since < hold_for:
        return Change()
    state.status, state.fired_step = "firing", step
    if finding.severity == "critical":
        state.severity = "critical"
    return Change(notify=FIRING)
