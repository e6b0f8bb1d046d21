"""Consent changes that arrive from recipients (one-click unsubscribe, webhooks)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from services.db.models import ConsentChange, Contact, Suppression
from services.db.upsert import insert_ignore
from services.domain.events import format_timestamp
from services.ids import new_id


def unsubscribe(container: Any, send: Any, source: str = "one-click") -> None:
    """Unsubscribe the contact of ``send`` from email: idempotent, suppression first."""
    with container.sessions() as session, session.begin():
        contact = session.get(Contact, send.contact_id)
        if contact is None:
            return
        suppress(session, contact.email_normalized, "unsubscribe")
        if contact.email_consent != "unsubscribed":
            contact.email_consent = "unsubscribed"
            session.add(ConsentChange(contact_id=contact.id, channel="email", status="unsubscribed", source=source))
    container.gatherer.add({
        "event_id": f"unsub:{new_id()}", "type": "email.unsubscribed",
        "occurred_at": format_timestamp(container.now()), "person": send.person,
        "campaign_id": send.campaign_id, "send_id": send.id, "channel": "email",
        "source": "unsubscribe", "properties": {},
    })


def suppress(session: Any, email_normalized: str | None, reason: str) -> None:
    if email_normalized:
        insert_ignore(session, Suppression.__table__, [{"email_normalized": email_normalized, "reason": reason}])


def suppress_address(session: Any, email: str, reason: str) -> None:
    """Suppress an address reported by SendGrid (bounce, spam report, group unsubscribe)."""
    normalized = email.strip().lower()
    suppress(session, normalized, reason)
    ids = list(session.scalars(select(Contact.id).where(Contact.email_normalized == normalized)))
    if ids:
        session.execute(update(Contact).where(Contact.id.in_(ids)).values(email_consent="unsubscribed"))
        for cid in ids:
            session.add(ConsentChange(contact_id=cid, channel="email", status="unsubscribed", source=f"sendgrid:{reason}"))
