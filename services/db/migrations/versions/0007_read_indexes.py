"""read-side indexes for attribution at scale

Revision ID: 0007_read_indexes
Revises: 0001

``GET /api/v1/attribution`` (and ``winwin report attribution``) groups one model's
credits by campaign and stage with ``SUM(weight)``, ``COUNT(DISTINCT person)`` and
``COUNT(DISTINCT event_id)``. With only ``ix_credits_model_month`` the database fetched
every credit of the model from the table, sorted them and sorted again per group. This
index holds every column the query reads, in its GROUP BY order, so both SQLite and
PostgreSQL answer from the index alone with no sort (measured at 1M events: README,
"Scale"). ``weight`` is a key column rather than an INCLUDE so SQLite is covered too.

On a large live PostgreSQL, build it first without blocking the stream's writes:
``CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_credits_attribution ON credits
(model, window_days, campaign_id, stage, person, event_id, weight)``; this migration
then finds it and does nothing.
"""

from alembic import op

revision = "0007_read_indexes"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = ["model", "window_days", "campaign_id", "stage", "person", "event_id", "weight"]


def upgrade() -> None:
    op.create_index("ix_credits_attribution", "credits", COLUMNS, if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_credits_attribution", table_name="credits", if_exists=True)
