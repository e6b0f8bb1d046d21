"""What the staff API shows of a campaign (its routers share it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from services.campaigns.dispatch import progress
from services.db.models import Campaign
from services.service_layer.views import describe


def campaign_view(session: Session, campaign: Campaign) -> dict[str, Any]:
    return describe(campaign, progress(session, campaign.id))
