"""local outbox: custom_args and reply_to, as they would go to SendGrid

Revision ID: 0015_outbox_args
Revises: 0001

``GET /api/v1/outbox`` shows exactly what would have gone to SendGrid for each
recipient; each email's ``custom_args`` (ids and pseudonyms only) and its reply address
were not kept. Rows stored before this migration show ``{}`` and ``null``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_outbox_args"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("local_emails") as batch:
        batch.add_column(sa.Column("custom_args", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("reply_to", sa.String(320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("local_emails") as batch:
        batch.drop_column("reply_to")
        batch.drop_column("custom_args")
