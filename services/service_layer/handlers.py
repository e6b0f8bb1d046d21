"""Use cases: create, schedule and cancel a campaign, accept events, record a click.

Each runs over the ports it is given (a :class:`~services.ports.UnitOfWork`, an
:class:`~services.ports.EventSink`); tests/unit/service_layer/test_handlers.py runs them
over the in-memory fakes, the HTTP routes over SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.bus import topics
from services.db.models import Campaign
from services.domain import lifecycle
from services.domain.audience import AudienceError, parse_audience
from services.domain.events import (
    EventError,
    NormalisedEvent,
    as_utc,
    check_event,
    format_timestamp,
)
from services.domain.new_campaigns import (
    resources_problem,
    template_problem,
    unsubscribe_group_problem,
)
from services.domain.social import campaign_platforms
from services.ids import new_id
from services.ports import CampaignRepository, EventLedger, EventSink, UnitOfWork
from services.service_layer.views import describe

if TYPE_CHECKING:
    from services.db.models import Link

__all__ = [
    "CampaignNotFound",
    "CampaignRefused",
    "NewCampaign",
    "IngestResult",
    "accept_events",
    "cancel_campaign",
    "click",
    "create_campaign",
    "find_link",
    "record_click",
    "record_events",
    "schedule_campaign",
    "tracked",
]


class CampaignNotFound(LookupError):
    """No campaign has this id."""


# --- campaigns ---------------------------------------------------------------------------


class CampaignRefused(ValueError):
    """A rule refused a new campaign; the message is ``"field: reason"``."""


@dataclass(frozen=True)
class NewCampaign:
    """What staff give for a new campaign (the API's body, validated in form)."""

    name: str
    channel: str
    template_id: str
    audience: dict[str, Any] | None = None
    resources: list[str] = field(default_factory=list)
    messengers: list[str] = field(default_factory=list)
    #: None: the channel's default (every platform for a social campaign, else none).
    platforms: list[str] | None = None
    send_at: datetime | None = None
    unsubscribe_group: int | None = None
    #: Children under 13 without a guardian's consent: "skip" them or send to "guardians".
    children: str | None = None
    #: Part of the monthly digest (reaches people who chose "monthly digest only").
    digest: bool | None = None
    #: At most so many emails of the campaign in any hour (email only); None: no cap.
    throttle_per_hour: int | None = None


#: Something stored with a new campaign, in its transaction (a holdout, an audience, a
#: content test): called with the unit of work and the campaign's id; ValueError(reason)
#: refuses the campaign.
Extra = Callable[[UnitOfWork, str], None]


def create_campaign(
    uow: UnitOfWork,
    new: NewCampaign,
    check_posts: Callable[[], None] | None = None,
    extras: Sequence[Extra] = (),
) -> dict[str, Any]:
    """Store ``new`` as a ``draft`` once every rule holds (services/domain/new_campaigns),
    with its ``extras``; the campaign as staff see it. ``check_posts`` (the social
    channel's: every post renders and fits) raises ValueError(reason). CampaignRefused
    names the first problem."""
    with uow:
        problem = _new_campaign_problem(uow, new)
        if problem is not None:
            raise CampaignRefused(problem)
        try:
            if check_posts is not None:
                check_posts()
        except ValueError as exc:
            raise CampaignRefused(str(exc)) from None
        campaign = Campaign(
            id=new_id(),
            name=new.name,
            channel=new.channel,
            template_id=new.template_id,
            audience=new.audience,
            resources=new.resources,
            messengers=new.messengers,
            platforms=campaign_platforms(new.channel, new.platforms),
            send_at=new.send_at,
            status=lifecycle.CampaignStatus.DRAFT,
            unsubscribe_group=new.unsubscribe_group,
            children=new.children,
            digest=new.digest,
            throttle_per_hour=new.throttle_per_hour,
        )
        uow.campaigns.add(campaign)
        try:
            for extra in extras:
                extra(uow, campaign.id)
        except ValueError as exc:
            raise CampaignRefused(str(exc)) from None
        view = describe(campaign, uow.campaigns.progress(campaign.id))
        uow.commit()
    return view


def _new_campaign_problem(uow: UnitOfWork, new: NewCampaign) -> str | None:
    try:
        parse_audience(new.audience)
    except AudienceError as exc:
        return f"audience: {exc}"
    if problem := unsubscribe_group_problem(new.channel, new.unsubscribe_group):
        return problem
    if new.throttle_per_hour is not None and new.channel != "email":
        return "throttle_per_hour: only email campaigns are throttled"
    template = uow.templates.get(new.template_id)
    channel = template.channel if template is not None else None
    if problem := template_problem(new.channel, new.template_id, channel):
        return problem
    return resources_problem(new.resources, uow.resources.known(new.resources))


def schedule_campaign(
    uow: UnitOfWork, campaign_id: str, send_at: datetime | None, now: datetime
) -> dict[str, Any]:
    """``draft|scheduled`` → ``scheduled`` at ``send_at`` (default: the stored time, or
    now); the campaign as staff see it. CampaignStateError from another status."""
    with uow:
        campaign = _campaign(uow.campaigns, campaign_id)
        schedule(campaign, send_at, now)
        view = describe(campaign, uow.campaigns.progress(campaign.id))
        uow.commit()
    return view


def schedule(campaign: Campaign, send_at: datetime | None, now: datetime) -> None:
    """The rule of scheduling, on a campaign already loaded (times stored in UTC)."""
    status = lifecycle.schedule(campaign.status)
    campaign.send_at = as_utc(send_at or campaign.send_at or now)
    campaign.status = status


def cancel_campaign(uow: UnitOfWork, campaign_id: str) -> dict[str, Any]:
    """Anything not yet ``sent`` → ``cancelled``; CampaignStateError otherwise."""
    with uow:
        campaign = _campaign(uow.campaigns, campaign_id)
        campaign.status = lifecycle.cancel(campaign.status)
        view = describe(campaign, uow.campaigns.progress(campaign.id))
        uow.commit()
    return view


def _campaign(campaigns: CampaignRepository, campaign_id: str) -> Campaign:
    campaign = campaigns.get(campaign_id)
    if campaign is None:
        raise CampaignNotFound(campaign_id)
    return campaign


# --- events ------------------------------------------------------------------------------


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)


