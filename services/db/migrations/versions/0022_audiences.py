"""audiences: stored segments, and the audience of an email campaign (issue 16)

Revision ID: 0022_audiences
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_audiences"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audiences",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "campaign_audiences",
        sa.Column("campaign_id", sa.String(length=40), nullable=False),
        sa.Column("audience_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"]),
        sa.ForeignKeyConstraint(["audience_id"], ["audiences.id"]),
        sa.PrimaryKeyConstraint("campaign_id"),
    )
    op.create_index("ix_campaign_audiences_audience_id", "campaign_audiences", ["audience_id"])


def downgrade() -> None:
    op.drop_index("ix_campaign_audiences_audience_id", table_name="campaign_audiences")
    op.drop_table("campaign_audiences")
    op.drop_table("audiences")
