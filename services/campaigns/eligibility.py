"""Who may get a message *now*, beyond consent and suppression: children (COPPA, the
re-consent at 13 and 18) and the person's own preferences (topics, frequency).

The dispatcher calls :func:`screen` on each batch it is about to send, in the
transaction that claims it; journeys call :func:`services.db.guardians.journey_blocked`. The rules are pure
(services/domain/guardians.py and preferences.py); this module reads what they need in
one query a batch and, for a campaign that sends to guardians, adds the guardians'
sends (unique per campaign and contact: nobody gets a campaign twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, select
from sqlalchemy.orm import Session

from services.db.guardians import FACTS, person_of
from services.db.models import Campaign, Contact, Resource, Send
from services.db.models_guardians import GuardianLink
from services.db.upsert import insert_ignore
from services.domain import guardians, preferences
from services.domain.lifecycle import SendStatus
from services.ids import new_id

__all__ = ["screen"]


def screen(
    session: Session,
    campaign_id: str,
    allowed: Sequence[Row[Any]],
    blocked: list[dict[str, Any]],
    now: datetime,
    timezone: str,
) -> tuple[list[Row[Any]], list[dict[str, Any]]]:
    """Split ``allowed`` (rows with an ``id``: the send) into those that may still go and
    those blocked by age or preferences (added to ``blocked`` as ``_MARK`` parameters).

    A child under 13 without guardian consent in a campaign with ``children:
    "guardians"`` gets its guardians' sends added instead."""
    if not allowed:
        return list(allowed), blocked
    children, digest, topics = _campaign(session, campaign_id)
    day = guardians.local_day(now, timezone)
    facts = session.execute(
        select(Send.id, Send.contact_id, *FACTS)
        .join(Contact, Contact.id == Send.contact_id)
        .where(Send.id.in_([row.id for row in allowed]))
    ).all()
    reasons, to_guardians = {}, []
    for f in facts:
        reason = guardians.child_reason(person_of(f), day, timezone)
        if reason == guardians.UNDER_13 and children == guardians.Children.GUARDIANS:
            reason = guardians.TO_GUARDIANS
            to_guardians.append(f.contact_id)
        reason = reason or preferences.campaign_reason(f.frequency, f.topics_off or (),
                                                       topics, digest)  # fmt: skip
        if reason:
            reasons[f.id] = reason
    _add_guardian_sends(session, campaign_id, to_guardians)
    more = [
        {"b_id": i, "b_status": SendStatus.SUPPRESSED, "b_error": r} for i, r in reasons.items()
    ]
    return [row for row in allowed if row.id not in reasons], blocked + more


def _campaign(session: Session, campaign_id: str) -> tuple[str, bool, set[str]]:
    """The campaign's children mode, whether it is the digest, its resources' topics."""
    children, digest, resources = session.execute(
        select(Campaign.children, Campaign.digest, Campaign.resources).where(
            Campaign.id == campaign_id
        )
    ).one()
    ids = [str(r) for r in resources or []]
    topics = {
        str(t)
        for row in session.scalars(select(Resource.topics).where(Resource.id.in_(ids)))
        for t in row or ()
    }
    return children or guardians.Children.SKIP, bool(digest), topics


def _add_guardian_sends(session: Session, campaign_id: str, children: list[int]) -> None:
    if not children:
        return
    found = session.execute(
        select(Contact.id, Contact.pseudonym)
        .join(GuardianLink, GuardianLink.guardian_id == Contact.id)
        .where(GuardianLink.child_id.in_(children))
        .distinct()
    ).all()
    rows = [
        {"id": new_id(), "campaign_id": campaign_id, "contact_id": contact_id}
        | {"person": pseudonym, "status": SendStatus.PENDING}
        for contact_id, pseudonym in found
    ]
    insert_ignore(session, cast(Table, Send.__table__), rows)
