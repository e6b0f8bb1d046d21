"""Tables of trusted-messenger toolkits: one toolkit per (campaign, messenger), and the
tracked links it hands out (one campaign-level Link row per resource or ``track()`` URL).

The rendered messages are stored with the toolkit when it is built, so that a page view
is one look-up and the messenger sees the same words every time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from services.db.models import Base


class Toolkit(Base):
    """A messenger's private toolkit for one campaign; ``token`` is its /t/ token."""

    __tablename__ = "toolkits"
    __table_args__ = (UniqueConstraint("campaign_id", "messenger_id"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    messenger_id: Mapped[str] = mapped_column(String(100))
    token: Mapped[str] = mapped_column(String(200), unique=True)
    messages: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    built_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ToolkitLink(Base):
    """A tracked link of a toolkit. ``key`` is the resource id, or ``track:<hash>`` for a
    URL a template passed to ``track()`` (then ``resource_id`` is NULL)."""

    __tablename__ = "toolkit_links"
    toolkit_id: Mapped[str] = mapped_column(ForeignKey("toolkits.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    resource_id: Mapped[str | None] = mapped_column(String(100))
    link_id: Mapped[str] = mapped_column(String(40))
    position: Mapped[int] = mapped_column(Integer, default=0)
