"""Journey definitions: checking, saving (with the journey's own campaign), statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.db.models import Campaign, Messenger, Template
from services.db.models_journeys import Journey, JourneyRun
from services.db.values import utc
from services.domain.journeys import (
    STATS,
    JourneyError,
    JourneyRule,
    parse_delay,
    parse_exit,
    parse_trigger,
)
from services.domain.lifecycle import CampaignStatus
from services.domain.unsubscribe_groups import MAX_GROUP_ID, group_id
from services.ids import new_id

CHANNELS = ("email", "messenger")
CAMPAIGN_PREFIX = "journey: "


def rule_of(journey: Journey, *, from_creation: bool = True) -> JourneyRule:
    """The pure rule of a stored journey (``from_creation``: older events do not trigger)."""
    return JourneyRule(
        id=journey.id,
        trigger=parse_trigger(journey.trigger),
        delay=timedelta(seconds=journey.delay_seconds),
        exit=parse_exit(journey.exit),
        starts_at=utc(journey.created_at) if from_creation else None,
    )


def check_action(session: Session, action: dict[str, Any]) -> dict[str, Any]:
    """``{"channel": "email", "template_id"}`` or ``{"channel": "messenger", "messenger_id"}``."""
    channel = action.get("channel")
    if channel == "email":
        template = session.get(Template, str(action.get("template_id") or ""))
        if template is None:
            raise JourneyError(
                f"action.template_id: unknown template {action.get('template_id')!r}"
            )
        if template.channel != "email":
            raise JourneyError("action.template_id: an email journey needs an email template")
        return {"channel": "email", "template_id": template.id} | _group(action)
    if channel == "messenger":
        messenger = session.get(Messenger, str(action.get("messenger_id") or ""))
        if messenger is None:
            raise JourneyError(
                f"action.messenger_id: unknown messenger {action.get('messenger_id')!r}"
            )
        return {"channel": "messenger", "messenger_id": messenger.id}
    raise JourneyError(f"action.channel: must be one of {', '.join(CHANNELS)}, got {channel!r}")


def _group(action: dict[str, Any]) -> dict[str, int]:
    """``{"unsubscribe_group": id}`` when the email action names one (SendGrid ASM group)."""
    if action.get("unsubscribe_group") is None:
        return {}
    group = group_id(action["unsubscribe_group"])
    if group is None:
        raise JourneyError(f"action.unsubscribe_group: must be an integer from 1 to {MAX_GROUP_ID}")
    return {"unsubscribe_group": group}


def _checked(session: Session, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The delay in seconds and the checked action of a journey body (JourneyError)."""
    trigger = parse_trigger(body.get("trigger") or {})
    delay = parse_delay(body.get("delay", "P0D"))
    parse_exit(body.get("exit"))
    action = check_action(session, dict(body.get("action") or {}))
    if trigger.campaign_id and session.get(Campaign, trigger.campaign_id) is None:
        raise JourneyError(f"trigger.campaign_id: unknown campaign {trigger.campaign_id!r}")
    return int(delay.total_seconds()), action


def _define(journey: Journey, body: dict[str, Any], delay: int, action: dict[str, Any]) -> None:
    journey.name = str(body["name"])
    journey.trigger = dict(body.get("trigger") or {})
    journey.delay = str(body.get("delay", "P0D"))
    journey.delay_seconds = delay
    journey.exit = dict(body.get("exit") or {})
    journey.action = action
    journey.enabled = bool(body.get("enabled", True))


def create_journey(session: Session, body: dict[str, Any], now: datetime) -> Journey:
    """Check and save a journey; an email journey gets its own campaign row."""
    delay, action = _checked(session, body)
    journey = Journey(id=new_id(), created_at=now.astimezone(UTC))
    _define(journey, body, delay, action)
    _email_campaign(session, journey)
    session.add(journey)
    session.flush()
    return journey


def update_journey(session: Session, journey: Journey, body: dict[str, Any]) -> Journey:
    """Check and replace a journey's definition; runs under way keep their due time."""
    delay, action = _checked(session, body)
    _define(journey, body, delay, action)
    _email_campaign(session, journey)
    session.flush()
    return journey


def _email_campaign(session: Session, journey: Journey) -> None:
    """An email journey's own campaign, made once and kept in line with its action."""
    action = journey.action
    if action["channel"] != "email":
        return
    campaign = session.get(Campaign, journey.campaign_id) if journey.campaign_id else None
    if campaign is None:
        campaign = Campaign(
            id=new_id(),
            resources=[],
            channel="email",
            status=CampaignStatus.SENT,  # reopened (sending) when a run adds sends
        )
        session.add(campaign)
    campaign.name = f"{CAMPAIGN_PREFIX}{journey.name}"[:200]
    campaign.template_id = action["template_id"]
    campaign.unsubscribe_group = action.get("unsubscribe_group")
    session.flush()
    journey.campaign_id = campaign.id


def stats(session: Session, journey_ids: list[str]) -> dict[str, dict[str, int]]:
    """``{journey id: {triggered, waiting, acted, exited, skipped_consent, skipped_cap,
    held_out}}``."""
    out = {j: dict.fromkeys(STATS, 0) for j in journey_ids}
    stmt = (
        select(JourneyRun.journey_id, JourneyRun.state, func.count())
        .where(JourneyRun.journey_id.in_(journey_ids))
        .group_by(JourneyRun.journey_id, JourneyRun.state)
    )
    for journey_id, state, n in session.execute(stmt):
        counts = out[journey_id]
        counts["triggered"] += n
        if state in counts:
            counts[state] += n
    return out


def view(journey: Journey, counts: dict[str, int]) -> dict[str, Any]:
    """The public form of a journey with its statistics."""
    return {
        "id": journey.id,
        "name": journey.name,
        "trigger": journey.trigger,
        "delay": journey.delay,
        "exit": journey.exit,
        "action": journey.action,
        "enabled": journey.enabled,
        "campaign_id": journey.campaign_id,
        "created_at": utc(journey.created_at).isoformat(),
        "stats": counts,
    }
