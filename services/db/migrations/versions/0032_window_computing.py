"""credit_windows.computing_since and computing_map_version: a window computed in steps

Revision ID: 0032_window_computing
Revises: 0031_touch_arrival_index

A window other than the stream's was computed in one transaction: on SQLite it held the
one write lock for minutes at 1M events, and the stream's batches failed on "database is
locked" after 30 s. It is computed in steps now, a transaction each, and its row says
since when credits of an unfinished computation may be stale (the earliest step's start)
and which stage map they were written with: whichever computation finishes the window
sets right what changed since then, even if the one that began it stopped.
"""

import sqlalchemy as sa
from alembic import op

revision = "0032_window_computing"
down_revision = "0031_touch_arrival_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("credit_windows") as batch:
        batch.add_column(sa.Column("computing_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("computing_map_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credit_windows") as batch:
        batch.drop_column("computing_map_version")
        batch.drop_column("computing_since")
