"""What the staff API shows of a campaign (its routers share it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from services.campaigns.dispatch import progress
from services.db.models import Campaign
from services.experiments.assign import holdout_of
from services.experiments.holdout_input import holdout_view


def campaign_view(session: Session, campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "name": campaign.name,
        "channel": campaign.channel,
        "template_id": campaign.template_id,
        "audience": campaign.audience,
        "resources": campaign.resources,
        "messengers": campaign.messengers,
        "platforms": campaign.platforms,
        "send_at": campaign.send_at.isoformat() if campaign.send_at else None,
        "status": campaign.status,
        "unsubscribe_group": campaign.unsubscribe_group,
        "progress": progress(session, campaign.id),
        "holdout": holdout_view(holdout_of(session, "campaign", campaign.id)),
    }
