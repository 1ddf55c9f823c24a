"""Pre-aggregated min/max buckets of every series (monitor/store/rollups.py), filled for the
points already stored.

Self-contained on purpose: the bucket widths and the aggregation below are a frozen copy of
what the application did when this migration was written, so that a database migrated today
gets the same rows as one migrated then, whatever the application's code becomes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import math

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BACKFILL_CHUNK = 200_000


def upgrade() -> None:
    op.create_table(
        "point_rollups",
        sa.Column("series_id", sa.BigInteger(), sa.ForeignKey("series.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("level", sa.Integer(), primary_key=True),
        sa.Column("bucket", sa.BigInteger(), primary_key=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("nonfinite", sa.BigInteger(), nullable=False),
        sa.Column("min_value", sa.Double(), nullable=True),
        sa.Column("min_step", sa.BigInteger(), nullable=True),
        sa.Column("min_wall", sa.Double(), nullable=True),
        sa.Column("max_value", sa.Double(), nullable=True),
        sa.Column("max_step", sa.BigInteger(), nullable=True),
        sa.Column("max_wall", sa.Double(), nullable=True),
    )
    # The points stored before this migration, one series at a time (a bucket never spans two
    # series), read in chunks of the primary key.
    bind = op.get_bind()
    points = sa.table("points", sa.column("id"), sa.column("series_id"), sa.column("step"),
                      sa.column("value"), sa.column("wall_time"))
    rollups = sa.table("point_rollups", *[sa.column(c) for c in COLUMNS])
    series_ids = [r[0] for r in bind.execute(sa.select(points.c.series_id).distinct())]
    for sid in series_ids:
        finest: dict[int, list] = {}
        after = 0
        while True:  # bounded: each pass moves past BACKFILL_CHUNK points, until none are left
            rows = bind.execute(sa.select(points.c.id, points.c.step, points.c.value,
                                          points.c.wall_time)
                                .where(points.c.series_id == sid, points.c.id > after)
                                .order_by(points.c.id).limit(BACKFILL_CHUNK)).all()
            if not rows:
                break
            for _id, step, value, wall in rows:
                _add(finest, step, value, wall)
            after = rows[-1][0]
        out = []
        for level, buckets in _levels(finest):
            out.extend({"series_id": sid, "level": level, "bucket": bucket,
                        **dict(zip(COLUMNS[3:], row))} for bucket, row in buckets.items())
        for lo in range(0, len(out), BACKFILL_CHUNK):
            bind.execute(sa.insert(rollups), out[lo:lo + BACKFILL_CHUNK])


LEVELS = (64, 512, 4096, 32768)
COLUMNS = ("series_id", "level", "bucket", "n", "nonfinite", "min_value", "min_step",
           "min_wall", "max_value", "max_step", "max_wall")


def _add(rows: dict[int, list], step: int, value, wall) -> None:
    """One point into its bucket of the finest level: [n, nonfinite, min value, its step, its
    wall time, max value, its step, its wall time]; NULL (NaN) and infinities are counted as
    non-finite and never a minimum or a maximum; the first point wins a tie."""
    row = rows.get(step // LEVELS[0])
    if row is None:
        row = rows[step // LEVELS[0]] = [0, 0, None, None, None, None, None, None]
    row[0] += 1
    if value is None or not math.isfinite(value):
        row[1] += 1
        return
    if row[2] is None or value < row[2]:
        row[2], row[3], row[4] = value, step, wall
    if row[5] is None or value > row[5]:
        row[5], row[6], row[7] = value, step, wall


def _levels(finest: dict[int, list]):
    """(level, {bucket: row}) for every level, each coarser one merged from the one below."""
    rows = finest
    yield LEVELS[0], rows
    for finer, coarser in zip(LEVELS, LEVELS[1:]):
        ratio = coarser // finer
        merged: dict[int, list] = {}
        for bucket, r in rows.items():
            m = merged.get(bucket // ratio)
            if m is None:
                merged[bucket // ratio] = r[:]
                continue
            m[0] += r[0]
            m[1] += r[1]
            if r[2] is not None and (m[2] is None or r[2] < m[2]):
                m[2], m[3], m[4] = r[2], r[3], r[4]
            if r[5] is not None and (m[5] is None or r[5] > m[5]):
                m[5], m[6], m[7] = r[5], r[6], r[7]
        rows = merged
        yield coarser, rows


def downgrade() -> None:
    op.drop_table("point_rollups")
