"""A guardian's verifiable consent for a child under 13 (COPPA): who gave it, when,
how, and the text they consented to (``POST /api/v1/contacts/{external_id}/guardian-consent``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import Field
from sqlalchemy import select

from services.auth import Authorized
from services.bootstrap import AppDep
from services.db.models import Contact
from services.db.models_guardians import GuardianConsent, GuardianLink
from services.domain.events import EventError, supported_time
from services.json_bodies import JSONBodyRoute
from services.staff_input import StaffInput

router = APIRouter(route_class=JSONBodyRoute, tags=["staff"])


class GuardianConsentIn(StaffInput):
    guardian: str = Field(min_length=1, max_length=200, description="the guardian's external id")
    method: str = Field(min_length=1, max_length=100, description="e.g. signed form, video call")
    text: str = Field(min_length=1, max_length=20_000, description="the text consented to")
    consented_at: datetime | None = None


@router.post("/api/v1/contacts/{external_id}/guardian-consent", status_code=201)
def post_guardian_consent(
    external_id: str, body: GuardianConsentIn, c: AppDep, _: Authorized
) -> dict[str, Any]:
    """Record a linked guardian's consent; the child may then be messaged."""
    at = body.consented_at or c.now()
    if at.tzinfo is None:
        raise HTTPException(422, "consented_at: a time with its zone offset is required")
    try:
        at = supported_time(at, "consented_at")
    except EventError as exc:
        raise HTTPException(422, str(exc)) from None
    with c.sessions() as session, session.begin():
        ids = dict(
            session.execute(
                select(Contact.external_id, Contact.id).where(
                    Contact.external_id.in_([external_id, body.guardian])
                )
            ).all()
        )
        child, guardian = ids.get(external_id), ids.get(body.guardian)
        if child is None:
            raise HTTPException(404, "no such contact")
        if guardian is None or session.get(GuardianLink, (child, guardian)) is None:
            raise HTTPException(422, "guardian: not a guardian of this contact")
        record = GuardianConsent(child_id=child, guardian_id=guardian, method=body.method,
                                 text=body.text, consented_at=at, recorded_at=c.now())  # fmt: skip
        session.add(record)
        session.flush()
        return {"id": record.id, "contact": external_id, "guardian": body.guardian,
                "method": body.method, "consented_at": at.isoformat()}  # fmt: skip
