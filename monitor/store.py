"""Queries. Each takes keyword-only arguments and a session; route handlers stay thin."""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor import rollups
from monitor.db import is_postgres
from monitor.errors import BadRequest, NotFound, RunIdTaken, unknown_alert, unknown_run
from monitor.models import Alert, AlertEvent, IngestedBatch, Point, Run, Sample, Series, utcnow
from monitor.notify import notify_run
from monitor.rules.config import validate_overrides
from monitor.schemas import PointsBatch, RunCreate

POINTS = Point.__table__


@dataclass
class SeriesData:
    key: str
    steps: list[int]
    values: list[float]  # NaN for stored NULLs
    wall_times: list[float]
    count: int
    downsampled: bool
    bucket_steps: int | None = None  # the grid's width when read from the rollups


def new_run_id() -> str:
    return secrets.token_hex(8)


def get_run(*, session: Session, run_id: str) -> Run:
    """The run with this id, or NotFound."""
    run = session.get(Run, run_id)
    if run is None:
        raise unknown_run(run_id)
    return run


def create_or_resume_run(*, session: Session, run_create: RunCreate,
                         project: str = "default") -> tuple[Run, bool]:
    """Create a run in ``project``, or return the existing one (by id, or by name with resume);
    True if created. An id that is another project's run raises RunIdTaken before anything is
    changed (a resumed run's rule settings and check-in interval are merged only after)."""
    existing = None
    if run_create.id is not None:
        existing = session.get(Run, run_create.id)
        if existing is not None and existing.project != project:
            session.rollback()
            raise RunIdTaken(existing.id, existing.project)
    elif run_create.resume:
        existing = session.scalars(
            select(Run).where(Run.name == run_create.name, Run.project == project)
            .order_by(Run.created_at.desc()).limit(1)
        ).first()
    if existing is not None:
        # A resumed run keeps its settings; those the client sends now are merged on top.
        if run_create.rules or run_create.checkin_interval:
            _merge_rules(existing, run_create.rules)
            existing.checkin_interval = run_create.checkin_interval or existing.checkin_interval
            session.commit()
        return existing, False
    overrides, silenced = validate_overrides(run_create.rules)
    run = Run(id=run_create.id or new_run_id(), name=run_create.name, project=project,
              config=run_create.config,
              status="running", rules=overrides, silenced=silenced,
              checkin_interval=run_create.checkin_interval)
    session.add(run)
    try:
        session.commit()
    except IntegrityError:  # the same id created concurrently (a retried request): resume it
        session.rollback()
        existing = get_run(session=session, run_id=run_create.id or run.id)
        if existing.project != project:  # created meanwhile, in another project
            raise RunIdTaken(existing.id, existing.project) from None
        return existing, False
    return run, True


def list_runs(*, session: Session, name: str | None, limit: int, offset: int,
              project: str | None = None) -> tuple[list[Run], int]:
    """Runs, newest first, optionally only those with a given name (or in a project)."""
    query = select(Run)
    count_query = select(func.count()).select_from(Run)
    if project is not None:
        query = query.where(Run.project == project)
        count_query = count_query.where(Run.project == project)
    if name is not None:
        query = query.where(Run.name == name)
        count_query = count_query.where(Run.name == name)
    runs = session.scalars(query.order_by(Run.created_at.desc()).limit(limit).offset(offset)).all()
    return list(runs), session.scalar(count_query) or 0


def series_keys(*, session: Session, run_ids: list[str]) -> dict[str, list[str]]:
    """The series keys of each run, sorted."""
    keys: dict[str, list[str]] = {run_id: [] for run_id in run_ids}
    if run_ids:
        rows = session.execute(
            select(Series.run_id, Series.key).where(Series.run_id.in_(run_ids)).order_by(Series.key)
        )
        for run_id, key in rows:
            keys[run_id].append(key)
    return keys


