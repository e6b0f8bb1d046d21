"""What journey decisions read from SQL: events, topics, reachability, earlier messages.

The timer runner and the simulation both load their inputs here, so they decide on
the same facts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.db.guardians import journey_blocked
from services.db.models import Contact, EngagementEvent, Resource, Send, Suppression
from services.db.models_consent import GroupUnsubscribe
from services.db.models_journeys import Journey, JourneyRun
from services.db.values import chunks, utc
from services.domain.journeys import Entry, RunState, StageEvent
from services.domain.lifecycle import SendStatus
from services.domain.preferences import topics_reason
from services.domain.stages import Stage
from services.domain.unsubscribe_groups import blocked_reason

_NONE: frozenset[str] = frozenset()


def resource_topics(session: Session, ids: Iterable[str | None]) -> dict[str, frozenset[str]]:
    """Topics of the given resources (unknown resources have none)."""
    wanted = sorted({i for i in ids if i})
    found: dict[str, frozenset[str]] = {}
    for chunk in chunks(wanted):
        for rid, topics in session.execute(
            select(Resource.id, Resource.topics).where(Resource.id.in_(chunk))
        ):
            found[rid] = frozenset(str(t).strip().lower() for t in topics or [])
    return found


def stage_event(row: Any, topics: dict[str, frozenset[str]]) -> StageEvent:
    """A stored (or streamed) event as the journey rules see it."""
    return StageEvent(
        event_id=row.event_id,
        person=row.person,
        type=row.type,
        occurred_at=utc(row.occurred_at),
        stage=Stage(row.stage) if row.stage else None,
        resource_id=row.resource_id,
        campaign_id=row.campaign_id,
        topics=topics.get(row.resource_id or "", frozenset()),
    )


_EVENT_COLUMNS = (
    EngagementEvent.event_id,
    EngagementEvent.person,
    EngagementEvent.type,
    EngagementEvent.occurred_at,
    EngagementEvent.stage,
    EngagementEvent.resource_id,
    EngagementEvent.campaign_id,
)


def events_of(
    session: Session, persons: Iterable[str], until: datetime
) -> dict[str, list[StageEvent]]:
    """Each person's counted (not bot) events up to ``until``."""
    E = EngagementEvent
    found: dict[str, list[StageEvent]] = defaultdict(list)
    for chunk in chunks(sorted(set(persons))):
        stmt = select(*_EVENT_COLUMNS).where(
            E.person.in_(chunk), E.bot.is_(False), E.occurred_at <= until
        )
        rows = session.execute(stmt).all()
        topics = resource_topics(session, (r.resource_id for r in rows))
        for row in rows:
            found[row.person].append(stage_event(row, topics))
    return found


def journey_topics(
    session: Session, triggers: Mapping[str, Mapping[str, Any]]
) -> dict[str, frozenset[str]]:
    """What each journey is about: its trigger's topic, or its trigger resource's topics."""
    resources = resource_topics(session, (t.get("resource_id") for t in triggers.values()))
    about: dict[str, frozenset[str]] = {}
    for journey_id, trigger in triggers.items():
        topic = str(trigger.get("topic") or "").strip().lower()
        about[journey_id] = (
            frozenset({topic}) if topic else resources.get(trigger.get("resource_id") or "", _NONE)
        )
    return about


def reachability(
    session: Session,
    persons: Iterable[str],
    actions: dict[str, dict[str, Any]],
    now: datetime | None = None,
    timezone: str = "UTC",
    topics: Mapping[str, frozenset[str]] | None = None,
) -> Callable[[Entry], bool]:
    """Whether an entry's person can be reached *now* by its journey's action.

    Email needs a contact with an address, confirmed consent, no suppression, and not
    to have left the action's unsubscribe group (when it names one); a messenger's
    follow-up needs a known contact. With ``now``: no child without guardian consent, no
    one awaiting re-consent (ages on the network's calendar, ``timezone``), no one whose
    frequency is not "as sent"; and nobody who turned off all the journey's ``topics``.
    """
    normalized = func.coalesce(Contact.email_normalized, func.lower(func.trim(Contact.email)))
    known: dict[str, bool] = {}
    left: dict[str, set[int]] = defaultdict(set)
    off: dict[str, frozenset[str]] = {}
    for chunk in chunks(sorted(set(persons))):
        stmt = (
            select(Contact.pseudonym, Contact.email, Contact.email_consent, Suppression.reason)
            .add_columns(Contact.topics_off)
            .outerjoin(Suppression, Suppression.email_normalized == normalized)
            .where(Contact.pseudonym.in_(chunk))
        )
        for person, email, consent, suppressed, topics_off in session.execute(stmt):
            known[person] = blocked_reason(email, consent, suppressed, None) is None
            off[person] = frozenset(str(t).strip().lower() for t in topics_off or ())
        groups = (
            select(Contact.pseudonym, GroupUnsubscribe.group_id)
            .join(GroupUnsubscribe, GroupUnsubscribe.contact_id == Contact.id)
            .where(Contact.pseudonym.in_(chunk), GroupUnsubscribe.unsubscribed.is_(True))
        )
        for person, group in session.execute(groups):
            left[person].add(group)
        if now is not None:  # children, re-consent, frequency (issue 18)
            for person in journey_blocked(session, chunk, now, timezone):
                known.pop(person, None)

    def reachable(entry: Entry) -> bool:
        action = actions[entry.journey_id]
        about = (topics or {}).get(entry.journey_id, _NONE)
        if topics_reason(off.get(entry.person, _NONE), about):
            return False
        if action.get("channel") == "email":
            group = action.get("unsubscribe_group")
            return known.get(entry.person, False) and group not in left.get(entry.person, ())
        return entry.person in known

    return reachable


def message_times(
    session: Session,
    persons: Iterable[str],
    after: datetime,
    until: datetime,
    exclude_journey: str | None = None,
) -> dict[str, list[datetime]]:
    """Times of each person's messages in ``(after, until]``: campaign emails sent (at
    their send time) and journey actions (at their due time), for the frequency cap."""
    J, R = Journey, JourneyRun
    found: dict[str, list[datetime]] = defaultdict(list)
    journey_campaigns = select(J.campaign_id).where(J.campaign_id.is_not(None))
    for chunk in chunks(sorted(set(persons))):
        sends = select(Send.person, Send.sent_at).where(
            Send.person.in_(chunk),
            Send.status == SendStatus.SENT,
            Send.sent_at > after,
            Send.sent_at <= until,
            Send.campaign_id.not_in(journey_campaigns),
        )
        runs = select(R.person, R.due_at).where(
            R.person.in_(chunk), R.state == RunState.ACTED, R.due_at > after, R.due_at <= until
        )
        if exclude_journey is not None:
            runs = runs.where(R.journey_id != exclude_journey)
        for stmt in (sends, runs):
            for person, at in session.execute(stmt):
                if at is not None:
                    found[person].append(utc(at))
    return found
