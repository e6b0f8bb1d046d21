"""social channel: posts and platform-reported reach

Revision ID: 0002_social
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_social"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "social_posts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column(
            "campaign_id", sa.String(length=40), sa.ForeignKey("campaigns.id"), nullable=False
        ),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "platform", name="uq_social_posts_campaign_platform"),
    )
    op.create_index("ix_social_posts_campaign_id", "social_posts", ["campaign_id"])
    op.create_index("ix_social_posts_published_at", "social_posts", ["published_at"])
    op.create_table(
        "campaign_reach",
        sa.Column(
            "campaign_id", sa.String(length=40), sa.ForeignKey("campaigns.id"), nullable=False
        ),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("impressions", sa.BigInteger(), nullable=False),
        sa.Column("reach", sa.BigInteger(), nullable=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("campaign_id", "platform", "date"),
    )


def downgrade() -> None:
    op.drop_table("campaign_reach")
    op.drop_index("ix_social_posts_published_at", table_name="social_posts")
    op.drop_index("ix_social_posts_campaign_id", table_name="social_posts")
    op.drop_table("social_posts")
