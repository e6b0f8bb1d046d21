"""Simulation: what a journey would have done over the stored events of a past range.

Nothing is written or sent. The events that could trigger it in ``[from, to]`` are read
from SQL, matched by the same pure rules as the stream, and every entry due by ``now``
is decided by the same :func:`~services.domain.journeys.decide_due` as the timer
runner, on the same facts (the person's events up to the due moment, current consent,
earlier messages of all campaigns and *other* journeys). So, for the same events, the
simulation's counts equal those of actually running the journey.

Unlike the live journey, a simulation also counts events from before the journey was
created: that is what it is for.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db.models import EngagementEvent, Resource
from services.db.models_journeys import Journey
from services.domain.events import EventError, supported_time
from services.domain.journeys import (
    STATS,
    FrequencyCap,
    JourneyError,
    Outcome,
    RunState,
    StageEvent,
    Trigger,
    decide_due,
    match_triggers,
)
from services.domain.periods import PeriodKind, period_bounds
from services.journeys.definitions import rule_of
from services.journeys.facts import (
    events_of,
    journey_topics,
    message_times,
    reachability,
    resource_topics,
    stage_event,
)

__all__ = ["range_bounds", "simulate"]


def simulate(
    session: Session,
    journey: Journey,
    start: datetime,
    end: datetime,
    now: datetime,
    cap: FrequencyCap,
    timezone: str = "UTC",
) -> dict[str, int]:
    """Counts ``{triggered, waiting, acted, exited, skipped_consent, skipped_cap,
    people, messages}`` of ``journey`` over events in ``[start, end)``."""
    rule = rule_of(journey, from_creation=False)
    entries = match_triggers([rule], _candidates(session, rule.trigger, start, end))
    due = [e for e in entries if e.due_at <= now]
    counts = dict.fromkeys(STATS, 0) | {
        "triggered": len(entries),
        RunState.WAITING: len(entries) - len(due),
    }
    if not due:
        return counts | {"people": 0, "messages": 0}
    persons = {e.person for e in due}
    first, last = min(e.due_at for e in due), max(e.due_at for e in due)
    decided = decide_due(
        due,
        {journey.id: rule.exit},
        events_of(session, persons, last),
        reachability(
            session,
            persons,
            {journey.id: journey.action},
            now,
            timezone,
            journey_topics(session, {journey.id: journey.trigger}),
        ),  # fmt: skip
        message_times(session, persons, first - cap.window, last, exclude_journey=journey.id),
        cap,
    )
    for _, outcome in decided:
        counts[outcome.value] += 1
    acted = {e.person for e, o in decided if o is Outcome.ACTED}
    return counts | {"people": len(acted), "messages": counts[Outcome.ACTED.value]}


def _candidates(
    session: Session, trigger: Trigger, start: datetime, end: datetime
) -> list[StageEvent]:
    """Stored events in the range that pass the trigger's SQL-checkable parts."""
    E = EngagementEvent
    stmt = select(
        E.event_id, E.person, E.type, E.occurred_at, E.stage, E.resource_id, E.campaign_id
    ).where(E.bot.is_(False), E.occurred_at >= start, E.occurred_at < end)
    if trigger.types:
        stmt = stmt.where(E.type.in_(sorted(trigger.types)))
    if trigger.stage is not None:
        stmt = stmt.where(E.stage == trigger.stage.value)
    if trigger.resource_id is not None:
        stmt = stmt.where(E.resource_id == trigger.resource_id)
    if trigger.campaign_id is not None:
        stmt = stmt.where(E.campaign_id == trigger.campaign_id)
    if trigger.topic is not None:
        on_topic = [
            rid
            for rid, topics in session.execute(select(Resource.id, Resource.topics))
            if trigger.topic in {str(t).strip().lower() for t in topics or []}
        ]
        stmt = stmt.where(E.resource_id.in_(on_topic))
    rows = session.execute(stmt.order_by(E.occurred_at, E.event_id)).all()
    topics = resource_topics(session, (r.resource_id for r in rows))
    return [stage_event(r, topics) for r in rows]


def range_bounds(start: Any, end: Any, timezone: str = "UTC") -> tuple[datetime, datetime]:
    """``[from, to]`` as datetimes: a date covers its whole day in the reporting zone."""
    lo = _moment(start, "from", timezone, first=True)
    hi = _moment(end, "to", timezone, first=False)
    if hi <= lo:
        raise JourneyError("to: must be after from")
    return lo.astimezone(UTC), hi.astimezone(UTC)


def _moment(value: Any, name: str, timezone: str, *, first: bool) -> datetime:
    """The time ``value`` gives, inside the supported range (services/domain/events.py)."""
    text = value.isoformat() if isinstance(value, datetime) else str(value or "")
    try:
        if isinstance(value, datetime):
            moment = value
        elif len(text) == 10:
            day = date.fromisoformat(text)
            supported_time(datetime(day.year, day.month, day.day, tzinfo=UTC), name, text)
            lo, hi = period_bounds(day.isoformat(), PeriodKind.DAY, timezone)
            moment = lo if first else hi
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return supported_time(moment if moment.tzinfo else moment.replace(tzinfo=UTC), name, text)
    except EventError as exc:
        raise JourneyError(str(exc)) from None
    except ValueError:
        raise JourneyError(f"{name}: must be a date (YYYY-MM-DD) or an RFC 3339 time") from None
