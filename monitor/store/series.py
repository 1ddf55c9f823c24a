"""Series out: raw or downsampled (min/max buckets, from the rollups on long ranges)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.errors import NotFound
from monitor.models import Point, Series
from monitor.store import rollups


@dataclass
class SeriesData:
    key: str
    steps: list[int]
    values: list[float]  # NaN for stored NULLs
    wall_times: list[float]
    count: int
    downsampled: bool
    bucket_steps: int | None = None  # the grid's width when read from the rollups


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


def downsample(steps: list[int], values: list[float],
               max_points: int) -> tuple[list[int], list[float]]:
    """Points already in memory (in step order), downsampled as a series read downsamples
    them: each bucket's smallest and largest finite value, every non-finite one, the first and
    the last. The live feed thins its bursts with this, so a spike is never sampled away there
    either."""
    if len(steps) <= max_points:
        return steps, values
    rows = [(i, step, value, None) for i, (step, value) in enumerate(zip(steps, values))]
    kept = _bucketed(rows, steps[0], steps[-1], max(1, (max_points - 2) // 2))
    return [r[0] for r in kept], [r[1] for r in kept]


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
        t = Point.__table__.c  # Core columns: the ORM's per-row work would double the time
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
