"""unsubscribe groups: a campaign's SendGrid ASM group, and who left which group

Revision ID: 0009_unsubscribe_groups
Revises: 0001

``campaigns.unsubscribe_group`` names the SendGrid unsubscribe (ASM) group of an email
campaign (NULL: none). ``group_unsubscribes`` keeps each contact's latest choice about a
group, with the event time of that choice (services/domain/unsubscribe_groups.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_unsubscribe_groups"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.add_column(sa.Column("unsubscribe_group", sa.Integer(), nullable=True))
    op.create_table(
        "group_unsubscribes",
        sa.Column("contact_id", BIG_ID, sa.ForeignKey("contacts.id"), primary_key=True),
        sa.Column("group_id", sa.Integer(), primary_key=True),
        sa.Column("unsubscribed", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("group_unsubscribes")
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.drop_column("unsubscribe_group")
