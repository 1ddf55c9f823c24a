"""Evaluation: on each accepted batch, the run's rules over its trailing window, inside the
batch's own transaction, with the lifecycle state read from and written to the database.

Only the window the rules need is read (the largest rule window before the batch's first step,
up to its last), never the whole history. A batch spanning many steps is evaluated at up to
``MAX_EVALUATIONS`` evenly spaced steps (always its last), so a replayed run of a million steps
costs a bounded amount per request; holds (``for``, ``clear_for``) are measured in steps, so the
spacing only delays a transition by at most one stride.

On PostgreSQL the run's row is locked (``SELECT ... FOR UPDATE``) first, so two replicas or two
concurrent requests never evaluate the same run at once; SQLite serialises writers anyway.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.db import is_postgres
from monitor.metrics import count_transition
from monitor.models import Alert, AlertEvent, Point, RuleState, Run, Series, utcnow
from monitor.rules.config import effective_params
from monitor.rules.core import Finding, SeriesView, Window
from monitor.rules.evaluate import cadence, evaluation_steps
from monitor.rules.library import INHIBITED_BY_NON_FINITE, POINT_RULES, RULES, stalled
from monitor.rules.lifecycle import ESCALATED, FIRING, RESOLVED, State, advance
from monitor.schemas import stored_safe
from monitor.webhooks.outbox import Outbox

log = logging.getLogger("ganwatch.rules")

STATE_FIELDS = ("status", "pending_since", "fired_step", "clear_since", "resolved_step",
                "severity", "last_step")


def fingerprint(run_id: str, rule: str, subject: str) -> str:
    return hashlib.sha1(f"{run_id}\0{rule}\0{subject}".encode()).hexdigest()[:16]


def _number(value: float) -> float | None:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def lock_run(session: Session, run_id: str) -> Run | None:
    """The run's row, locked on PostgreSQL until the transaction ends: FOR NO KEY UPDATE,
    which serialises the run's writers and evaluations but not the foreign-key checks of rows
    that point at the run (those take KEY SHARE; FOR UPDATE would deadlock with them)."""
    query = select(Run).where(Run.id == run_id)
    if is_postgres(session):
        query = query.with_for_update(key_share=True)
    return session.scalars(query.execution_options(populate_existing=True)).first()


class Evaluator:
    """The rules engine for one run within one transaction."""

    def __init__(self, session: Session, run: Run) -> None:
        self.session = session
        self.run = run
        self.params = effective_params(run.rules)
        self.params["stalled"]["checkin_interval"] = (
            run.checkin_interval or self.params["stalled"]["checkin_interval"])
        self.silenced = set(run.silenced or [])
        self.rows: dict[tuple[str, str], RuleState] = {
            (row.rule, row.subject): row
            for row in session.scalars(select(RuleState).where(RuleState.run_id == run.id))}
        self.notified: list[AlertEvent] = []
        self.outbox = Outbox(session)

    # -- reading the window -------------------------------------------------------------------

    def load(self, first: int, hi: int, short_lo: int,
             fresh: Fresh | None = None) -> dict[str, SeriesView]:
        """Points of the run up to ``hi``: for each series a rule reads, the largest window of
        the rules that read it before ``first`` (the batch's first evaluated step); for the
        rest, from ``short_lo`` (only the non-finite rule looks at them, at new steps).

        ``fresh``: the batch being stored, when every point stored before it has a smaller
        step than all of its own (the in-order case): the database is then read only below
        the batch, and the batch's points come from memory instead of being read back."""
        spans: dict[str, int] = {}  # input key or prefix -> steps it is needed for
        for name in POINT_RULES:
            if name not in self.silenced:
                params = self.params[name]
                keys = set(RULES[name].inputs) | {  # series a run's settings point a rule to
                    v for k, v in params.items() if k == "key" or k.endswith("_key")}
                for key in keys:
                    spans[key] = max(spans.get(key, 0), int(params["window"]))
        ids = dict(self.session.execute(
            select(Series.id, Series.key).where(Series.run_id == self.run.id)).all())
        groups: dict[int, list[int]] = {}  # lower bound -> series ids
        for sid, key in ids.items():
            span = max([n for p, n in spans.items()
                        if key == p or (p.endswith("/") and key.startswith(p))], default=None)
            groups.setdefault(short_lo if span is None else min(short_lo, first - span),
                              []).append(sid)
        views: dict[str, tuple[list, list]] = {}
        top = hi if fresh is None else min(hi, fresh.lo - 1)
        for start, sids in groups.items():
            rows = self.session.execute(
                select(Point.series_id, Point.step, Point.value)
                .where(Point.series_id.in_(sids), Point.step >= start, Point.step <= top)
                .order_by(Point.series_id, Point.step, Point.id))
            for sid, step, value in rows:
                steps, values = views.setdefault(ids[sid], ([], []))
                steps.append(step)
                values.append(math.nan if value is None else value)
        if fresh is not None:
            bounds = {ids[sid]: start for start, sids in groups.items() for sid in sids}
            for key, (new_steps, new_values) in fresh.series.items():
                if key not in bounds:
                    continue
                steps, values = views.setdefault(key, ([], []))
                for step, value in sorted(zip(new_steps, new_values), key=lambda p: p[0]):
                    if bounds[key] <= step <= hi:
                        steps.append(step)
                        values.append(math.nan if value is None else value)
        return {k: SeriesView(s, v) for k, (s, v) in views.items()}

    # -- evaluating ---------------------------------------------------------------------------

    def on_points(self, steps: list[int], fresh: Fresh | None = None) -> None:
        done = self.run.evaluated_step if self.run.evaluated_step is not None else -1
        steps = sorted({s for s in steps if s > done})
        if not steps:
            return
        active = [r for r in POINT_RULES if r not in self.silenced]
        todo = evaluation_steps(steps)
        series = self.load(todo[0], todo[-1],
                           min(done, todo[0] - int(self.params["non_finite"]["window"])), fresh)
        cadence = {name: self.cadence(name) for name in active}
        previous = done
        for t in todo:
            views = {}
            for key, view in series.items():
                end = bisect.bisect_right(view.steps, t)
                if end:
                    views[key] = SeriesView(view.steps[:end], view.values[:end])
            window = Window(step=t, series=views, previous_step=previous, run_id=self.run.id)
            inhibited = self._state("non_finite", "").status == "firing"
            for name in active:
                if inhibited and name in INHIBITED_BY_NON_FINITE:
                    continue
                every = cadence[name]
                if every > 1 and t != todo[-1] and t // every == previous // every:
                    continue  # not due: evaluated at least once per `every` steps, and last
                self._evaluate(name, window, t)
            if self._state("stalled", "").status == "firing":
                self.step_rule("stalled", "", None, t)  # points arrived: not stalled any more
            previous = t
        self.rule_worked("", todo[-1])  # the evaluation as a whole worked (see evaluate_on_ingest)
        self.run.evaluated_step = todo[-1]

    def cadence(self, name: str) -> int:
        return cadence(self.params[name])

    def _evaluate(self, name: str, window: Window, t: int) -> None:
        rule, params = RULES[name], self.params[name]
        if rule.subjects is None:
            subjects = [""]
        else:
            try:
                subjects = set(rule.subjects(window))
            except Exception as exc:
                self.rule_failed(name, exc, t)
                return
            subjects.update(s for (r, s), row in self.rows.items()
                            if r == name and row.status in ("pending", "firing"))
            subjects = sorted(subjects)
        for subject in subjects:
            finding = None
            if t >= int(params["warmup"]):
                try:
                    finding = rule.check(window.for_subject(subject), params)
                except Exception as exc:  # the rule watches nothing: say so, as an alert
                    self.rule_failed(name, exc, t)
                    return
            if finding is None and (name, subject) not in self.rows:
                continue  # inactive and still clear: nothing to store
            self.step_rule(name, subject, finding, t)
        self.rule_worked(name, t)

    def rule_failed(self, name: str, exc: Exception, t: int) -> None:
        """A rule raised: a ``rule_error`` alert (its subject the rule's name) fires, naming
        the rule and the error, instead of the rule going quiet with a line in a log."""
        log.warning("rule %s of run %s failed at step %s: %s: %s", name, self.run.id, t,
                    type(exc).__name__, exc)
        if "rule_error" in self.silenced:
            return
        error = f"{type(exc).__name__}: {exc}"[:500]
        where = f"rule {name}" if name else "the rules"
        finding = Finding(
            message=f"{where} failed to evaluate at step {t} ({error}); until it evaluates "
                    "again it raises no alert" + (f" (its parameters: {self.params[name]})"
                                                  if name in self.params else ""),
            value=math.nan, threshold=math.nan,
            evidence={"rule": name, "error": error, "step": t,
                      "params": self.params.get(name, {})})
        self.step_rule("rule_error", name, finding, t)

    def rule_worked(self, name: str, t: int) -> None:
        """The rule evaluated: its rule_error alert, if one is open, resolves."""
        row = self.rows.get(("rule_error", name))
        if row is not None and row.status in ("pending", "firing"):
            self.step_rule("rule_error", name, None, t)

    def _state(self, rule: str, subject: str) -> State:
        row = self.rows.get((rule, subject))
        if row is None:
            return State()
        return State(**{f: getattr(row, f) for f in STATE_FIELDS})

    def step_rule(self, name: str, subject: str, finding: Finding | None, t: int) -> None:
        """One lifecycle step of a fingerprint, stored with its alert and notification."""
        params = self.params[name]
        state = self._state(name, subject)
        change = advance(state, finding, t, params)
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
            return
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
        if change.notify:
            event = AlertEvent(alert_id=alert.id, run_id=self.run.id, kind=change.notify,
                               severity=state.severity, step=t, created_at=now)
            self.session.add(event)
            self.session.flush()
            self.notified.append(event)
            count_transition(self.session, event, name)
            self.outbox.enqueue(event=event, alert=alert, run=self.run)  # same transaction


@dataclass
class Fresh:
    """A batch's own points, by key, for evaluation without reading them back: valid only when
    every point stored before the batch has a step below ``lo``, the batch's smallest."""

    lo: int
    series: dict[str, tuple[list[int], list[float | None]]]


def evaluate_on_ingest(session: Session, *, run_id: str, steps: list[int],
                       fresh: Fresh | None = None) -> None:
    """Evaluate the run's rules at the batch's new steps, in the caller's transaction.

    A failing rule must never cost the batch: evaluation runs in a savepoint, and an error is
    logged and leaves the points stored. A rule that raises is a ``rule_error`` alert of its own
    (see Evaluator.rule_failed); an evaluation that fails as a whole (reading the window, say)
    is one too, with the subject "" (in a savepoint of its own: it must not cost the batch
    either).
    """
    if not steps:
        return
    try:
        with session.begin_nested():
            run = lock_run(session, run_id)
            if run is not None:
                Evaluator(session, run).on_points(steps, fresh)
    except Exception as exc:
        log.exception("rule evaluation of run %s failed; the points are stored", run_id)
        try:
            with session.begin_nested():
                run = lock_run(session, run_id)
                if run is not None:
                    Evaluator(session, run).rule_failed("", exc, max(steps))
        except Exception:
            log.exception("could not raise the rule_error alert of run %s", run_id)


def resolve_stalled(session: Session, *, run: Run) -> None:
    """A run that finished is not stalled: resolve its stalled alert, if one is firing."""
    row = session.get(RuleState, (run.id, "stalled", ""))
    if row is not None and row.status == "firing":
        Evaluator(session, run).step_rule("stalled", "", None, run.last_step or 0)


def sweep_stalled(session: Session, *, now: datetime | None = None) -> int:
    """Fire the stalled rule for running runs silent past their check-in interval plus grace;
    returns how many alerts fired. Each run is checked in its own transaction."""
    now = now or utcnow()
    candidates = session.scalars(select(Run.id).where(
        Run.status == "running", Run.last_point_at.is_not(None))).all()
    session.rollback()
    fired = 0
    for run_id in candidates:
        run = lock_run(session, run_id)
        if run is None or run.status != "running" or "stalled" in (run.silenced or []):
            session.rollback()
            continue
        evaluator = Evaluator(session, run)
        finding = stalled(Window(step=run.last_step or 0, series={}, run_id=run.id,
                                 silent_for=(now - run.last_point_at).total_seconds()),
                          evaluator.params["stalled"])
        state = evaluator._state("stalled", "")
        if finding is not None and state.status != "firing":
            evaluator.step_rule("stalled", "", finding, run.last_step or 0)
            fired += sum(1 for e in evaluator.notified if e.kind == FIRING)
        session.commit()
    return fired
