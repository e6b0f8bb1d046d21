"""Tables of delivery, consent and replies (issue 4): in-flight sends, template language
variants, and replies received through SendGrid Inbound Parse.

``inflight_sends`` is what makes dispatch crash safe: a send is written here (with its
batch id) *before* the request that carries it goes to SendGrid, and deleted in the same
transaction that marks it sent. A row found here after a restart means "SendGrid may or
may not have accepted it": the dispatcher asks SendGrid (Email Activity, by the batch id
carried in ``custom_args.ww_batch``) before sending it again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from services.db.models import Base, BigId


class InflightSend(Base):
    """A send handed to the provider whose outcome is not recorded yet."""

    __tablename__ = "inflight_sends"
    send_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(40), index=True)
    campaign_id: Mapped[str] = mapped_column(String(40), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class GroupUnsubscribe(Base):
    """A contact's latest choice about one unsubscribe group (SendGrid ASM group).

    ``unsubscribed``: they left the group (no campaign of it reaches them) or rejoined
    it; ``changed_at``: the event time of that choice, so that a late retried event
    cannot undo a newer one (services/domain/unsubscribe_groups.py)."""

    __tablename__ = "group_unsubscribes"
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id"), primary_key=True)
    group_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unsubscribed: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TemplateVariant(Base):
    """A template in another language; a contact gets their language's variant."""

    __tablename__ = "template_variants"
    template_id: Mapped[str] = mapped_column(ForeignKey("templates.id"), primary_key=True)
    language: Mapped[str] = mapped_column(String(20), primary_key=True)
    subject: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Reply(Base):
    """A reply to a campaign email. Its text stays here: it never goes to Kafka."""

    __tablename__ = "replies"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    send_id: Mapped[str | None] = mapped_column(String(40), index=True)
    campaign_id: Mapped[str | None] = mapped_column(String(40), index=True)
    person: Mapped[str | None] = mapped_column(String(40))
    matched_by: Mapped[str | None] = mapped_column(String(20))
    from_email: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ErasedPseudonym(Base):
    """For a short while after an erasure: which random pseudonym an erased person's
    events still in flight (in Kafka or the outbox) are stored under.

    ``old_key`` is a keyed hash of the old pseudonym (never the pseudonym itself); the
    dispatcher's retention step forgets the row ``WINWIN_ERASURE_INFLIGHT_DAYS`` after
    ``erased_at`` (services/analytics/erased.py)."""

    __tablename__ = "erased_pseudonyms"
    old_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    new_pseudonym: Mapped[str] = mapped_column(String(64))
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
