"""holdouts of campaigns and journeys, and their assignments (issue 17)

Revision ID: 0021_experiments
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_experiments"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holdouts",
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "subject_id"),
    )
    op.create_table(
        "holdout_assignments",
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("person", sa.String(length=40), nullable=False),
        sa.Column("arm", sa.String(length=10), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "subject_id", "person"),
    )


def downgrade() -> None:
    op.drop_table("holdout_assignments")
    op.drop_table("holdouts")
