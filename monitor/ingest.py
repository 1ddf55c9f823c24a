"""The ingest pipeline: one batch of points, in one transaction, through its stages in order.

1. lock the run's row (PostgreSQL: ``SELECT ... FOR NO KEY UPDATE``; SQLite serialises
   writers anyway), so batches of one run, through any replica, are stored and evaluated one
   at a time and always take their locks in the same order;
2. store the batch (``store.points.store_batch``: claim its id, series, points, rollups, the run);
3. build the window the rules need: the largest rule window before the batch's first
   evaluated step, up to its last, never the whole history (in order, the batch's own points
   come from memory);
4. evaluate (``rules.evaluate.evaluate``, a pure function) at up to ``MAX_EVALUATIONS``
   evenly spaced new steps, always the last;
5. apply each transition to the alert rows (``alerts.AlertRows``) and, step by step, enqueue
   its deliveries (``webhooks.outbox``: a payload reads the alert as it is then, so one alert
   may fire and resolve within a batch);
6. NOTIFY the live streams, and commit;
7. only then, with what the commit kept (``Effects``): count the transitions and hand the
   deliveries to this process's webhook worker.

The clock's rule (stalled) runs from the server's sweep (``sweep_stalled``), and a finished
run's stalled alert resolves (``finish_run``), through the same stages 5 and 6.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from monitor import metrics
from monitor.alerts import AlertRows
from monitor.db import is_postgres
from monitor.errors import unknown_run
from monitor.models import AlertEvent, Point, Run, Series, utcnow
from monitor.notify import notify_run
from monitor.rules import evaluate as rules
from monitor.rules import families, vocabulary
from monitor.rules.config import effective_params
from monitor.rules.core import SeriesView, Window
from monitor.rules.lifecycle import FIRING
from monitor.schemas import PointsBatch
from monitor.store import points as point_store
from monitor.store import runs as run_store
from monitor.webhooks.outbox import Handoff, Outbox

log = logging.getLogger("ganwatch.rules")


def lock_run(session: Session, run_id: str) -> Run | None:
    """The run's row, locked on PostgreSQL until the transaction ends: FOR NO KEY UPDATE,
    which serialises the run's writers and evaluations but not the foreign-key checks of rows
    that point at the run (those take KEY SHARE; FOR UPDATE would deadlock with them)."""
    query = select(Run).where(Run.id == run_id)
    if is_postgres(session):
        query = query.with_for_update(key_share=True)
    return session.scalars(query.execution_options(populate_existing=True)).first()


@dataclass
class Fresh:
    """A batch's own points, by key, for evaluation without reading them back: valid only when
    every point stored before the batch has a step below ``lo``, the batch's smallest."""

    lo: int
    series: dict[str, tuple[list[int], list[float | None]]]


def ingest_points(*, session: Session, run_id: str, batch: PointsBatch,
                  max_series: int | None = None,
                  handoff: Handoff | None = None) -> tuple[int, bool]:
    """Store and evaluate a columnar batch in one transaction; returns (points stored, was it
    a duplicate). ``handoff``: where new deliveries go (the app's; none without a server)."""
    run = lock_run(session, run_id)
    if run is None:
        raise unknown_run(run_id)
    stored = point_store.store_batch(session=session, run=run, batch=batch, max_series=max_series)
    if stored is None:
        return 0, True
    fresh = None
    if stored.steps and (stored.stored_up_to is None or stored.stored_up_to < min(stored.steps)):
        fresh = Fresh(lo=min(stored.steps), series=stored.values)  # in order: from memory
    effects = Effects(session, handoff)
    evaluate_on_ingest(effects, run_id=run_id, steps=list(stored.steps), fresh=fresh)
    notify_run(session, run_id)  # live streams on every replica, at commit
    effects.commit()
    return stored.n_points, False


def finish_run(*, session: Session, run_id: str, handoff: Handoff | None = None) -> Run:
    """Mark a run finished (idempotent); a finished run is not stalled."""
    run = run_store.get_run(session=session, run_id=run_id)
    if run.status != "finished":
        run.status = "finished"
        run.finished_at = utcnow()
        run.updated_at = run.finished_at
        effects = Effects(session, handoff)
        resolve_stalled(effects, run=run)
        effects.commit()
    return run