def _claim_batch(*, session: Session, run_id: str, batch_id: str, kind: str, n_points: int) -> bool:
    """Record a batch id inside the open transaction; False if it was already stored.

    An ``INSERT ... ON CONFLICT DO NOTHING``, not a savepoint: on SQLite a savepoint opened
    before the transaction's first write *is* the transaction, and releasing it commits, so
    the id would be stored even if the batch were then refused or the process died."""
    insert_fn = postgresql.insert if is_postgres(session) else sqlite.insert
    table = IngestedBatch.__table__
    claimed = session.execute(insert_fn(table).values(
        batch_id=batch_id, run_id=run_id, kind=kind, n_points=n_points,
        received_at=utcnow()).on_conflict_do_nothing().returning(table.c.batch_id)).first()
    return claimed is not None


def _series_ids(*, session: Session, run_id: str, keys: list[str],
                max_series: int | None = None) -> dict[str, int]:
    ids = dict(session.execute(
        select(Series.key, Series.id).where(Series.run_id == run_id, Series.key.in_(keys))
    ).all())
    missing = [k for k in keys if k not in ids]
    if missing and max_series is not None:
        have = session.scalar(select(func.count()).select_from(Series)
                              .where(Series.run_id == run_id)) or 0
        if have + len(missing) > max_series:
            session.rollback()
            raise BadRequest(f"the run has {have} series and this batch would add "
                             f"{len(missing)}; the limit is {max_series} series per run "
                             "(GANWATCH_MAX_SERIES_PER_RUN); nothing of the batch was stored")
    if missing:
        insert_fn = postgresql.insert if is_postgres(session) else sqlite.insert
        stmt = insert_fn(Series.__table__).on_conflict_do_nothing(
            index_elements=["run_id", "key"])
        session.execute(stmt, [{"run_id": run_id, "key": k} for k in missing])
        ids.update(session.execute(
            select(Series.key, Series.id).where(Series.run_id == run_id, Series.key.in_(missing))
        ).all())
    return ids


def _touch_run(*, session: Session, run_id: str, last_step: int | None) -> None:
    values: dict = {"updated_at": utcnow()}
    if last_step is not None:
        values["last_point_at"] = values["updated_at"]
        # SQLite spells the two-argument maximum max(); PostgreSQL spells it greatest().
        greatest = func.greatest if is_postgres(session) else func.max
        values["last_step"] = greatest(func.coalesce(Run.last_step, last_step), last_step)
    session.execute(update(Run).where(Run.id == run_id).values(**values))


@dataclass
class StoredBatch:
    """What ``store_batch`` stored: the points' count, their steps, the run's last step
    before them, and the batch's values by key (None for NaN), for evaluation from memory."""

    n_points: int
    steps: set[int]
    stored_up_to: int | None
    values: dict[str, tuple[list[int], list[float | None]]]


def store_batch(*, session: Session, run: Run, batch: PointsBatch,
                max_series: int | None = None) -> StoredBatch | None:
    """Store a columnar batch in the open transaction (the run's row locked by the caller):
    claims its id, makes its series, inserts its points, upserts the rollups and touches the
    run. None (and the transaction rolled back) if the batch was stored before."""
    run_id = run.id
    stored_up_to = run.last_step
    n_points = sum(len(cols.steps) for cols in batch.series.values())
    if not _claim_batch(session=session, run_id=run_id, batch_id=batch.batch_id, kind="points",
                        n_points=n_points):
        session.rollback()
        return None
    ids = _series_ids(session=session, run_id=run_id, keys=list(batch.series),
                      max_series=max_series)
    now = time.time()
    rows: list[tuple] = []  # (series id, step, value or None for NaN, wall time)
    values: dict[str, list[float | None]] = {}
    last_step: int | None = None
    for key, cols in batch.series.items():
        sid = ids[key]
        times = cols.wall_times or [now] * len(cols.steps)
        values[key] = [None if v != v else v for v in cols.values]
        rows.extend(zip([sid] * len(cols.steps), cols.steps, values[key], times))
        if cols.steps:
            top = max(cols.steps)
            last_step = top if last_step is None else max(last_step, top)
    if rows:
        _insert_points(session, rows)
        rollups.upsert(session, rollups.aggregate(rows))
    _touch_run(session=session, run_id=run_id, last_step=last_step)
    steps = {s for cols in batch.series.values() for s in cols.steps}
    return StoredBatch(n_points=n_points, steps=steps, stored_up_to=stored_up_to, values={
        key: (cols.steps, values[key]) for key, cols in batch.series.items()})


