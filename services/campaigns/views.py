"""What the staff API shows of a campaign (its routers share it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from services.campaigns.dispatch import progress
from services.db.models import Campaign
from services.db.models_audiences import CampaignAudience, SavedAudience
from services.experiments.assign import holdout_of
from services.experiments.holdout_input import holdout_view
from services.service_layer.views import describe


def campaign_view(session: Session, campaign: Campaign) -> dict[str, Any]:
    view = describe(campaign, progress(session, campaign.id))
    target = session.get(CampaignAudience, campaign.id)
    view["audience_id"] = target.audience_id if target else None
    return view | {"holdout": holdout_view(holdout_of(session, "campaign", campaign.id))}


def target_audience(
    session: Session, channel: str, audience: dict[str, Any] | None, audience_id: str | None
) -> None:
    """ValueError(reason) unless ``audience_id`` (if any) names a stored audience of an
    email campaign given without an inline ``audience`` filter."""
    if audience_id is None:
        return
    if channel != "email":
        raise ValueError("audience_id: only email campaigns go to an audience")
    if audience is not None:
        raise ValueError("audience_id: give either audience or audience_id, not both")
    if session.get(SavedAudience, audience_id) is None:
        raise ValueError(f"audience_id: unknown audience {audience_id!r}")
