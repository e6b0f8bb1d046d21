"""content tests (A/B/n) of email campaigns and who got which variant (issue 17)

Revision ID: 0026_variants
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0026_variants"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "content_tests",
        sa.Column("campaign_id", sa.String(length=40), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("test_share", sa.Float(), nullable=False),
        sa.Column("metric", sa.String(length=10), nullable=False),
        sa.Column("decide_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("chosen", sa.Integer(), nullable=True),
        sa.Column("decision", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("campaign_id"),
    )
    op.create_table(
        "variant_assignments",
        sa.Column("campaign_id", sa.String(length=40), nullable=False),
        sa.Column("person", sa.String(length=40), nullable=False),
        sa.Column("variant", sa.Integer(), nullable=False),
        sa.Column("tested", sa.Boolean(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "person"),
    )


def downgrade() -> None:
    op.drop_table("variant_assignments")
    op.drop_table("content_tests")
