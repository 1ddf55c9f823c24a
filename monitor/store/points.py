"""Points in: a batch's id claimed, its series made, its points inserted (COPY on
PostgreSQL), its rollups upserted and the run touched, in the caller's transaction."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from monitor.db import is_postgres, is_psycopg
from monitor.errors import BadRequest
from monitor.models import IngestedBatch, Point, Run, Series, utcnow
from monitor.schemas import PointsBatch
from monitor.store import rollups

POINTS = Point.__table__


def claim_batch(*, session: Session, run_id: str, batch_id: str, kind: str, n_points: int) -> bool:
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


def touch_run(*, session: Session, run_id: str, last_step: int | None) -> None:
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
    if not claim_batch(session=session, run_id=run_id, batch_id=batch.batch_id, kind="points",
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
    touch_run(session=session, run_id=run_id, last_step=last_step)
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
    if is_psycopg(session):
        # COPY: the fastest way in, several times SQLAlchemy's batched INSERTs
        rollups.copy_rows(session, "points", ("series_id", "step", "value", "wall_time"), rows,
                          ["int8", "int8", "float8", "float8"])
        return
    session.execute(insert(POINTS), [
        {"series_id": r[0], "step": r[1], "value": r[2], "wall_time": r[3]} for r in rows])
