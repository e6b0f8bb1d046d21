"""Tables of the social channel: the posts a campaign publishes and platform-reported reach."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, DateTime, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.db.models import Base, _ts
from services.domain.lifecycle import PostStatus


class SocialPost(Base):
    """One platform's post of a social campaign: rendered once, published to every
    configured publisher (``results`` per publisher: ok, attempts, error, next try)."""

    __tablename__ = "social_posts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "platform", name="uq_social_posts_campaign_platform"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    platform: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    links: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default=PostStatus.PENDING)
    error: Mapped[str | None] = mapped_column(Text)
    results: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    scheduled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    created_at: Mapped[datetime] = _ts()


class CampaignReach(Base):
    """Impressions and reach a platform reported for a campaign on a day: campaign-level
    exposure, not people (never counted in the stage metrics)."""

    __tablename__ = "campaign_reach"
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    platform: Mapped[str] = mapped_column(String(20), primary_key=True)
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    impressions: Mapped[int] = mapped_column(BigInteger, default=0)
    reach: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = _ts()
