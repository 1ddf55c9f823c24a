"""Pre-aggregated min/max buckets of every series, so a chart of a million-point run reads
thousands of rows, not a million.

For each series and each width in ``LEVELS`` (steps), a row per bucket ``step // width`` holds
the number of points, the smallest and the largest finite value with the step (and wall time)
where each occurred, and how many values were non-finite. Ingest keeps them up to date in the
batch's own transaction (an upsert that merges a batch's partial bucket into the stored one), so
they are always exactly the points stored.

A downsampled read over ``[lo, hi]`` into ``nb`` buckets picks the coarsest level whose grid is
less than twice as coarse as asked (between ``nb / 2`` and ``nb + 1`` buckets): at most
``8 * nb`` rollup rows, usually about ``nb``, plus the raw points of the
two partial buckets at the ends of the range and the non-finite points themselves (always
shown, as in the raw path). Its output buckets are whole numbers of stored buckets (their
width is returned to the caller, and by the API as ``bucket_steps``), so each one's min and
max are exact. A range too short for the finest level is read raw, split evenly.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable

from sqlalchemy import (
    Column,
    MetaData,
    Table,
    and_,
    case,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from monitor.db import is_postgres
from monitor.models import Point, point_rollups

LEVELS = (64, 512, 4096, 32768)  # a level 8 cost PostgreSQL ingest a sixth; short reads are raw
FLOAT_MAX = sys.float_info.max



class Extremes:
    """Downsampling's collector: per output bucket, the smallest and the largest finite point
    offered (the first offered wins a tie), and every non-finite point as offered. Points are
    kept under a key the caller chooses (what makes two offers the same point)."""

    def __init__(self) -> None:
        self.kept: dict = {}                # key -> (step, value, wall time): non-finite
        self.best: dict[int, list] = {}     # bucket -> [min key, step, value, wall, max ...]
        self.always: dict = {}              # key -> (step, value, wall time): see keep()

    def offer(self, bucket: int, key, step: int, value: float | None, wall: float) -> None:
        if value is None or not -FLOAT_MAX <= value <= FLOAT_MAX:
            self.kept[key] = (step, value, wall)
            return
        cur = self.best.get(bucket)
        if cur is None:
            self.best[bucket] = [key, step, value, wall, key, step, value, wall]
            return
        if value < cur[2]:
            cur[0:4] = key, step, value, wall
        if value > cur[6]:
            cur[4:8] = key, step, value, wall

    def keep(self, key, step: int, value: float | None, wall: float) -> None:
        """A point shown whatever it is (the first and last of a range)."""
        self.always[key] = (step, value, wall)

    def points(self) -> dict:
        """key -> (step, value, wall time): the non-finite points offered, then each bucket's
        extremes, then the points kept, in that order."""
        points = dict(self.kept)
        for cur in self.best.values():
            points[cur[0]] = tuple(cur[1:4])
            points[cur[4]] = tuple(cur[5:8])
        points.update(self.always)
        return points


def aggregate(points: Iterable[tuple[int, int, float | None, float]]) -> dict[tuple, list]:
    """(series id, step, value or None for NaN, wall time) -> {(series, level, bucket): row}
    where row = [n, nonfinite, min_v, min_step, min_wall, max_v, max_step, max_wall].

    The finest level is built from the points, each coarser one from the level below it."""
    level = LEVELS[0]
    rows: dict[tuple, list] = {}
    for sid, step, value, wall in points:
        key = (sid, step // level)
        row = rows.get(key)
        if row is None:
            row = rows[key] = [0, 0, None, None, None, None, None, None]
        row[0] += 1
        if value is None or not math.isfinite(value):
            row[1] += 1
            continue
        if row[2] is None or value < row[2]:
            row[2], row[3], row[4] = value, step, wall
        if row[5] is None or value > row[5]:
            row[5], row[6], row[7] = value, step, wall
    out = {(sid, level, bucket): row for (sid, bucket), row in rows.items()}
    for finer, coarser in zip(LEVELS, LEVELS[1:]):
        ratio = coarser // finer
        merged: dict[tuple, list] = {}
        for (sid, bucket), r in rows.items():
            key = (sid, bucket // ratio)
            m = merged.get(key)
            if m is None:
                merged[key] = r[:]
                continue
            m[0] += r[0]
            m[1] += r[1]
            if r[2] is not None and (m[2] is None or r[2] < m[2]):
                m[2], m[3], m[4] = r[2], r[3], r[4]
            if r[5] is not None and (m[5] is None or r[5] > m[5]):
                m[5], m[6], m[7] = r[5], r[6], r[7]
        rows = merged
        out.update({(sid, coarser, bucket): row for (sid, bucket), row in rows.items()})
    return out


COLUMNS = ("series_id", "level", "bucket", "n", "nonfinite", "min_value", "min_step",
           "min_wall", "max_value", "max_step", "max_wall")
COLUMN_TYPES = ["int8", "int4", "int8", "int8", "int8", "float8", "int8", "float8", "float8",
                "int8", "float8"]


def _upsert_statement(postgres: bool, source: Table | None = None):
    """INSERT ... ON CONFLICT DO UPDATE merging into the stored row: of one row of parameters,
    or of every row of ``source`` (a table with the same columns)."""
    insert = postgresql.insert if postgres else sqlite.insert
    stmt = insert(point_rollups)
    if source is not None:
        # in key order: concurrent upserts lock shared buckets in the same order
        stmt = stmt.from_select(list(COLUMNS), select(*[source.c[c] for c in COLUMNS]).order_by(
            source.c.series_id, source.c.level, source.c.bucket))
    new, old = stmt.excluded, point_rollups.c
    take_min = or_(old.min_value.is_(None),
                   and_(new.min_value.is_not(None), new.min_value < old.min_value))
    take_max = or_(old.max_value.is_(None),
                   and_(new.max_value.is_not(None), new.max_value > old.max_value))
    return stmt.on_conflict_do_update(
        index_elements=[old.series_id, old.level, old.bucket],
        set_={
            "n": old.n + new.n, "nonfinite": old.nonfinite + new.nonfinite,
            "min_value": case((take_min, new.min_value), else_=old.min_value),
            "min_step": case((take_min, new.min_step), else_=old.min_step),
            "min_wall": case((take_min, new.min_wall), else_=old.min_wall),
            "max_value": case((take_max, new.max_value), else_=old.max_value),
            "max_step": case((take_max, new.max_step), else_=old.max_step),
            "max_wall": case((take_max, new.max_wall), else_=old.max_wall),
        })


_SQLITE_UPSERT: tuple[str, list[str]] | None = None
# a session's own staging table for the batch's rows (PostgreSQL), emptied at commit
_PG_STAGING = Table("rollup_batch", MetaData(), *[Column(c.name, c.type) for c in point_rollups.c])


def upsert(session: Session, aggregates: dict[tuple, list]) -> None:
    """Merge batch aggregates into the stored rollups (insert, or combine with the row there)."""
    global _SQLITE_UPSERT
    if not aggregates:
        return
    # sorted: two transactions upserting the same buckets take their locks in the same order
    rows = sorted(((sid, level, bucket, *r) for (sid, level, bucket), r in aggregates.items()),
                  key=lambda r: (r[0], r[1], r[2]))
    if not is_postgres(session):
        # The same statement, compiled once and run through the driver's executemany: on
        # SQLite, SQLAlchemy's per-row parameter handling would cost more than the upsert.
        if _SQLITE_UPSERT is None:
            compiled = _upsert_statement(False).compile(dialect=session.get_bind().dialect)
            _SQLITE_UPSERT = (compiled.string, [COLUMNS.index(n) for n in compiled.positiontup])
        sql, order = _SQLITE_UPSERT
        session.connection().exec_driver_sql(sql, [tuple(r[i] for i in order) for r in rows])
        return
    # PostgreSQL: COPY the rows into a temporary table, then one upsert from it (psycopg's
    # executemany costs a round trip a row, and a multi-row VALUES costs SQLAlchemy a compile)
    connection = session.connection()
    record = connection.connection  # the pooled DBAPI connection: its temp table lives on it
    if not record.info.get("rollup_staging"):
        session.execute(text(
            f"CREATE TEMP TABLE IF NOT EXISTS {_PG_STAGING.name} (LIKE point_rollups) "
            "ON COMMIT DELETE ROWS"))
        record.info["rollup_staging"] = True
    copy_rows(session, _PG_STAGING.name, COLUMNS, rows, COLUMN_TYPES)
    session.execute(_upsert_statement(True, _PG_STAGING))  # emptied at commit


def copy_rows(session: Session, table: str, columns, rows, types: list[str]) -> None:
    """PostgreSQL's binary COPY FROM STDIN, in the session's transaction (psycopg 3)."""
    driver = session.connection().connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def count_points(session: Session, sid: int, lo: int, hi: int) -> int:
    """Points of a series with lo <= step <= hi, from the rollups: the whole buckets of the
    coarsest level, then of finer ones on what is left at the ends, then the raw points of the
    last few steps; about ten small queries however long the range."""
    total = 0
    segments = [(lo, hi)]
    for level in reversed(LEVELS):
        rest = []
        for a, b in segments:
            first, last = -(-a // level), (b + 1) // level - 1
            if first > last:
                rest.append((a, b))
                continue
            total += session.scalar(
                select(func.coalesce(func.sum(point_rollups.c.n), 0))
                .where(point_rollups.c.series_id == sid, point_rollups.c.level == level,
                       point_rollups.c.bucket >= first, point_rollups.c.bucket <= last)) or 0
            rest += [(a, first * level - 1), ((last + 1) * level, b)]
        segments = [(a, b) for a, b in rest if a <= b]
    for a, b in segments:
        total += session.scalar(select(func.count()).select_from(Point).where(
            Point.series_id == sid, Point.step >= a, Point.step <= b)) or 0
    return int(total)


def level_for(span: int, n_buckets: int) -> int | None:
    """The coarsest level whose grid (whole buckets of it, at least span / n_buckets steps
    wide) is less than twice as coarse as asked, or None (read the raw points)."""
    wanted = span / max(1, n_buckets)
    fitting = [lv for lv in LEVELS if lv * -(-wanted // lv) < 2 * wanted]
    return fitting[-1] if fitting else None


def read_bucketed(session: Session, sid: int, lo: int, hi: int, n_buckets: int,
                  ends: tuple, level: int | None = None
                  ) -> tuple[list[tuple[int, float | None, float]], int] | None:
    """The min and max (step, value or None for NaN, wall time) of each bucket of a grid of
    whole rollup buckets over [lo, hi], the first and last points (``ends``, as the caller
    read them), and every non-finite point, with the grid's width in steps; None when the
    range is too short for the rollups.

    The grid: buckets ``width`` steps wide starting at multiples of ``width`` (a multiple of
    the level), the fewest that make at most ``n_buckets + 1`` buckets over the range; so each
    output bucket is made of whole stored buckets and its min and max are exact.

    ``level``: use this level whatever the range (the finest, for a range too short for
    ``level_for``: fewer buckets than asked, and no more rows read than there are buckets).
    The partial buckets at the ends of the range are not read point by point: the database
    finds each one's extremes (a partial bucket lies within one output bucket).
    """
    span = hi - lo + 1
    if level is None:
        level = level_for(span, n_buckets)
    if level is None:
        return None
    width = level * -(-span // (n_buckets * level))
    origin = lo // width
    first_full = -(-lo // level)           # buckets wholly inside [lo, hi]
    last_full = (hi + 1) // level - 1
    found = Extremes()

    def offer(step: int, value: float | None, wall: float) -> None:
        found.offer(step // width - origin, (step, value), step, value, wall)

    def raw(a: int, b: int, nonfinite_only: bool = False):
        where = [Point.series_id == sid, Point.step >= a, Point.step <= b]
        if nonfinite_only:
            where.append(or_(Point.value.is_(None), Point.value > FLOAT_MAX,
                             Point.value < -FLOAT_MAX))
        return session.execute(select(Point.step, Point.value, Point.wall_time).where(*where))

    def extremes(a: int, b: int):
        """The smallest and the largest finite point of [a, b] (the first in step order on
        ties) and every non-finite one: a few rows however many points the range holds."""
        where = [Point.series_id == sid, Point.step >= a, Point.step <= b,
                 Point.value.is_not(None), Point.value <= FLOAT_MAX, Point.value >= -FLOAT_MAX]
        query = select(Point.step, Point.value, Point.wall_time).where(*where).limit(1)
        for order in (Point.value.asc(), Point.value.desc()):
            row = session.execute(query.order_by(order, Point.step, Point.id)).first()
            if row is not None:
                yield row
        yield from raw(a, b, True)

    if first_full <= last_full:
        rows = session.execute(
            select(point_rollups.c.bucket, point_rollups.c.nonfinite, point_rollups.c.min_value,
                   point_rollups.c.min_step, point_rollups.c.min_wall, point_rollups.c.max_value,
                   point_rollups.c.max_step, point_rollups.c.max_wall)
            .where(point_rollups.c.series_id == sid, point_rollups.c.level == level,
                   point_rollups.c.bucket >= first_full, point_rollups.c.bucket <= last_full))
        nonfinite_buckets = []
        for bucket, nonfinite, min_v, min_s, min_w, max_v, max_s, max_w in rows:
            if min_v is not None:
                offer(min_s, min_v, min_w)
                offer(max_s, max_v, max_w)
            if nonfinite:
                nonfinite_buckets.append(bucket)
        for bucket in nonfinite_buckets:
            for step, value, wall in raw(bucket * level, bucket * level + level - 1, True):
                offer(step, value, wall)
        edges = [(lo, first_full * level - 1), ((last_full + 1) * level, hi)]
    else:  # no whole bucket: at most two partial ones
        cut = (lo // level + 1) * level
        edges = [(lo, min(hi, cut - 1)), (cut, hi)]
    for a, b in edges:
        if a <= b:
            for step, value, wall in extremes(a, b):
                offer(step, value, wall)
    for step, value, wall in ends:
        found.keep((step, value), step, value, wall)
    return sorted(found.points().values(), key=lambda p: p[0]), width
