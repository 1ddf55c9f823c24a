"""Loss families and vocabularies: a run's declared or inferred loss family and the series
keys it declared for the rules' roles.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("loss", sa.String(32), nullable=True))
        batch.add_column(sa.Column("loss_inferred", sa.String(32), nullable=True))
        batch.add_column(sa.Column("key_map", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("key_map")
        batch.drop_column("loss_inferred")
        batch.drop_column("loss")
