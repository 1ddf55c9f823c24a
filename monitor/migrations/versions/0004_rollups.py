"""Pre-aggregated min/max buckets of every series (monitor/rollups.py), filled for the points
already stored.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

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
    # The points stored before this migration, aggregated in chunks of the primary key.
    from sqlalchemy.orm import Session

    from monitor import rollups

    bind = op.get_bind()
    session = Session(bind=bind)
    points = sa.table("points", sa.column("id"), sa.column("series_id"), sa.column("step"),
                      sa.column("value"), sa.column("wall_time"))
    after = 0
    while True:  # bounded: each pass moves past BACKFILL_CHUNK points, until none are left
        rows = bind.execute(sa.select(points.c.id, points.c.series_id, points.c.step,
                                      points.c.value, points.c.wall_time)
                            .where(points.c.id > after).order_by(points.c.id)
                            .limit(BACKFILL_CHUNK)).all()
        if not rows:
            break
        rollups.upsert(session, rollups.aggregate((r[1], r[2], r[3], r[4]) for r in rows))
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_table("point_rollups")
