"""ix_touches_received_at: the touches received since a moment, without a full scan

Revision ID: 0031_touch_arrival_index
Revises: 0030_window_reads (and needs 0012_touch_arrival, which added the column)

The last step of a window's computation credits again the people who received a touch
while it ran (services/analytics/window_credits.py, ``_set_right_what_changed``), and it
holds off the stream's batches while it does: its ``received_at >= :since`` read was a
full scan of ``touches``. Now it reads this index.
"""

from alembic import op

revision = "0031_touch_arrival_index"
down_revision = "0030_window_reads"
branch_labels = None
depends_on = "0012_touch_arrival"  # which added the column


def upgrade() -> None:
    op.create_index("ix_touches_received_at", "touches", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_touches_received_at", table_name="touches")
