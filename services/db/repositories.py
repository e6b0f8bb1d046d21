"""SQL adapters of the repository ports (:mod:`services.ports`): each works inside the
session of one unit of work (:mod:`services.db.unit_of_work`) and never commits.

The contract they share with the in-memory fakes is tested once per port, against
SQLite, PostgreSQL and the fake (tests/integration/repositories/).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from services.db.models import (
    AcceptedEvent,
    Campaign,
    ConsentChange,
    Contact,
    Link,
    OutboxMessage,
    Resource,
    Send,
    Template,
)
from services.db.upsert import insert_new
from services.domain.consent import Consent
from services.domain.guardians import REASONS
from services.domain.lifecycle import CampaignStatus, SendStatus


class SqlCampaigns:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, campaign_id: str) -> Campaign | None:
        return self.session.get(Campaign, campaign_id)

    def add(self, campaign: Campaign) -> None:
        self.session.add(campaign)
        self.session.flush()

    def with_status(self, status: CampaignStatus) -> list[Campaign]:
        query = select(Campaign).where(Campaign.status == status)
        return list(self.session.scalars(query.order_by(Campaign.created_at, Campaign.id)))

    def known(self, campaign_ids: Collection[str]) -> set[str]:
        if not campaign_ids:
            return set()
        query = select(Campaign.id).where(Campaign.id.in_(list(campaign_ids)))
        return set(self.session.scalars(query))

    def progress(self, campaign_id: str) -> dict[str, int]:
        return send_progress(self.session, campaign_id)


def send_progress(session: Session, campaign_id: str) -> dict[str, int]:
    """``{"total", "sent", "suppressed", "failed"}`` of a campaign (pending count in total)."""
    counts = dict(
        session.execute(
            select(Send.status, func.count())
            .where(Send.campaign_id == campaign_id)
            .group_by(Send.status)
        ).all()
    )
    skipped = session.execute(  # children skipped or sent to guardians (issue 18)
        select(Send.error, func.count())
        .where(Send.campaign_id == campaign_id, Send.status == SendStatus.SUPPRESSED)
        .where(Send.error.in_(list(REASONS)))
        .group_by(Send.error)
    ).all()
    return {
        "total": sum(counts.values()),
        "sent": counts.get(SendStatus.SENT, 0),
        "suppressed": counts.get(SendStatus.SUPPRESSED, 0),
        "failed": counts.get(SendStatus.FAILED, 0),
    } | {REASONS[str(error)]: n for error, n in skipped}


class SqlContacts:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_by_external_id(self, external_id: str) -> Contact | None:
        query = select(Contact).where(Contact.external_id == external_id)
        return self.session.scalars(query).one_or_none()

    def add(self, contact: Contact) -> None:
        self.session.add(contact)
        self.session.flush()

    def set_consent(self, contact: Contact, consent: Consent, source: str) -> bool:
        if contact.email_consent == consent:
            return False
        contact.email_consent = consent
        if consent == Consent.CONFIRMED:  # re-consent at 13 and 18 reads when (issue 18)
            contact.email_consent_at = datetime.now(UTC)
        self.session.add(
            ConsentChange(contact_id=contact.id, channel="email", status=consent, source=source)
        )
        self.session.flush()
        return True

    def consent_history(self, contact: Contact) -> list[tuple[str, str]]:
        C = ConsentChange
        query = select(C.status, C.source).where(C.contact_id == contact.id, C.channel == "email")
        return [(s, src) for s, src in self.session.execute(query.order_by(C.id))]


class SqlLinks:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, link: Link) -> None:
        self.session.add(link)
        self.session.flush()

    def by_token(self, token: str) -> Link | None:
        # The public token is signed around the stored one (the link's id: create_link).
        return self.session.scalars(select(Link).where(Link.token == token)).one_or_none()


class SqlTemplates:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, template_id: str) -> Template | None:
        return self.session.get(Template, template_id)

    def add(self, template: Template) -> None:
        self.session.add(template)
        self.session.flush()


class SqlResources:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, resource: Resource) -> None:
        self.session.add(resource)
        self.session.flush()

    def known(self, resource_ids: Collection[str]) -> set[str]:
        if not resource_ids:
            return set()
        query = select(Resource.id).where(Resource.id.in_(list(resource_ids)))
        return set(self.session.scalars(query))


class SqlEventLedger:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add_new(self, event_ids: Sequence[str]) -> set[str]:
        rows = [{"event_id": i} for i in event_ids]
        return insert_new(self.session, AcceptedEvent.__table__, rows, "event_id")

    def enqueue(self, topic: str, records: Sequence[dict[str, Any]]) -> None:
        add_to_outbox(self.session, topic, records)


def add_to_outbox(session: Session, topic: str, records: Sequence[dict[str, Any]]) -> None:
    """Add records bound for ``topic`` to the outbox (one row, however many records)."""
    if records:
        session.execute(insert(OutboxMessage), [{"topic": topic, "records": list(records)}])
