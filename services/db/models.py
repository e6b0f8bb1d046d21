"""SQLAlchemy 2.x tables: the source of truth for staff objects and for every counter.

Counters are never incremented in place: the stream writes *facts* with unique keys
(an event id, a (period, stage, person) triple, a credit of an event to a touch), so a
re-delivered Kafka message inserts nothing new and counts stay exact (DESIGN.md,
Reliability rules). Counts are ``COUNT(*)`` over facts.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.domain.consent import Consent
from services.domain.lifecycle import CampaignStatus, SendStatus

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


#: The credits' weight columns, one per attribution model, in the models' order.
CREDIT_WEIGHTS = ("w_last_touch", "w_first_touch", "w_linear", "w_time_decay", "w_position_based")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


def _ts() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


# --- staff objects -----------------------------------------------------------------


class Contact(Base):
    """A person outreach can reach. The email address never leaves this table."""

    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    pseudonym: Mapped[str] = mapped_column(String(40), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    email_normalized: Mapped[str | None] = mapped_column(String(320), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(50))
    language: Mapped[str | None] = mapped_column(String(20))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    needs: Mapped[list[Any]] = mapped_column(JSON, default=list)
    email_consent: Mapped[str] = mapped_column(String(20), default=Consent.UNCONFIRMED)
    created_at: Mapped[datetime] = _ts()
    updated_at: Mapped[datetime] = _ts()
    # Children, re-consent and preferences (issue 18, migration 0024_guardians).
    birth_date: Mapped[date | None] = mapped_column(Date)
    birth_year: Mapped[int | None] = mapped_column(Integer)
    #: When the email consent was last confirmed (re-consent at 13 and 18 reads it).
    email_consent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    topics_off: Mapped[list[Any] | None] = mapped_column(JSON)
    frequency: Mapped[str | None] = mapped_column(String(20))


class ConsentChange(Base):
    """History of consent: who changed what, when and through which path."""

    __tablename__ = "consent_changes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(50))
    changed_at: Mapped[datetime] = _ts()


class Suppression(Base):
    """An address that must never be sent to again (unsubscribe, bounce, spam report)."""

    __tablename__ = "suppressions"
    email_normalized: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = _ts()


class Resource(Base):
    __tablename__ = "resources"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    url: Mapped[str] = mapped_column(String(2000))
    kind: Mapped[str] = mapped_column(String(50))
    topics: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = _ts()


class Messenger(Base):
    __tablename__ = "messengers"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = _ts()


class Template(Base):
    __tablename__ = "templates"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _ts()


class Campaign(Base):
    __tablename__ = "campaigns"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(20))
    template_id: Mapped[str] = mapped_column(ForeignKey("templates.id"))
    audience: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    resources: Mapped[list[Any]] = mapped_column(JSON, default=list)
    messengers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    platforms: Mapped[list[Any]] = mapped_column(JSON, default=list)
    send_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(20), default=CampaignStatus.DRAFT, index=True)
    created_at: Mapped[datetime] = _ts()
    #: SendGrid's unsubscribe (ASM) group of an email campaign, or None (migration 0009).
    unsubscribe_group: Mapped[int | None] = mapped_column(Integer)
    #: Children under 13 without guardian consent: "skip" (None) or "guardians" (0024).
    children: Mapped[str | None] = mapped_column(String(20))
    #: The monthly digest: reaches people who chose "monthly digest only" (0024).
    digest: Mapped[bool | None] = mapped_column(Boolean)
    #: At most so many of this email campaign's sends in any hour; None: no cap (0027).
    throttle_per_hour: Mapped[int | None] = mapped_column(Integer)


class Link(Base):
    """A tracked link. The redirect target is only ever read from here."""

    __tablename__ = "links"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token: Mapped[str] = mapped_column(String(100), unique=True)
    destination: Mapped[str] = mapped_column(String(2000))
    campaign_id: Mapped[str | None] = mapped_column(String(40), index=True)
    channel: Mapped[str | None] = mapped_column(String(20))
    messenger_id: Mapped[str | None] = mapped_column(String(100))
    resource_id: Mapped[str | None] = mapped_column(String(100))
    person: Mapped[str | None] = mapped_column(String(40))
    send_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = _ts()


class Send(Base):
    """One message of a campaign to one contact: unique, so never sent twice."""

    __tablename__ = "sends"
    __table_args__ = (UniqueConstraint("campaign_id", "contact_id"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    person: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default=SendStatus.PENDING, index=True)
    message_id: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _ts()
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LocalEmail(Base):
    """The local outbox: exactly what would have gone to SendGrid, when no key is set."""

    __tablename__ = "local_emails"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    send_id: Mapped[str] = mapped_column(String(40), unique=True)
    campaign_id: Mapped[str | None] = mapped_column(String(40), index=True)
    to: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    custom_args: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reply_to: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = _ts()


# --- the bus -------------------------------------------------------------------------


class OutboxMessage(Base):
    """Transactional outbox: records committed with the change that caused them, and
    published to Kafka by the relay (at least once; consumers are idempotent)."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(100))
    records: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = _ts()
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_outbox_unpublished", "published_at", "id"),)


