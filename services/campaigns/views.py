"""What the staff API shows of a campaign (its routers share it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from services.campaigns.dispatch import progress
from services.db.models import Campaign
from services.experiments.assign import holdout_of
from services.experiments.holdout_input import holdout_view
from services.experiments.variant_input import content_test_view
from services.service_layer.views import describe


def campaign_view(session: Session, campaign: Campaign) -> dict[str, Any]:
    view = describe(campaign, progress(session, campaign.id))
    return view | {
        "holdout": holdout_view(holdout_of(session, "campaign", campaign.id)),
        "content_test": content_test_view(session, campaign.id),
    }
