"""stage_map_version: the stage map's version, so the stream's sink never stages with an
old map

Revision ID: 0029_stage_map_version
Revises: 0028_credit_rows

Red team 5, finding 4. The sink kept the stage map it read for 2 s: events it stored
after ``PUT /api/v1/stage-map`` answered were staged (and credited) with the old map for
good. Now every change of the map bumps ``stage_map_version`` (one row, ``id = 1``) and
each batch of the sink reads it under a shared lock first (SQLite: in its write
transaction), reloading the map when it changed (services/analytics/stage_map.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0029_stage_map_version"
down_revision = "0028_credit_rows"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "stage_map_version",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(table, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("stage_map_version")
