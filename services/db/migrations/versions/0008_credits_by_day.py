"""attribution index in time order, for credits stored once for every model

Revision ID: 0008_credits_by_day
Revises: 0007_read_indexes

``ix_credits_attribution`` (0007) ordered each (model, campaign, stage) group by person:
every stream batch inserted into every leaf of it, so its write cost grew with the
history stored, not with the batch (`winwin bench pipeline`: 11.8k records/s on an empty
database, 2.5k after 200k). With the event's day before the person, a live stream (whose
events are mostly of today) appends at the end of each group.

Credits that every model agrees on are now stored once (model ``*``), so a model's
credits are its own rows and those: with the model after campaign and stage, both are
read in one scan already in ``GROUP BY campaign, stage`` order (no sort), and the index
still holds every column ``GET /api/v1/attribution`` reads.

On a large live PostgreSQL, build the new index first without blocking the stream's
writes (``CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_credits_attribution_day ON credits
(window_days, campaign_id, stage, model, day, person, event_id, weight)``), then run
this migration: it finds it, and drops the old one.
"""

from alembic import op

revision = "0008_credits_by_day"
down_revision = "0007_read_indexes"
branch_labels = None
depends_on = None

OLD = ["model", "window_days", "campaign_id", "stage", "person", "event_id", "weight"]
NEW = ["window_days", "campaign_id", "stage", "model", "day", "person", "event_id", "weight"]


def upgrade() -> None:
    op.create_index("ix_credits_attribution_day", "credits", NEW, if_not_exists=True)
    op.drop_index("ix_credits_attribution", table_name="credits", if_exists=True)


def downgrade() -> None:
    op.create_index("ix_credits_attribution", "credits", OLD, if_not_exists=True)
    op.drop_index("ix_credits_attribution_day", table_name="credits", if_exists=True)
