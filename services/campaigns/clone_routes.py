"""Cloning a campaign: a draft copy to edit and schedule again (issue 16)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from services.auth import Authorized
from services.bootstrap import AppDep
from services.campaigns.views import campaign_view
from services.db.models import Campaign
from services.db.models_audiences import CampaignAudience
from services.domain.lifecycle import CampaignStatus
from services.experiments.assign import holdout_of, save_holdout
from services.ids import new_id
from services.json_bodies import JSONBodyRoute

router = APIRouter(route_class=JSONBodyRoute, tags=["staff"])
COPY = " (copy)"


@router.post("/api/v1/campaigns/{campaign_id}/clone", status_code=201)
def clone_campaign(campaign_id: str, c: AppDep, _: Authorized) -> dict[str, Any]:
    """A draft with the campaign's channel, template, audience, holdout, resources,
    messengers and platforms; no send time, no sends, whatever the original's status."""
    with c.sessions() as session, session.begin():
        original = session.get(Campaign, campaign_id)
        if original is None:
            raise HTTPException(404, "campaign not found")
        copy = Campaign(
            id=new_id(),
            name=original.name[: 200 - len(COPY)] + COPY,
            channel=original.channel,
            template_id=original.template_id,
            audience=original.audience,
            resources=list(original.resources or []),
            messengers=list(original.messengers or []),
            platforms=list(original.platforms or []),
            send_at=None,
            status=CampaignStatus.DRAFT,
            unsubscribe_group=original.unsubscribe_group,
            children=original.children,
            digest=original.digest,
            throttle_per_hour=original.throttle_per_hour,
        )
        session.add(copy)
        session.flush()
        if holdout := holdout_of(session, "campaign", campaign_id):
            save_holdout(session, "campaign", copy.id, holdout)
        if target := session.get(CampaignAudience, campaign_id):
            session.add(CampaignAudience(campaign_id=copy.id, audience_id=target.audience_id))
            session.flush()
        return campaign_view(session, copy)
