"""children and guardians, preferences, double opt-in (issue 18, part 2)

Revision ID: 0024_guardians
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0024_guardians"
down_revision = "0001"
branch_labels = None
depends_on = None

_CONTACT_COLUMNS = (
    sa.Column("birth_date", sa.Date(), nullable=True),
    sa.Column("birth_year", sa.Integer(), nullable=True),
    sa.Column("email_consent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("topics_off", sa.JSON(), nullable=True),
    sa.Column("frequency", sa.String(length=20), nullable=True),
)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        for column in _CONTACT_COLUMNS:
            batch.add_column(column.copy())
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("children", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("digest", sa.Boolean(), nullable=True))
    op.create_table(
        "contact_guardians",
        sa.Column("child_id", _ID, sa.ForeignKey("contacts.id"), nullable=False),
        sa.Column("guardian_id", _ID, sa.ForeignKey("contacts.id"), nullable=False),
        sa.PrimaryKeyConstraint("child_id", "guardian_id"),
    )
    op.create_table(
        "guardian_consents",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("child_id", _ID, sa.ForeignKey("contacts.id"), nullable=False),
        sa.Column("guardian_id", _ID, sa.ForeignKey("contacts.id"), nullable=False),
        sa.Column("method", sa.String(length=100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("consented_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=320), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_guardian_consents_child_id", "guardian_consents", ["child_id"])
    op.create_table(
        "email_confirmations",
        sa.Column("contact_id", _ID, sa.ForeignKey("contacts.id"), primary_key=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("method", sa.String(length=50), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("email_confirmations")
    op.drop_index("ix_guardian_consents_child_id", table_name="guardian_consents")
    op.drop_table("guardian_consents")
    op.drop_table("contact_guardians")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("digest")
        batch.drop_column("children")
    with op.batch_alter_table("contacts") as batch:
        for column in reversed(_CONTACT_COLUMNS):
            batch.drop_column(column.name)
