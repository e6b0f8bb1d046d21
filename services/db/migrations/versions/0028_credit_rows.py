"""credits: one row per (event, window, touch) with a weight column per model

Revision ID: 0028_credit_rows
Revises: 0008_credits_by_day

Issue 19. ``credits`` held one row per (event, model, window, touch), with the rows all
five models agreed on stored once as model ``*``: ~2.5 rows per stage event. Now a row
is one touch's share of one event in one window, with each model's weight in its own
column (``w_<model>``, NULL where that model does not credit the touch): ~1.3 rows per
stage event. A model's reads are the rows where its weight is > 0, as before.

The stored rows are converted (grouped by event, window and touch; a ``*`` row gives its
weight to every model), and the indexes are rebuilt on the new columns, in the order the
reads group by. The model leaves the
other two: ``ix_credits_window_month (window_days, month)`` and ``ix_credits_campaign
(campaign_id, window_days, month)``. The conversion rewrites the whole table: on a large live database run it
while the stream is stopped.
"""

import sqlalchemy as sa
from alembic import op

revision = "0028_credit_rows"
down_revision = "0008_credits_by_day"
branch_labels = None
depends_on = None

MODELS = ("last_touch", "first_touch", "linear", "time_decay", "position_based")
WEIGHTS = [f"w_{m}" for m in MODELS]
SHARED = ["campaign_id", "channel", "messenger_id", "stage", "person", "occurred_at"]
SHARED += ["month", "week", "day"]
_ATTRIBUTION_OLD = "window_days campaign_id stage model day person event_id weight"
OLD_INDEXES = {
    "ix_credits_campaign": ["campaign_id", "model", "window_days", "month"],
    "ix_credits_model_month": ["model", "window_days", "month"],
    "ix_credits_attribution_day": _ATTRIBUTION_OLD.split(),
}
NEW_INDEXES = {
    "ix_credits_window_month": ["window_days", "month"],
    "ix_credits_campaign": ["campaign_id", "window_days", "month"],
    "ix_credits_attribution_day": [
        *["window_days", "campaign_id", "stage", "day", "person", "event_id"],
        *WEIGHTS,
    ],
}


def _columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("campaign_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.Column("messenger_id", sa.String(length=100), nullable=True),
        sa.Column("stage", sa.String(length=10), nullable=False),
        sa.Column("person", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("week", sa.String(length=10), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
    ]


def _set_aside(indexes: dict[str, list[str]]) -> None:
    """Drop ``credits``' indexes and rename it ``credits_v0`` (its key too, on PostgreSQL,
    so the new table's key takes the name ``credits_pkey``)."""
    for name in indexes:
        op.drop_index(name, table_name="credits", if_exists=True)
    op.rename_table("credits", "credits_v0")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER INDEX credits_pkey RENAME TO credits_v0_pkey")


def _finish(indexes: dict[str, list[str]]) -> None:
    op.drop_table("credits_v0")
    for name, columns in indexes.items():
        op.create_index(name, "credits", columns)


def upgrade() -> None:
    _set_aside(OLD_INDEXES)
    op.create_table(
        "credits",
        sa.Column("event_id", sa.String(length=110), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("touch_id", sa.String(length=120), nullable=False),
        *_columns(),
        *(sa.Column(w, sa.Float(), nullable=True) for w in WEIGHTS),
        sa.PrimaryKeyConstraint("event_id", "window_days", "touch_id", name="credits_pkey"),
    )
    weights = [f"MAX(CASE WHEN model IN ('{m}', '*') THEN weight END)" for m in MODELS]
    shared = [f"MAX({c})" for c in SHARED]
    keys = "event_id, window_days, touch_id"
    op.execute(
        f"INSERT INTO credits ({keys}, {', '.join(SHARED)}, {', '.join(WEIGHTS)})"  # noqa: S608
        f" SELECT {keys}, {', '.join(shared)}, {', '.join(weights)}"
        f" FROM credits_v0 GROUP BY {keys}"
    )
    _finish(NEW_INDEXES)


def downgrade() -> None:
    """One row per model that credits a touch (no ``*`` rows: the old reads take a
    model's own rows as well)."""
    _set_aside(NEW_INDEXES)
    op.create_table(
        "credits",
        sa.Column("event_id", sa.String(length=110), nullable=False),
        sa.Column("model", sa.String(length=20), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("touch_id", sa.String(length=120), nullable=False),
        *_columns(),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "event_id", "model", "window_days", "touch_id", name="credits_pkey"
        ),
    )
    names = f"event_id, model, window_days, touch_id, {', '.join(SHARED)}, weight"
    for model, weight in zip(MODELS, WEIGHTS, strict=True):
        op.execute(
            f"INSERT INTO credits ({names}) SELECT event_id, '{model}', window_days,"  # noqa: S608
            f" touch_id, {', '.join(SHARED)}, {weight} FROM credits_v0"
            f" WHERE {weight} IS NOT NULL"
        )
    _finish(OLD_INDEXES)
