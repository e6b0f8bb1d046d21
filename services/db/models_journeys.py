"""Tables of journeys, needs and identity (issue 8).

``journey_runs`` are the durable timers: one row per (journey, person), written by the
stream right after the batch that triggered it and acted on by the timer runner when
``due_at`` has come. Being SQL rows, they survive worker restarts and rebalances; the
unique key makes a redelivered batch insert nothing.

``identity_merges`` records each visitor merged into a contact, and ``merged_rows``
the events and touches it moved, so that undoing the merge restores them exactly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.db.models import Base, BigId
from services.domain.journeys import RunState


class Journey(Base):
    """Triggered outreach: trigger → delay → exit check → action (email or follow-up)."""

    __tablename__ = "journeys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[dict[str, Any]] = mapped_column(JSON)
    delay: Mapped[str] = mapped_column(String(40))
    delay_seconds: Mapped[int] = mapped_column(Integer)
    exit: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    action: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The journey's own campaign row: its sends are touches credited like a campaign's.
    campaign_id: Mapped[str | None] = mapped_column(ForeignKey("campaigns.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JourneyRun(Base):
    """One person in one journey: waiting until ``due_at``, then acted/exited/skipped."""

    __tablename__ = "journey_runs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    journey_id: Mapped[str] = mapped_column(ForeignKey("journeys.id"))
    person: Mapped[str] = mapped_column(String(40))
    trigger_event_id: Mapped[str] = mapped_column(String(110))
    triggered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(20), default=RunState.WAITING)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    send_id: Mapped[str | None] = mapped_column(String(40))
    __table_args__ = (
        UniqueConstraint("journey_id", "person"),
        Index("ix_journey_runs_due", "state", "due_at"),
        Index("ix_journey_runs_person", "person", "state"),
    )


class FollowUp(Base):
    """A person on a messenger's follow-up list, put there by a journey."""

    __tablename__ = "follow_ups"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(Integer, unique=True)
    journey_id: Mapped[str] = mapped_column(String(40))
    messenger_id: Mapped[str] = mapped_column(String(100), index=True)
    person: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    done: Mapped[bool] = mapped_column(Boolean, default=False)


class IdentityMerge(Base):
    """A visitor (``v:<ww_vid>``) identified as a contact; ``undone_at`` once undone."""

    __tablename__ = "identity_merges"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    visitor_person: Mapped[str] = mapped_column(String(40), index=True)
    contact_person: Mapped[str] = mapped_column(String(40))
    contact_id: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    undone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MergedRow(Base):
    """An event or touch a merge moved from the visitor to the contact."""

    __tablename__ = "merged_rows"
    merge_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)  # "event" | "touch"
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
