"""A contact for the console (issue 16): search, and one contact's profile (consent
history, stages reached by month, touches, journeys). Read only; SQL on any database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select

from services.db.models import ConsentChange, Contact, StageFact, Touch
from services.db.models_journeys import JourneyRun

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

MAX_TOUCHES = 100


def search(session: Session, words: str, limit: int, offset: int) -> list[Contact]:
    """Contacts whose external id, name or email contains ``words`` (any case)."""
    query = select(Contact).order_by(Contact.id).limit(limit).offset(offset)
    if words.strip():
        like = f"%{words.strip().lower()}%"
        query = query.where(
            or_(
                func.lower(Contact.external_id).like(like),
                func.lower(Contact.name).like(like),
                Contact.email_normalized.like(like),
            )
        )
    return list(session.scalars(query))


def profile(session: Session, external_id: str) -> dict[str, Any] | None:
    """What the console shows of one contact; None when there is no such contact."""
    contact = session.scalar(select(Contact).where(Contact.external_id == external_id))
    if contact is None:
        return None
    person = contact.pseudonym
    consent = session.scalars(
        select(ConsentChange)
        .where(ConsentChange.contact_id == contact.id)
        .order_by(ConsentChange.changed_at, ConsentChange.id)
    )
    stages = session.execute(
        select(StageFact.period, StageFact.stage)
        .where(StageFact.person == person, StageFact.period_kind == "month")
        .order_by(StageFact.period)
    )
    touches = session.scalars(
        select(Touch)
        .where(Touch.person == person)
        .order_by(Touch.occurred_at.desc())
        .limit(MAX_TOUCHES)
    )
    runs = session.scalars(select(JourneyRun).where(JourneyRun.person == person))
    return {
        "consent_history": [
            {"at": c.changed_at.isoformat(), "channel": c.channel, "status": c.status}
            | {"source": c.source}
            for c in consent
        ],
        "stages_by_month": _by_month(stages),
        "touches": [
            {"at": t.occurred_at.isoformat(), "campaign_id": t.campaign_id, "kind": t.kind}
            | {"channel": t.channel, "messenger_id": t.messenger_id}
            for t in touches
        ],
        "journeys": [
            {"journey_id": r.journey_id, "state": r.state, "due_at": r.due_at.isoformat()}
            for r in runs
        ],
    }


def _by_month(rows: Any) -> list[dict[str, Any]]:
    months: dict[str, list[str]] = {}
    for period, stage in rows:
        months.setdefault(period, []).append(stage)
    order = ["aware", "use", "produce"]
    return [
        {"month": m, "stages": sorted(s, key=lambda x: order.index(x) if x in order else 9)}
        for m, s in months.items()
    ]
