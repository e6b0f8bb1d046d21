"""Holdouts of campaigns and journeys, and who was assigned to which arm when.

``holdouts``: one row per experiment (``kind`` campaign or journey, its id) with the
share held out and the conversion window. ``holdout_assignments``: one row per
(experiment, person), written at send time for everyone eligible (after consent and
suppression); the first assignment stays (insert-if-absent), so a resend or a retry
changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.db.models import Base


class HoldoutRow(Base):
    """The holdout of one campaign or journey."""

    __tablename__ = "holdouts"
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    share: Mapped[float] = mapped_column(Float)
    window_days: Mapped[int] = mapped_column(Integer)


class HoldoutAssignment(Base):
    """A person's arm in one experiment (``kind`` ``global`` for the global holdout)."""

    __tablename__ = "holdout_assignments"
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    person: Mapped[str] = mapped_column(String(40), primary_key=True)
    arm: Mapped[str] = mapped_column(String(10))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
