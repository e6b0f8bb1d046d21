"""throttle: at most so many emails an hour for one campaign

Revision ID: 0027_throttle
Revises: 0001

``campaigns.throttle_per_hour`` (NULL: as fast as ``WINWIN_EMAIL_MAX_PER_SECOND`` allows)
caps one email campaign's sends in any hour (services/campaigns/dispatch.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0027_throttle"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.add_column(sa.Column("throttle_per_hour", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.drop_column("throttle_per_hour")
