"""delivery: in-flight sends, template language variants, replies

Revision ID: 0004_delivery
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_delivery"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "inflight_sends",
        sa.Column("send_id", sa.String(40), primary_key=True),
        sa.Column("batch_id", sa.String(40), nullable=False, index=True),
        sa.Column("campaign_id", sa.String(40), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "template_variants",
        sa.Column("template_id", sa.String(40), sa.ForeignKey("templates.id"), primary_key=True),
        sa.Column("language", sa.String(20), primary_key=True),
        sa.Column("subject", sa.Text()),
        sa.Column("html", sa.Text()),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
    )
    op.create_table(
        "replies",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(120), nullable=False, unique=True),
        sa.Column("send_id", sa.String(40), index=True),
        sa.Column("campaign_id", sa.String(40), index=True),
        sa.Column("person", sa.String(40)),
        sa.Column("matched_by", sa.String(20)),
        sa.Column("from_email", sa.String(320)),
        sa.Column("subject", sa.Text()),
        sa.Column("text", sa.Text()),
        sa.Column("html", sa.Text()),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("replies")
    op.drop_table("template_variants")
    op.drop_table("inflight_sends")
