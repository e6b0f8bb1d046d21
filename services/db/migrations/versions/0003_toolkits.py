"""trusted-messenger toolkits

Revision ID: 0003_toolkits
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_toolkits"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "toolkits",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("campaign_id", sa.String(length=40), nullable=False),
        sa.Column("messenger_id", sa.String(length=100), nullable=False),
        sa.Column("token", sa.String(length=200), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "messenger_id"),
        sa.UniqueConstraint("token"),
    )
    op.create_index("ix_toolkits_campaign_id", "toolkits", ["campaign_id"])
    op.create_table(
        "toolkit_links",
        sa.Column("toolkit_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("resource_id", sa.String(length=100), nullable=True),
        sa.Column("link_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["toolkit_id"], ["toolkits.id"]),
        sa.PrimaryKeyConstraint("toolkit_id", "key"),
    )


def downgrade() -> None:
    op.drop_table("toolkit_links")
    op.drop_index("ix_toolkits_campaign_id", table_name="toolkits")
    op.drop_table("toolkits")