# -- applying transitions ------------------------------------------------------------------------

class Effects:
    """One transaction of the pipeline and what it tells once it has committed, and only then:
    the transitions it counts (``metrics``) and the deliveries it hands to this process's
    worker (``Outbox.committed``). An alert event or a delivery that a rolled-back savepoint
    took with it is no longer persistent at commit, and tells nothing."""

    def __init__(self, session: Session, handoff: Handoff | None) -> None:
        self.session = session
        self.outbox = Outbox(session, handoff or Handoff.offline())
        self.events: list[tuple[AlertEvent, str]] = []  # (event row, its rule)

    def commit(self) -> None:
        self.session.commit()
        committed = [(rule, event.kind) for event, rule in self.events
                     if inspect(event).persistent]
        self.events = []
        metrics.count_transitions(committed)
        self.outbox.committed()


class Applier:
    """Stage 5 of the pipeline for one run: each transition to the rows, then its deliveries,
    in order, and its count once the transaction (``effects``) commits."""

    def __init__(self, effects: Effects, run: Run) -> None:
        self.effects = effects
        self.run = run
        self.family = family_of(run)[0]
        self.params = run_params(run, self.family)
        self.silenced = set(run.silenced or [])
        self.alerts = AlertRows(effects.session, run)
        self.states = self.alerts.states()
        self.fired = 0

    def apply(self, transitions: Iterable[rules.Transition]) -> None:
        for transition in transitions:
            self.states[transition.key] = transition.state
            told = self.alerts.apply(transition)
            if told is None:
                continue
            event, alert = told
            self.fired += event.kind == FIRING
            self.effects.events.append((event, transition.rule))
            self.effects.outbox.enqueue(event=event, alert=alert, run=self.run)


def family_of(run: Run) -> tuple[str, str]:
    """The run's loss family and where it comes from: declared, inferred or the default."""
    if run.loss:
        return run.loss, "declared"
    if run.loss_inferred:
        return run.loss_inferred, "inferred"
    return families.DEFAULT, "default"


def run_roles(run: Run, keys) -> dict[str, str]:
    """Which of the run's series keys plays each role the rules read."""
    return vocabulary.resolve(keys, run.key_map)


def run_coverage(run: Run, keys: list[str]) -> dict[str, dict]:
    """Per point rule: applies, watching, missing (``rules.evaluate.coverage``)."""
    family = family_of(run)[0]
    return rules.coverage(run_params(run, family), run_roles(run, keys), keys, family,
                          silenced=run.silenced or [])


def any_gan_rule_watching(run: Run, keys: list[str]) -> bool:
    """Whether any rule but non_finite (which reads whatever is logged) can watch the run."""
    return any(c["watching"] for name, c in run_coverage(run, keys).items()
               if name != "non_finite")


def run_params(run: Run, family: str | None = None) -> dict[str, dict]:
    """The run's effective rule parameters (its check-in interval is the stalled rule's)."""
    params = effective_params(run.rules, family or family_of(run)[0])
    params["stalled"]["checkin_interval"] = (
        run.checkin_interval or params["stalled"]["checkin_interval"])
    return params


# -- the window --------------------------------------------------------------------------------