def accept_events(
    uow: UnitOfWork,
    items: Sequence[Any],
    *,
    now: datetime,
    to_record: Callable[[NormalisedEvent], dict[str, Any]],
) -> IngestResult:
    """The contract's ``POST /api/v1/events`` for 1..1000 items: each is checked (a bad
    one is rejected with its index), events of unknown campaigns are rejected, the rest
    become records (``to_record``: pseudonymised) and are spooled: new event ids into the
    ledger and their records into the outbox, in one transaction; known ids are
    duplicates."""
    result = IngestResult()
    valid: list[tuple[int, NormalisedEvent]] = []
    for index, raw in enumerate(items):
        try:
            if not isinstance(raw, dict):
                raise EventError("(item)", "must be a JSON object")
            valid.append((index, check_event(raw, now)))
        except EventError as exc:
            result.rejected.append({"index": index, "error": str(exc)})
    with uow:
        valid = _known_campaigns(uow.campaigns, valid, result)
        record_events(uow.events, [to_record(e) for _, e in valid], result)
        uow.commit()
    return result


def record_events(
    events: EventLedger, records: Sequence[dict[str, Any]], result: IngestResult
) -> None:
    """Spool server-made records: those whose event id is new (in the ledger and within
    ``records``) go to the outbox; ``result`` counts them and the duplicates."""
    new = events.add_new([r["event_id"] for r in records])
    fresh, seen = [], set()
    for r in records:
        if r["event_id"] in new and r["event_id"] not in seen:
            seen.add(r["event_id"])
            fresh.append(r)
    events.enqueue(topics.ENGAGEMENT, fresh)
    result.accepted += len(fresh)
    result.duplicates += len(records) - len(fresh)


def _known_campaigns(
    campaigns: CampaignRepository,
    valid: list[tuple[int, NormalisedEvent]],
    result: IngestResult,
) -> list[tuple[int, NormalisedEvent]]:
    wanted = {e.campaign_id for _, e in valid if e.campaign_id}
    if not wanted:
        return valid
    known = campaigns.known(wanted)
    kept = []
    for index, e in valid:
        if e.campaign_id and e.campaign_id not in known:
            error = f"campaign_id: unknown campaign {e.campaign_id!r}"
            result.rejected.append({"index": index, "error": error})
        else:
            kept.append((index, e))
    result.rejected.sort(key=lambda r: r["index"])
    return kept


# --- clicks ------------------------------------------------------------------------------


def find_link(uow: UnitOfWork, token: str) -> Link | None:
    """The stored link a verified token names (its destination is the only place a
    redirect goes), readable after the unit of work ends."""
    with uow:
        return uow.links.by_token(token)


def record_click(
    sink: EventSink,
    link: Link,
    *,
    send_id: str | None,
    person: str,
    now: datetime,
    bot_reason: str | None,
) -> None:
    """Hand the click on ``link`` (from the email send ``send_id``, if any) by ``person``
    to ``sink`` without waiting; a bot's click is kept, flagged."""
    sink.add(click(link, send_id=send_id, person=person, now=now, bot_reason=bot_reason))


def click(
    link: Link, *, send_id: str | None, person: str, now: datetime, bot_reason: str | None
) -> dict[str, Any]:
    """The engagement record of a click on ``link`` (from the email send ``send_id``)."""
    return tracked(
        "link.click",
        person,
        now,
        bot_reason,
        campaign_id=link.campaign_id,
        send_id=send_id,
        channel=link.channel or ("email" if send_id else None),
        messenger_id=link.messenger_id,
        resource_id=link.resource_id,
        link_id=link.id,
    )


def tracked(
    event_type: str, person: str, now: datetime, reason: str | None, **ids: Any
) -> dict[str, Any]:
    """The engagement record of a click or an open: who, when, bot or not, and ``ids``
    (campaign, send, channel, link...)."""
    prefix, source = _TRACKED[event_type]
    return {
        "event_id": f"{prefix}:{new_id()}",
        "type": event_type,
        "occurred_at": format_timestamp(now),
        "person": person,
        **ids,
        "bot": reason is not None,
        "bot_reason": reason,
        "source": source,
        "properties": {},
    }


_TRACKED = {"link.click": ("click", "redirect"), "email.open": ("open", "pixel")}
