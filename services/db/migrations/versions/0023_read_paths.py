"""credit_windows: attribution windows already computed (reads that never rescan)

Revision ID: 0023_read_paths
Revises: 0001

Reading a window other than the stream's looked for uncredited events with an
anti-join over every stage event on each read. Now a window's row records the stored
data's generation it was computed for (row 0: the current generation, bumped by the
stream's sink), so an up-to-date window costs one lookup.
"""

import sqlalchemy as sa
from alembic import op

revision = "0023_read_paths"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit_windows",
        sa.Column("window_days", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("window_days"),
    )


def downgrade() -> None:
    op.drop_table("credit_windows")