def load_window(session: Session, run: Run, params: dict, silenced: set[str], first: int,
                hi: int, short_lo: int,
                fresh: Fresh | None = None) -> tuple[dict[str, SeriesView], dict[str, str]]:
    """Points of the run up to ``hi``: for each series a rule reads, the largest window of
    the rules that read it before ``first`` (the batch's first evaluated step); for the
    rest, from ``short_lo`` (only the non-finite rule looks at them, at new steps).

    ``fresh``: the batch being stored, when every point stored before it has a smaller
    step than all of its own (the in-order case): the database is then read only below
    the batch, and the batch's points come from memory instead of being read back.

    Returns the views by the run's own keys, and the roles (which key plays ``d_loss``...):
    a span asked for a role is read from the key that plays it."""
    spans = rules.window_spans(params, silenced)
    ids = dict(session.execute(
        select(Series.id, Series.key).where(Series.run_id == run.id)).all())
    roles = run_roles(run, ids.values())
    role_of = {key: role for role, key in roles.items()}
    groups: dict[int, list[int]] = {}  # lower bound -> series ids
    for sid, key in ids.items():
        names = (key, role_of.get(key, key))
        span = max([n for p, n in spans.items()
                    if p in names or (p.endswith("/") and key.startswith(p))], default=None)
        groups.setdefault(short_lo if span is None else min(short_lo, first - span),
                          []).append(sid)
    views: dict[str, tuple[list, list]] = {}
    top = hi if fresh is None else min(hi, fresh.lo - 1)
    for start, sids in groups.items():
        rows = session.execute(
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
    return {k: SeriesView(s, v) for k, (s, v) in views.items()}, roles


# -- evaluating --------------------------------------------------------------------------------

def evaluate_run(effects: Effects, run: Run, steps: list[int],
                 fresh: Fresh | None = None) -> None:
    """The run's point rules at the batch's new steps (those past ``run.evaluated_step``)."""
    done = run.evaluated_step if run.evaluated_step is not None else -1
    steps = sorted({s for s in steps if s > done})
    if not steps:
        return
    applier = Applier(effects, run)
    params, silenced = applier.params, applier.silenced
    todo = rules.evaluation_steps(steps)
    series, roles = load_window(effects.session, run, params, silenced, todo[0], todo[-1],
                                min(done, todo[0] - int(params["non_finite"]["window"])), fresh)
    if not run.loss:  # what the run logged may say which loss it trains with
        inferred = families.infer(Window(step=todo[-1], series=series, roles=roles),
                                  run.loss_inferred)
        if inferred != run.loss_inferred:
            log.info("run %s: loss family inferred as %s", run.id, inferred)
            run.loss_inferred = inferred
            applier.family = inferred
            applier.params = params = run_params(run, inferred)
    previous = done
    for t in todo:
        views = {}
        for key, view in series.items():
            end = bisect.bisect_right(view.steps, t)
            if end:
                views[key] = SeriesView(view.steps[:end], view.values[:end])
        window = Window(step=t, series=views, previous_step=previous, run_id=run.id,
                        roles=roles)
        applier.apply(rules.evaluate(window, applier.states, params, silenced=silenced,
                                     final=t == todo[-1], family=applier.family))
        previous = t
    # the evaluation as a whole worked (see evaluate_on_ingest)
    applier.apply(rules.worked("", todo[-1], applier.states, params))
    run.evaluated_step = todo[-1]


def evaluate_on_ingest(effects: Effects, *, run_id: str, steps: list[int],
                       fresh: Fresh | None = None) -> None:
    """Evaluate the run's rules at the batch's new steps, in the caller's transaction.

    A failing rule must never cost the batch: evaluation runs in a savepoint, and an error is
    logged and leaves the points stored. A rule that raises is a ``rule_error`` alert of its own
    (see rules.evaluate.failed); an evaluation that fails as a whole (reading the window, say)
    is one too, with the subject "" (in a savepoint of its own: it must not cost the batch
    either).
    """
    if not steps:
        return
    session = effects.session
    try:
        with session.begin_nested():
            run = lock_run(session, run_id)
            if run is not None:
                evaluate_run(effects, run, steps, fresh)
    except Exception as exc:
        log.exception("rule evaluation of run %s failed; the points are stored", run_id)
        try:
            with session.begin_nested():
                run = lock_run(session, run_id)
                if run is not None:
                    applier = Applier(effects, run)
                    applier.apply(rules.failed("", exc, max(steps), applier.states,
                                               applier.params, silenced=applier.silenced,
                                               run_id=run.id))
        except Exception:
            log.exception("could not raise the rule_error alert of run %s", run_id)


def resolve_stalled(effects: Effects, *, run: Run) -> None:
    """A run that finished is not stalled: resolve its stalled alert, if one is firing."""
    applier = Applier(effects, run)
    applier.apply(rules.resolve_stalled(applier.states, run.last_step or 0, applier.params))


def sweep_stalled(session: Session, *, now: datetime | None = None,
                  handoff: Handoff | None = None) -> int:
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
        effects = Effects(session, handoff)
        applier = Applier(effects, run)
        window = Window(step=run.last_step or 0, series={}, run_id=run.id,
                        silent_for=(now - run.last_point_at).total_seconds())
        applier.apply(rules.check_stalled(window, applier.states, applier.params))
        fired += applier.fired
        effects.commit()
    return fired
