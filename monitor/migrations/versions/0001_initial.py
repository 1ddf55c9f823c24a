"""Initial schema: runs, series, points, samples, ingested batch ids.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_runs_name", "runs", ["name"])
    op.create_table(
        "series",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.UniqueConstraint("run_id", "key", name="uq_series_run_key"),
    )
    op.create_table(
        "points",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("series_id", sa.BigInteger(), sa.ForeignKey("series.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("wall_time", sa.Double(), nullable=False),
    )
    op.create_index("ix_points_series_step", "points", ["series_id", "step"])
    op.create_table(
        "samples",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("wall_time", sa.Double(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("png", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_samples_run_step", "samples", ["run_id", "step"])
    op.create_table(
        "ingested_batches",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("n_points", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ingested_batches")
    op.drop_table("samples")
    op.drop_table("points")
    op.drop_table("series")
    op.drop_table("runs")
