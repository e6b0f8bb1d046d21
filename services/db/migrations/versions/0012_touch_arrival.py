"""touches.received_at: the arrival order of touches of the same instant

Revision ID: 0012_touch_arrival
Revises: 0008_credits_by_day

When two touches of a person share an instant, the one WINWIN received first is the
earlier (first touch), then the touch id decides (``services.domain.attribution.
touch_order``). The sink stores when it received each touch. Touches stored before
this migration keep NULL, which counts as received before any other: among them the
touch id decides as before, so the credits already stored stay right.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_touch_arrival"
down_revision = "0008_credits_by_day"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("touches", sa.Column("received_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("touches") as batch:
        batch.drop_column("received_at")
