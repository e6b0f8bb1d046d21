"""credit_windows.read_at: when each kept window was last read (to evict the least used)

Revision ID: 0030_window_reads
Revises: 0028_credit_rows (and needs 0023_read_paths, which made ``credit_windows``)

Credits for a window other than the stream's were computed on its first read and kept for
good: any reader could make the API keep a full copy of the credits for every
``window_days`` from 1 to 3650. Now at most ``WINWIN_MAX_EXTRA_WINDOWS`` such windows are
kept; computing one more drops the least recently read (its credits and its row). A read
records its time at most once a minute. Rows kept before this migration have NULL: they
count as read longest ago.
"""

import sqlalchemy as sa
from alembic import op

revision = "0030_window_reads"
down_revision = "0028_credit_rows"
branch_labels = None
depends_on = "0023_read_paths"


def upgrade() -> None:
    op.add_column("credit_windows", sa.Column("read_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credit_windows") as batch:
        batch.drop_column("read_at")