def _insert_points(session: Session, rows: list[tuple]) -> None:
    if not is_postgres(session):
        # the driver's executemany: SQLAlchemy's per-row parameter handling costs as much as
        # SQLite's insert itself
        session.connection().exec_driver_sql(
            "INSERT INTO points (series_id, step, value, wall_time) VALUES (?, ?, ?, ?)", rows)
        return
    if session.get_bind().dialect.driver == "psycopg":
        # COPY: the fastest way in, several times SQLAlchemy's batched INSERTs
        rollups.copy_rows(session, "points", ("series_id", "step", "value", "wall_time"), rows,
                          ["int8", "int8", "float8", "float8"])
        return
    session.execute(insert(POINTS), [
        {"series_id": r[0], "step": r[1], "value": r[2], "wall_time": r[3]} for r in rows])


def _series_id(*, session: Session, run_id: str, key: str) -> int:
    sid = session.scalar(select(Series.id).where(Series.run_id == run_id, Series.key == key))
    if sid is None:
        raise NotFound(f"run '{run_id}' has no series '{key}'")
    return sid


def _bucketed(rows, lo: int, hi: int, n_buckets: int) -> list[tuple]:
    """Even-split downsampling of (id, step, value, wall_time) rows in (step, id) order: each
    bucket's smallest and largest finite point (the first in step order on ties), every
    non-finite point, and the first and last points; as (step, value, wall_time)."""
    span = hi - lo + 1
    found = rollups.Extremes()
    for pid, step, value, wall in rows:
        found.offer((step - lo) * n_buckets // span, pid, step, value, wall)
    for pid, step, value, wall in (rows[0], rows[-1]) if rows else ():
        found.keep(pid, step, value, wall)
    kept = found.points()
    return [kept[pid] for pid in sorted(kept, key=lambda pid: (kept[pid][0], pid))]


# A read reads at most this many times max_points points one by one (or raw_limit, if more;
# the rest comes from the pre-aggregated buckets): a read costs about what it returns, however
# long the series.
RAW_READ_FACTOR = 2


def read_series(*, session: Session, run_id: str, key: str, max_points: int,
                min_step: int | None = None, max_step: int | None = None,
                raw_limit: int = 0) -> SeriesData:
    """A series, downsampled into min/max buckets when it has more than max_points points.

    The first and last points and every non-finite value are always kept, so a spike or a NaN
    is never sampled away; the result can exceed max_points by the number of non-finite values.
    A range too short for the stored buckets at the resolution asked is read point by point
    only up to ``max(RAW_READ_FACTOR * max_points, raw_limit)`` points; beyond, from the finest
    stored buckets (fewer points than asked).
    """
    sid = _series_id(session=session, run_id=run_id, key=key)
    where = [Point.series_id == sid]
    if min_step is not None:
        where.append(Point.step >= min_step)
    if max_step is not None:
        where.append(Point.step <= max_step)
    # The first and last points by the (series, step) index, the count from the pre-aggregated
    # buckets: neither walks the points of a long range.
    ends = [session.execute(select(Point.step, Point.value, Point.wall_time).where(*where)
                            .order_by(order, Point.id).limit(1)).first()
            for order in (Point.step.asc(), Point.step.desc())]
    lo, hi = (ends[0][0], ends[1][0]) if ends[0] is not None else (None, None)
    count = 0 if lo is None else rollups.count_points(session, sid, lo, hi)
    rows, bucket_steps = None, None
    if count <= max_points:
        rows = session.execute(
            select(Point.step, Point.value, Point.wall_time).where(*where)
            .order_by(Point.step, Point.id)
        ).all()
        downsampled = False
    else:
        # a grid of stored buckets: one more bucket may straddle it, and the ends are extra
        rolled = rollups.read_bucketed(session, sid, lo, hi, max(1, (max_points - 4) // 2),
                                       ends)
        if rolled is not None:
            rows, bucket_steps = rolled
    if rows is not None and count > max_points:
        downsampled = True
    elif count > max(RAW_READ_FACTOR * max_points, raw_limit):
        # too short a range for the grid asked (fewer than ~32 steps a bucket) and too many
        # points to read one by one: the finest stored buckets, fewer than asked
        rows, bucket_steps = rollups.read_bucketed(session, sid, lo, hi,
                                                   max(1, (max_points - 4) // 2), ends,
                                                   level=rollups.LEVELS[0])
        downsampled = True
    elif count > max_points:
        # too short a range for the pre-aggregated buckets (fewer than ~32 steps a bucket):
        # at most max(RAW_READ_FACTOR * max_points, raw_limit) points, read and bucketed here
        t = POINTS.c  # Core columns: the ORM's per-row work would double the time
        raw = session.connection().execute(
            select(t.id, t.step, t.value, t.wall_time)
            .where(t.series_id == sid, t.step >= lo, t.step <= hi)
            .order_by(t.step, t.id)).all()
        rows = _bucketed(raw, lo, hi, max(1, (max_points - 2) // 2))
        downsampled = True
    nan = math.nan
    return SeriesData(
        key=key,
        steps=[r[0] for r in rows],
        values=[nan if r[1] is None else r[1] for r in rows],
        wall_times=[r[2] for r in rows],
        count=count,
        downsampled=downsampled,
        bucket_steps=bucket_steps,
    )


def add_sample(*, session: Session, run_id: str, key: str, step: int, wall_time: float,
               width: int, height: int, png: bytes,
               batch_id: str | None) -> tuple[Sample | None, bool]:
    """Store a PNG sample grid; (None, True) when its batch id was already stored."""
    get_run(session=session, run_id=run_id)
    if batch_id is not None and not _claim_batch(session=session, run_id=run_id,
                                                 batch_id=batch_id, kind="sample", n_points=0):
        session.rollback()
        return None, True
    sample = Sample(run_id=run_id, key=key, step=step, wall_time=wall_time, width=width,
                    height=height, png=png)
    session.add(sample)
    _touch_run(session=session, run_id=run_id, last_step=None)
    notify_run(session, run_id)
    session.commit()
    return sample, False


# A sample grid without its PNG bytes, as lists and the live stream return it.
SAMPLE_COLUMNS = (Sample.id, Sample.run_id, Sample.key, Sample.step, Sample.wall_time,
                  Sample.width, Sample.height)


def list_samples(*, session: Session, run_id: str, key: str | None, limit: int,
                 offset: int) -> tuple[list, int]:
    """A run's samples (without their PNG bytes), in step order."""
    get_run(session=session, run_id=run_id)
    where = [Sample.run_id == run_id]
    if key is not None:
        where.append(Sample.key == key)
    rows = session.execute(
        select(*SAMPLE_COLUMNS).where(*where).order_by(Sample.step, Sample.id)
        .limit(limit).offset(offset)
    ).all()
    total = session.scalar(select(func.count()).select_from(Sample).where(*where)) or 0
    return list(rows), total


def get_sample_png(*, session: Session, run_id: str, sample_id: int) -> bytes:
    """The PNG bytes of one sample, or NotFound."""
    png = session.scalar(select(Sample.png).where(Sample.run_id == run_id, Sample.id == sample_id))
    if png is None:
        raise NotFound(f"run '{run_id}' has no sample {sample_id}")
    return png


# -- alerts and rule settings ------------------------------------------------------------------

ALERT_STATUSES = ("pending", "firing", "resolved")


def run_health(*, session: Session, run_ids: list[str]) -> dict[str, tuple[str, int, bool]]:
    """(health, firing alerts, stalled?) per run: critical > warning > ok over firing alerts."""
    out = {run_id: ("ok", 0, False) for run_id in run_ids}
    if not run_ids:
        return out
    rows = session.execute(
        select(Alert.run_id, Alert.severity, Alert.rule)
        .where(Alert.run_id.in_(run_ids), Alert.status == "firing"))
    for run_id, severity, rule in rows:
        health, n, stalled = out[run_id]
        if severity == "critical" or health == "critical":
            health = "critical"
        else:
            health = "warning"
        out[run_id] = (health, n + 1, stalled or rule == "stalled")
    return out


def list_alerts(*, session: Session, run_id: str | None, status: str | None,
                rule: str | None, limit: int, offset: int,
                project: str | None = None) -> tuple[list[Alert], int]:
    """Alerts, newest first. ``status`` is one of ALERT_STATUSES, ``open`` (pending or
    firing), or a comma-separated list of them."""
    where = []
    if project is not None:
        where.append(Alert.run_id.in_(select(Run.id).where(Run.project == project)))
    if run_id is not None:
        get_run(session=session, run_id=run_id)
        where.append(Alert.run_id == run_id)
    if status:
        wanted = set()
        for part in status.split(","):
            part = part.strip()
            if part == "open":
                wanted |= {"pending", "firing"}
            elif part in ALERT_STATUSES:
                wanted.add(part)
            else:
                raise BadRequest(f"status must be open, {', '.join(ALERT_STATUSES)} or a "
                                 f"comma-separated list of them, not {part!r}")
        where.append(Alert.status.in_(sorted(wanted)))
    if rule is not None:
        where.append(Alert.rule == rule)
    alerts = session.scalars(select(Alert).where(*where)
                             .order_by(Alert.id.desc()).limit(limit).offset(offset)).all()
    total = session.scalar(select(func.count()).select_from(Alert).where(*where)) or 0
    return list(alerts), total


def get_alert(*, session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise unknown_alert(alert_id)
    return alert


def ack_alert(*, session: Session, alert_id: int, by: str | None) -> Alert:
    """Acknowledge an alert (idempotent: the first acknowledgement's time is kept)."""
    alert = get_alert(session=session, alert_id=alert_id)
    if alert.acknowledged_at is None:
        alert.acknowledged_at = utcnow()
        alert.acknowledged_by = by
        session.commit()
    return alert


def list_alert_events(*, session: Session, run_id: str | None, after_id: int,
                      limit: int, project: str | None = None) -> list[AlertEvent]:
    """Notifications (firing, escalated, resolved) in the order they happened."""
    where = [AlertEvent.id > after_id]
    if project is not None:
        where.append(AlertEvent.run_id.in_(select(Run.id).where(Run.project == project)))
    if run_id is not None:
        get_run(session=session, run_id=run_id)
        where.append(AlertEvent.run_id == run_id)
    return list(session.scalars(select(AlertEvent).where(*where)
                                .order_by(AlertEvent.id).limit(limit)).all())


def update_run_rules(*, session: Session, run_id: str, changes: dict) -> Run:
    """Merge rule settings into a run's: {"rule": {"param": value or None}}, {"rule": false}
    silences, {"rule": true} unsilences. Applies from the next evaluation on."""
    run = get_run(session=session, run_id=run_id)
    _merge_rules(run, changes)
    session.commit()
    return run


def _merge_rules(run: Run, changes: dict) -> None:
    resets = {rule: [k for k, v in params.items() if v is None]
              for rule, params in changes.items() if isinstance(params, dict)}
    clean_changes = {rule: ({k: v for k, v in params.items() if v is not None}
                            if isinstance(params, dict) else params)
                     for rule, params in changes.items()}
    try:
        overrides, silence = validate_overrides(clean_changes)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    merged = {rule: dict(params) for rule, params in (run.rules or {}).items()}
    for rule, names in resets.items():
        for name in names:
            merged.get(rule, {}).pop(name, None)
    for rule, params in overrides.items():
        merged.setdefault(rule, {}).update(params)
    silenced = set(run.silenced or [])
    silenced |= set(silence)
    silenced -= {rule for rule, value in changes.items() if value is True}
    run.rules = {rule: params for rule, params in merged.items() if params}
    run.silenced = sorted(silenced)
