"""Staff endpoints of issue 4 (included by services/api.py):

* ``POST /api/v1/campaigns/{id}/pause`` and ``…/resume``: stop sending after the batch
  under way; resume where it stopped (nothing lost, nothing twice).
* ``PUT /api/v1/templates/{id}/variants/{language}`` ``{subject?, html?, text}`` and
  ``GET /api/v1/templates/{id}/variants``: language variants; a contact gets the variant of
  their language (``es-MX`` → ``es-mx``, then ``es``), else the template itself.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import Field
from sqlalchemy import select

from services.auth import Authorized
from services.bootstrap import AppDep, Container
from services.campaigns.personalise import language_key
from services.campaigns.rendering import TemplateProblem
from services.campaigns.schedule import CampaignStateError, pause, resume
from services.campaigns.views import campaign_view
from services.db.models import Campaign, Template
from services.db.models_consent import TemplateVariant
from services.db.upsert import upsert
from services.json_bodies import JSONBodyRoute
from services.staff_input import StaffInput

router = APIRouter(route_class=JSONBodyRoute, tags=["staff"])


class VariantIn(StaffInput):
    subject: str | None = Field(default=None, max_length=1000)
    html: str | None = Field(default=None, max_length=500_000)
    text: str = Field(max_length=500_000)


def _campaign_change(c: Container, campaign_id: str, change: Any) -> dict[str, Any]:
    with c.sessions() as session, session.begin():
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise HTTPException(404, "campaign not found")
        try:
            change(session, campaign)
        except CampaignStateError as exc:
            raise HTTPException(409, str(exc)) from None
        return campaign_view(session, campaign)


@router.post("/api/v1/campaigns/{campaign_id}/pause")
def pause_campaign(campaign_id: str, c: AppDep, _: Authorized) -> dict[str, Any]:
    """``scheduled|sending`` → ``paused``: the dispatcher stops between two batches."""
    return _campaign_change(c, campaign_id, pause)


@router.post("/api/v1/campaigns/{campaign_id}/resume")
def resume_campaign(campaign_id: str, c: AppDep, _: Authorized) -> dict[str, Any]:
    """``paused`` → ``sending`` (or ``scheduled`` if it had not started)."""
    return _campaign_change(c, campaign_id, resume)


@router.put("/api/v1/templates/{template_id}/variants/{language}")
def put_variant(
    template_id: str, language: str, body: VariantIn, c: AppDep, _: Authorized
) -> dict[str, Any]:
    """Create or replace the ``language`` variant; it must render like any template."""
    key = language_key(language)
    if key is None or len(key) > 20:
        raise HTTPException(422, "language: a language tag such as es or pt-BR")
    with c.sessions() as session, session.begin():
        template = session.get(Template, template_id)
        if template is None:
            raise HTTPException(404, "template not found")
        if template.channel == "email" and not body.subject:
            raise HTTPException(422, "subject: required for email templates")
        try:
            c.renderer.check(body.subject, body.html, body.text, channel=template.channel)
        except TemplateProblem as exc:
            raise HTTPException(422, f"template does not render: {exc}") from None
        row = {"template_id": template_id, "language": key} | body.model_dump()
        upsert(session, TemplateVariant.__table__, [row], ["template_id", "language"])
    return row


@router.get("/api/v1/templates/{template_id}/variants")
def get_variants(template_id: str, c: AppDep, _: Authorized) -> list[dict[str, Any]]:
    with c.sessions() as session:
        if session.get(Template, template_id) is None:
            raise HTTPException(404, "template not found")
        rows = session.scalars(
            select(TemplateVariant)
            .where(TemplateVariant.template_id == template_id)
            .order_by(TemplateVariant.language)
        )
        return [
            {"language": v.language, "subject": v.subject, "html": v.html, "text": v.text}
            for v in rows
        ]
