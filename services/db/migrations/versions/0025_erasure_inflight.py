"""erased people's events in flight: old pseudonym (keyed hash) -> new random one (issue 18, part 3)

Revision ID: 0025_erasure_inflight
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0025_erasure_inflight"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erased_pseudonyms",
        sa.Column("old_key", sa.String(length=64), primary_key=True),
        sa.Column("new_pseudonym", sa.String(length=64), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_erased_pseudonyms_erased_at", "erased_pseudonyms", ["erased_at"])


def downgrade() -> None:
    op.drop_index("ix_erased_pseudonyms_erased_at", table_name="erased_pseudonyms")
    op.drop_table("erased_pseudonyms")