class AcceptedEvent(Base):
    """The ingest ledger: every event id ever accepted, so duplicates are answered as such."""

    __tablename__ = "accepted_events"
    event_id: Mapped[str] = mapped_column(String(110), primary_key=True)
    accepted_at: Mapped[datetime] = _ts()


# --- stream sinks (facts) ------------------------------------------------------------


class EngagementEvent(Base):
    __tablename__ = "engagement_events"
    event_id: Mapped[str] = mapped_column(String(110), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    person: Mapped[str] = mapped_column(String(40))
    campaign_id: Mapped[str | None] = mapped_column(String(40))
    channel: Mapped[str | None] = mapped_column(String(20))
    messenger_id: Mapped[str | None] = mapped_column(String(100))
    resource_id: Mapped[str | None] = mapped_column(String(100))
    stage: Mapped[str | None] = mapped_column(String(10))
    bot: Mapped[bool] = mapped_column(Boolean, default=False)
    bot_reason: Mapped[str | None] = mapped_column(String(100))
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime] = _ts()
    __table_args__ = (Index("ix_events_person_time", "person", "occurred_at"),)


class Touch(Base):
    """An exposure of a person to a campaign (an email sent, a tracked click...)."""

    __tablename__ = "touches"
    touch_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    person: Mapped[str] = mapped_column(String(40))
    campaign_id: Mapped[str] = mapped_column(String(40), index=True)
    channel: Mapped[str | None] = mapped_column(String(20))
    messenger_id: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(50))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When the sink stored it: orders touches of the same instant (domain.touch_order).
    # NULL for touches stored before migration 0012_touch_arrival.
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        Index("ix_touches_person_time", "person", "occurred_at"),
        Index("ix_touches_received_at", "received_at"),  # a window's last step reads it
    )


class Credit(Base):
    """A share of one stage event credited to one touch (or unattributed), with the
    weight each model gives it: one row per (event, window, touch), NULL where a model
    does not credit that touch (migration 0028_credit_rows)."""

    __tablename__ = "credits"
    event_id: Mapped[str] = mapped_column(String(110), primary_key=True)
    window_days: Mapped[int] = mapped_column(Integer, primary_key=True)
    touch_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str | None] = mapped_column(String(20))
    messenger_id: Mapped[str | None] = mapped_column(String(100))
    stage: Mapped[str] = mapped_column(String(10))
    person: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Period labels (in the configured timezone) so filtered unique counts are one
    # GROUP BY: COUNT(DISTINCT person) per period, stage implication by CASE.
    month: Mapped[str] = mapped_column(String(7))
    week: Mapped[str] = mapped_column(String(10))
    day: Mapped[str] = mapped_column(String(10))
    # One weight per attribution model (services.domain.attribution.Model), its name
    # prefixed with w_ (services.analytics.credit_rows.WEIGHT_COLUMNS).
    w_last_touch: Mapped[float | None] = mapped_column(Float)
    w_first_touch: Mapped[float | None] = mapped_column(Float)
    w_linear: Mapped[float | None] = mapped_column(Float)
    w_time_decay: Mapped[float | None] = mapped_column(Float)
    w_position_based: Mapped[float | None] = mapped_column(Float)
    __table_args__ = (
        Index("ix_credits_window_month", "window_days", "month"),
        Index("ix_credits_campaign", "campaign_id", "window_days", "month"),
        # Covers GET /api/v1/attribution: every column it reads, in GROUP BY order; the
        # day before the person so a live stream appends (migration 0008_credits_by_day).
        Index(
            "ix_credits_attribution_day",
            "window_days",
            "campaign_id",
            "stage",
            "day",
            "person",
            "event_id",
            *CREDIT_WEIGHTS,
        ),  # fmt: skip
    )


class StageFact(Base):
    """Person P reached stage S in period X (implied lower stages included)."""

    __tablename__ = "stage_facts"
    period_kind: Mapped[str] = mapped_column(String(5), primary_key=True)
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    stage: Mapped[str] = mapped_column(String(10), primary_key=True)
    person: Mapped[str] = mapped_column(String(40), primary_key=True)


class Setting(Base):
    """Runtime configuration staff can change (the stage map)."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = _ts()


class WorkerHeartbeat(Base):
    """Stream workers say here that they are consuming (read by /readyz)."""

    __tablename__ = "worker_heartbeats"
    worker_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
