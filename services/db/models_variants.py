"""Content tests (A/B/n) of email campaigns: the test, its decision, who got which.

``content_tests``: one row per campaign with variants (their template ids and inline
subjects), the test share, the metric fixed in advance and the decision time; the
decision (``decided_at``, the ``chosen`` variant, its figures) is written once, when it
is made. ``variant_assignments``: one row per (campaign, person) at the person's send:
``tested`` for the test share, else the rest who got the chosen variant after the
decision; the first row stays (insert-if-absent).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.db.models import Base


class ContentTestRow(Base):
    """The content test of one email campaign, and its decision once made."""

    __tablename__ = "content_tests"
    campaign_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    variants: Mapped[list[Any]] = mapped_column(JSON)
    test_share: Mapped[float] = mapped_column(Float)
    metric: Mapped[str] = mapped_column(String(10))
    decide_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    chosen: Mapped[int | None] = mapped_column(Integer)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class VariantAssignment(Base):
    """The variant a person got in one campaign's content test, and when."""

    __tablename__ = "variant_assignments"
    campaign_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    person: Mapped[str] = mapped_column(String(40), primary_key=True)
    variant: Mapped[int] = mapped_column(Integer)
    tested: Mapped[bool] = mapped_column(Boolean)
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
