"""dead letters kept in SQL (they outlive the embedded broker)

Revision ID: 0018_dead_letters
Revises: 0001

The worker keeps each dead letter here as well as on the dead-letter topic; on the
embedded broker (memory only) the topic is lost when the broker ends.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_dead_letters"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("letter_id", sa.String(length=300), nullable=False),
        sa.Column("source_topic", sa.String(length=249), nullable=False),
        sa.Column("source_partition", sa.Integer(), nullable=False),
        sa.Column("source_offset", sa.BigInteger(), nullable=False),
        sa.Column("record_index", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("original", sa.LargeBinary(), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("letter_id"),
    )


def downgrade() -> None:
    op.drop_table("dead_letters")
