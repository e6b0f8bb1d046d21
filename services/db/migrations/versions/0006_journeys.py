"""journeys, follow-up lists, identity merges

Revision ID: 0006_journeys
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_journeys"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "journeys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("trigger", sa.JSON(), nullable=False),
        sa.Column("delay", sa.String(40), nullable=False),
        sa.Column("delay_seconds", sa.Integer(), nullable=False),
        sa.Column("exit", sa.JSON(), nullable=False),
        sa.Column("action", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("campaign_id", sa.String(40), sa.ForeignKey("campaigns.id")),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "journey_runs",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("journey_id", sa.String(40), sa.ForeignKey("journeys.id"), nullable=False),
        sa.Column("person", sa.String(40), nullable=False),
        sa.Column("trigger_event_id", sa.String(110), nullable=False),
        sa.Column("triggered_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("decided_at", TS),
        sa.Column("send_id", sa.String(40)),
        sa.UniqueConstraint("journey_id", "person"),
    )
    op.create_index("ix_journey_runs_due", "journey_runs", ["state", "due_at"])
    op.create_index("ix_journey_runs_person", "journey_runs", ["person", "state"])
    op.create_table(
        "follow_ups",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer(), nullable=False, unique=True),
        sa.Column("journey_id", sa.String(40), nullable=False),
        sa.Column("messenger_id", sa.String(100), nullable=False, index=True),
        sa.Column("person", sa.String(40), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "identity_merges",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("visitor_person", sa.String(40), nullable=False, index=True),
        sa.Column("contact_person", sa.String(40), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("undone_at", TS),
    )
    op.create_table(
        "merged_rows",
        sa.Column("merge_id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(10), primary_key=True),
        sa.Column("key", sa.String(120), primary_key=True),
    )


def downgrade() -> None:
    for table in ("merged_rows", "identity_merges", "follow_ups", "journey_runs", "journeys"):
        op.drop_table(table)
