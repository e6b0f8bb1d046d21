"""Tables of audiences: stored segments (a name and a rule, services.domain.segments),
and which audience an email campaign goes to (migration 0022_audiences)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from services.db.models import Base


class SavedAudience(Base):
    """A named segment staff built; its members are counted live, never stored."""

    __tablename__ = "audiences"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    rule: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CampaignAudience(Base):
    """An email campaign that goes to a stored audience (read when it starts sending)."""

    __tablename__ = "campaign_audiences"
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    audience_id: Mapped[str] = mapped_column(ForeignKey("audiences.id"), index=True)
