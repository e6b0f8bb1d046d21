"""Campaign life cycle for the dispatcher and staff: schedule (``send_at`` with a time
zone), claim when due, materialise sends, pause, resume, cancel, finish.

``draft`` → ``scheduled`` → ``sending`` → ``sent``; ``paused`` from ``scheduled`` or
``sending`` (back with resume); ``cancelled`` from anything not yet ``sent`` (the rules:
:mod:`services.domain.lifecycle`). The dispatcher's batch query joins the campaign's status, so pause and cancel take effect
between two batches. Times are stored in UTC: SQLite keeps no offset, so a ``send_at``
of 09:00+02:00 must be written as 07:00 UTC to be compared correctly.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from services.campaigns.personalise import CampaignRun, Personaliser, Version, language_key
from services.db.audiences import MAILABLE, members
from services.db.models import Campaign, Contact, Link, Resource, Send, Template
from services.db.models_audiences import CampaignAudience, SavedAudience
from services.db.models_consent import InflightSend, TemplateVariant
from services.db.session import transaction
from services.db.upsert import insert_ignore
from services.domain import lifecycle
from services.domain.audience import parse_audience
from services.domain.events import as_utc
from services.domain.lifecycle import ACTIVE, CampaignStateError, SendStatus
from services.domain.lifecycle import CampaignStatus as Status
from services.domain.periods import PeriodKind, period_of
from services.domain.segments import parse_segment
from services.ids import new_id
from services.service_layer import handlers

__all__ = [
    "CampaignStateError",
    "as_utc",
    "cancel",
    "claim_due",
    "finish",
    "pause",
    "prepare",
    "resume",
    "schedule",
    "template_versions",
]

log = logging.getLogger(__name__)
CONTACT_PAGE = 5000
_SENDS = cast(Table, Send.__table__)


def schedule(session: Session, campaign: Campaign, send_at: datetime | None, now: datetime) -> None:
    """``draft|scheduled`` → ``scheduled`` at ``send_at`` (default: the stored one, or now)."""
    handlers.schedule(campaign, send_at, now)


def pause(session: Session, campaign: Campaign) -> None:
    """Stop sending after the batch under way; nothing is lost."""
    campaign.status = lifecycle.pause(campaign.status)


def resume(session: Session, campaign: Campaign) -> None:
    """Back to ``sending`` when sends exist (it had started), else ``scheduled``."""
    started = session.scalar(select(Send.id).where(Send.campaign_id == campaign.id).limit(1))
    campaign.status = lifecycle.resume(campaign.status, started=started is not None)


def cancel(session: Session, campaign: Campaign) -> None:
    campaign.status = lifecycle.cancel(campaign.status)


# --- the dispatcher's side -------------------------------------------------------------


def claim_due(sessions: sessionmaker[Session], now: datetime) -> list[str]:
    """Campaigns to work on: due ``scheduled`` ones (claimed now) and ``sending`` ones."""
    with sessions() as session:
        due = session.execute(
            select(Campaign.id, Campaign.status)
            .where(
                Campaign.channel == "email",
                Campaign.status.in_(ACTIVE),
                or_(Campaign.send_at.is_(None), Campaign.send_at <= now),
            )
            .order_by(Campaign.created_at, Campaign.id)
        ).all()
    ready = []
    for campaign_id, status in due:
        try:
            if status == Status.SENDING or _start(sessions, campaign_id):
                ready.append(campaign_id)
        except Exception:  # noqa: BLE001 - e.g. a bad audience: leave it scheduled, log it
            log.exception("campaign %s: could not start", campaign_id)
    return ready


def _start(sessions: sessionmaker[Session], campaign_id: str) -> bool:
    """``scheduled`` → ``sending`` and its Send rows, in one transaction."""
    with transaction(sessions) as session:
        claim = update(Campaign).where(
            Campaign.id == campaign_id, Campaign.status == Status.SCHEDULED
        )
        result = cast(CursorResult[Any], session.execute(claim.values(status=Status.SENDING)))
        if result.rowcount != 1:
            return False  # another dispatcher got there first
        campaign = session.get_one(Campaign, campaign_id)
        total = _materialise(session, campaign)
    log.info("campaign %s: sending to %d recipient(s)", campaign_id, total)
    return True


def _materialise(session: Session, campaign: Campaign) -> int:
    """One pending Send per confirmed contact with an address in the audience."""
    if target := session.get(CampaignAudience, campaign.id):
        return _materialise_segment(session, campaign.id, target.audience_id, campaign.send_at)
    audience = parse_audience(campaign.audience)
    columns = (Contact.id, Contact.pseudonym, Contact.role, Contact.language) + (
        Contact.external_id,
        Contact.tags,
        Contact.attributes,
    )
    last, total = 0, 0
    while True:
        page = session.execute(
            select(*columns)
            .where(
                Contact.id > last,
                *MAILABLE,
            )
            .order_by(Contact.id)
            .limit(CONTACT_PAGE)
        ).all()
        if not page:
            return total
        last = page[-1].id
        rows = [
            {"id": new_id(), "campaign_id": campaign.id, "contact_id": c.id}
            | {"person": c.pseudonym, "status": SendStatus.PENDING}
            for c in page
            if audience.matches(
                {"role": c.role, "language": c.language, "external_id": c.external_id}
                | {"tags": c.tags or [], "attributes": c.attributes or {}}
            )
        ]
        insert_ignore(session, _SENDS, rows)
        total += len(rows)


def _materialise_segment(
    session: Session, campaign_id: str, audience_id: str, send_at: datetime | None
) -> int:
    """The sends of a campaign to a stored audience, its members on the day it starts."""
    rule = parse_segment(session.get_one(SavedAudience, audience_id).rule)
    day = date.fromisoformat(period_of(as_utc(send_at or datetime.now(UTC)), PeriodKind.DAY))
    total = 0
    for page in members(session, rule, day):
        rows = [
            {"id": new_id(), "campaign_id": campaign_id, "contact_id": m.id}
            | {"person": m.pseudonym, "status": SendStatus.PENDING}
            for m in page
        ]
        insert_ignore(session, _SENDS, rows)
        total += len(rows)
    return total


def prepare(
    sessions: sessionmaker[Session], campaign_id: str, personaliser: Personaliser
) -> CampaignRun | None:
    """Load a ``sending`` campaign, its template and variants and resources; create its
    links once."""
    with transaction(sessions) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.status != Status.SENDING:
            return None
        default, variants = template_versions(session, campaign.template_id)
        wanted = [str(r) for r in campaign.resources or []]
        found = {r.id: r for r in session.scalars(select(Resource).where(Resource.id.in_(wanted)))}
        if missing := [r for r in wanted if r not in found]:
            log.warning("campaign %s: unknown resource(s) %s skipped", campaign_id, missing)
        resources = [found[r] for r in wanted if r in found]
        run = CampaignRun(campaign.id, campaign.name, default, variants, resources)
        run.unsubscribe_group = campaign.unsubscribe_group
        run.throttle_per_hour = campaign.throttle_per_hour
        _load_links(session, run)
        for resource in resources:
            if resource.id not in run.resource_links:
                link = personaliser.new_link(session, run.id, resource.url, resource_id=resource.id)
                run.resource_links[resource.id] = link
        session.expunge_all()
    return run


def template_versions(session: Session, template_id: str) -> tuple[Version, dict[str, Version]]:
    """A template's texts and its language variants (language key → variant)."""
    template = session.get_one(Template, template_id)
    variants = {
        key: Version(v.subject, v.html, v.text)
        for v in session.scalars(
            select(TemplateVariant).where(TemplateVariant.template_id == template.id)
        )
        if (key := language_key(v.language))
    }
    return Version(template.subject, template.html, template.text), variants


def _load_links(session: Session, run: CampaignRun) -> None:
    rows = session.execute(
        select(Link.id, Link.destination, Link.resource_id).where(
            Link.campaign_id == run.id,
            Link.channel == "email",
            Link.send_id.is_(None),
            Link.person.is_(None),
            Link.messenger_id.is_(None),
        )
    ).all()
    urls = {r.id: r.url for r in run.resources}
    for link_id, destination, resource_id in rows:
        if resource_id is None:
            run.tracked_links.setdefault(destination, link_id)
        elif urls.get(resource_id) == destination:
            run.resource_links.setdefault(resource_id, link_id)


def finish(sessions: sessionmaker[Session], campaign_id: str) -> None:
    """``sending`` → ``sent`` once no send of the campaign is pending or in flight."""
    with transaction(sessions) as session:
        pending = select(Send.id).where(
            Send.campaign_id == campaign_id, Send.status == SendStatus.PENDING
        )
        inflight = select(InflightSend.send_id).where(InflightSend.campaign_id == campaign_id)
        session.execute(
            update(Campaign)
            .where(
                Campaign.id == campaign_id,
                Campaign.status == Status.SENDING,
                ~pending.exists(),
                ~inflight.exists(),
            )
            .values(status=Status.SENT)
        )
