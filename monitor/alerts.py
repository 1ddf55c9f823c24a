"""Alerts: the transitions of ``rules.evaluate`` applied to a run's rows, its fingerprint
states (``RuleState``), its alerts and their notifications (``AlertEvent``), inside the
caller's transaction. Which deliveries and counters follow is the caller's business
(``monitor.ingest``); nothing here commits.
"""

from __future__ import annotations

import hashlib
import math

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.encoding import stored_safe
from monitor.models import Alert, AlertEvent, RuleState, Run, utcnow
from monitor.rules.evaluate import Key, Transition
from monitor.rules.library import RULES
from monitor.rules.lifecycle import ESCALATED, FIRING, RESOLVED, State

STATE_FIELDS = ("status", "pending_since", "fired_step", "clear_since", "resolved_step",
                "severity", "last_step")


def fingerprint(run_id: str, rule: str, subject: str) -> str:
    return hashlib.sha1(f"{run_id}\0{rule}\0{subject}".encode()).hexdigest()[:16]


def _number(value: float) -> float | None:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


class AlertRows:
    """The rule states of one run within one transaction, and the rows a transition changes."""

    def __init__(self, session: Session, run: Run) -> None:
        self.session = session
        self.run = run
        self.rows: dict[Key, RuleState] = {
            (row.rule, row.subject): row
            for row in session.scalars(select(RuleState).where(RuleState.run_id == run.id))}

    def states(self) -> dict[Key, State]:
        """The fingerprints' lifecycle states, as ``rules.evaluate`` reads them."""
        return {key: State(**{f: getattr(row, f) for f in STATE_FIELDS})
                for key, row in self.rows.items()}

    def apply(self, transition: Transition) -> tuple[AlertEvent, Alert] | None:
        """Store one transition: the fingerprint's state, its alert (opened, updated, dropped
        or resolved); returns the notification and its alert when users are to be told."""
        name, subject, t = transition.rule, transition.subject, transition.step
        state, change, finding = transition.state, transition.change, transition.finding
        row = self.rows.get((name, subject))
        if row is None:
            row = RuleState(run_id=self.run.id, rule=name, subject=subject)
            self.session.add(row)
            self.rows[name, subject] = row
        for f in STATE_FIELDS:
            setattr(row, f, getattr(state, f))
        alert = self.session.get(Alert, row.alert_id) if row.alert_id is not None else None
        now = utcnow()
        if change.opened:
            rule = RULES[name]
            alert = Alert(run_id=self.run.id, rule=name, subject=subject,
                          fingerprint=fingerprint(self.run.id, name, subject), status="pending",
                          severity=state.severity, title=rule.title, action=rule.action,
                          message="", evidence={}, started_step=t, last_step=t, created_at=now)
            self.session.add(alert)
            self.session.flush()
            row.alert_id = alert.id
        if change.dropped and alert is not None:
            self.session.delete(alert)
            row.alert_id = alert = None
        if alert is None:
            return None
        alert.status, alert.severity, alert.last_step = (
            "firing" if state.status == "firing" else
            "resolved" if state.status == "resolved" else "pending"), state.severity, t
        # The evidence is what made the alert fire: kept from then on (the latest value is
        # still tracked), captured again only when the alert escalates.
        if finding is not None:
            alert.value = _number(finding.value)
        if finding is not None and (state.status == "pending" or change.notify in (FIRING,
                                                                                  ESCALATED)):
            title = f"{RULES[name].title}" + (f": {subject}" if subject else "")
            alert.title = title[:200]
            alert.message = finding.message
            alert.threshold = _number(finding.threshold)
            alert.evidence = stored_safe(finding.evidence)
        if change.notify == FIRING:
            alert.fired_step, alert.fired_at = t, now
        elif change.notify == RESOLVED:
            alert.resolved_step, alert.resolved_at = t, now
            row.alert_id = None
        if not change.notify:
            return None
        event = AlertEvent(alert_id=alert.id, run_id=self.run.id, kind=change.notify,
                           severity=state.severity, step=t, created_at=now)
        self.session.add(event)
        self.session.flush()
        return event, alert
