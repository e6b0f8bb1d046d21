"""People's rights over HTTP: ``GET /api/v1/contacts/{external_id}/export`` (access) and
``DELETE /api/v1/contacts/{external_id}`` (erasure); see :mod:`services.privacy`.

Both are recorded in the log (``winwin.audit``) by the contact's row id, never by a name,
address or external id.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request

from services import audit as trail
from services import privacy
from services.auth import Authorized, role_of
from services.bootstrap import AppDep
from services.json_bodies import JSONBodyRoute

router = APIRouter(route_class=JSONBodyRoute, tags=["privacy"])
audit = logging.getLogger("winwin.audit")
ExternalId = Annotated[str, Path(min_length=1, max_length=200)]


@router.get("/api/v1/contacts/{external_id}/export")
def export_contact(
    request: Request, c: AppDep, _: Authorized, external_id: ExternalId
) -> dict[str, Any]:
    """Everything held about one person: contact, consent history, events, touches,
    sends and local outbox, replies, journey runs, follow-ups, merges, stage facts."""
    with c.sessions() as session:
        try:
            held = privacy.export(session, external_id)
        except privacy.UnknownPerson:
            raise HTTPException(404, "no contact with that external_id") from None
    audit.info("access: contact %s exported by %s", held["contact"]["id"], role_of(request))
    secret = c.settings.secret_key.get_secret_value().encode()
    trail.record(
        c, request.state.actor, "export", "contacts", trail.contact_ref(secret, external_id)
    )
    return held


@router.delete("/api/v1/contacts/{external_id}")
def erase_contact(
    request: Request, c: AppDep, _: Authorized, external_id: ExternalId
) -> dict[str, Any]:
    """Erase one person; published counts do not change (their facts stay, unlinkable)."""
    secret = c.settings.secret_key.get_secret_value().encode()
    with c.sessions() as session, session.begin():
        try:
            done = privacy.erase(session, secret, external_id, c.now())
        except privacy.UnknownPerson:
            raise HTTPException(404, "no contact with that external_id") from None
    privacy.checkpoint(c.engine)
    audit.info("erasure: a contact erased by %s: %s", role_of(request), done)
    return {"erased": True, **done}
