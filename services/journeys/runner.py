"""The timer runner: acts on journey runs whose time has come.

``run_due_journeys(container, now)`` takes waiting runs with ``due_at <= now`` in due
order, a batch per transaction, and decides each with the pure
:func:`services.domain.journeys.decide_due` on facts read at that moment (exit
condition, consent and suppression, the frequency cap). In the same transaction it
records the outcome and, for an email action, a pending ``Send`` of the journey's own
campaign (which it puts back to ``sending``); a messenger action adds the person to
that messenger's follow-up list. A run leaves ``waiting`` exactly once, so each
(journey, person) acts at most once, whatever the restarts.

The emails themselves go out through the campaign dispatcher, which the composition
root hands in as ``container.send_due_emails`` (consent re-checked per
batch, touches enqueued, so journeys are credited like campaigns): ``deliver=True``
calls it right away; in the dispatcher role its own loop would pick them up anyway.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from services.db.models import Campaign, Contact, Send
from services.db.models_journeys import FollowUp, Journey, JourneyRun
from services.db.session import transaction
from services.db.upsert import insert_ignore
from services.db.values import chunks, utc
from services.domain.journeys import (
    Entry,
    FrequencyCap,
    Outcome,
    RunState,
    decide_due,
    parse_cap,
    parse_exit,
)
from services.domain.lifecycle import CampaignStatus, SendStatus
from services.experiments.assign import held_out
from services.ids import new_id
from services.journeys.facts import events_of, journey_topics, message_times, reachability

if TYPE_CHECKING:
    from services.application import Container
    from services.campaigns.channels.email import EmailSender
    from services.config import Settings

__all__ = ["run_due_journeys"]

log = logging.getLogger(__name__)
BATCH = 500
_RUNS = cast(Table, JourneyRun.__table__)
_MARK = (
    update(_RUNS)
    .where(_RUNS.c.id == bindparam("b_id"), _RUNS.c.state == RunState.WAITING)
    .values(state=bindparam("b_state"), decided_at=bindparam("b_at"), send_id=bindparam("b_send"))
)


def run_due_journeys(
    container: Container,
    now: datetime | None = None,
    *,
    deliver: bool = True,
    sender: EmailSender | None = None,
    batch: int = BATCH,
) -> dict[str, int]:
    """Decide every due run; returns counts by outcome (``acted``, ``exited``, ...)."""
    now = (now or container.now()).astimezone(UTC)
    cap = parse_cap(container.settings.frequency_cap)
    counts = {o.value: 0 for o in Outcome}
    emails = 0
    while True:
        with transaction(container.sessions) as session:
            decided = _decide_batch(session, now, cap, batch, container.settings)
        if not decided:
            break
        for outcome, n in decided.items():
            counts[outcome] = counts.get(outcome, 0) + n
        emails += decided.get("emails", 0)
    counts.pop("emails", None)
    if deliver and emails:
        container.send_due_emails(container, now, sender)
    return counts


def _decide_batch(
    session: Session, now: datetime, cap: FrequencyCap, batch: int, settings: Settings
) -> dict[str, int]:
    R, J = JourneyRun, Journey
    stmt = (
        select(R.id, R.journey_id, R.person, R.trigger_event_id, R.triggered_at, R.due_at)
        .join(J, J.id == R.journey_id)
        .where(R.state == RunState.WAITING, R.due_at <= now, J.enabled.is_(True))
        .order_by(R.due_at, R.trigger_event_id, R.id)
        .limit(batch)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=_RUNS, skip_locked=True)
    rows = session.execute(stmt).all()
    if not rows:
        return {}
    runs = {
        (r.journey_id, r.person): (r.id, Entry(utc(r.due_at), r.trigger_event_id, r.journey_id,
                                               r.person, utc(r.triggered_at)))
        for r in rows
    }  # fmt: skip
    entries = [entry for _, entry in runs.values()]
    journeys = {
        j.id: j for j in session.scalars(select(J).where(J.id.in_({e.journey_id for e in entries})))
    }
    persons = {e.person for e in entries}
    first, last = min(e.due_at for e in entries), max(e.due_at for e in entries)
    decided = decide_due(
        entries,
        {jid: parse_exit(j.exit) for jid, j in journeys.items()},
        events_of(session, persons, last),
        reachability(
            session,
            persons,
            {jid: j.action for jid, j in journeys.items()},
            now,
            settings.timezone,
            journey_topics(session, {jid: j.trigger for jid, j in journeys.items()}),
        ),
        message_times(session, persons, first - cap.window, last),
        cap,
    )
    held = _held_out(session, settings, now, decided)
    return _apply(session, now, journeys, runs, decided, held)


def _apply(
    session: Session,
    now: datetime,
    journeys: dict[str, Journey],
    runs: dict[tuple[str, str], tuple[int, Entry]],
    decided: list[tuple[Entry, Outcome]],
    held: set[tuple[str, str]],
) -> dict[str, int]:
    """Record outcomes; write the sends and follow-ups of the acted runs (not held out)."""
    acted = [e for e, o in decided if o is Outcome.ACTED]
    contacts = _contact_ids(session, {e.person for e in acted})
    sends, follow_ups, marks = [], [], []
    counts: dict[str, int] = {}
    for entry, outcome in decided:
        run_id = runs[(entry.journey_id, entry.person)][0]
        journey, send_id = journeys[entry.journey_id], None
        state: str = outcome.value
        if outcome is Outcome.ACTED and (entry.journey_id, entry.person) in held:
            state = RunState.HELD_OUT.value  # the action is skipped, and recorded
        elif outcome is Outcome.ACTED and journey.action.get("channel") == "email":
            send_id = new_id()
            sends.append({"id": send_id, "campaign_id": journey.campaign_id}
                         | {"status": SendStatus.PENDING, "contact_id": contacts[entry.person],
                            "person": entry.person})  # fmt: skip
        elif outcome is Outcome.ACTED:
            follow_ups.append({"run_id": run_id, "journey_id": journey.id, "done": False}
                              | {"messenger_id": journey.action["messenger_id"],
                                 "person": entry.person, "due_at": entry.due_at})  # fmt: skip
        marks.append({"b_id": run_id, "b_state": state, "b_at": now, "b_send": send_id})
        counts[state] = counts.get(state, 0) + 1
    session.execute(_MARK, marks)
    insert_ignore(session, cast(Table, Send.__table__), sends)
    insert_ignore(session, cast(Table, FollowUp.__table__), follow_ups)
    if sends:
        campaigns = sorted({str(s["campaign_id"]) for s in sends})
        session.execute(
            update(Campaign)
            .where(Campaign.id.in_(campaigns), Campaign.status == CampaignStatus.SENT)
            .values(status=CampaignStatus.SENDING)
        )
    counts["emails"] = len(sends)
    return counts


def _held_out(
    session: Session, settings: Settings, now: datetime, decided: list[tuple[Entry, Outcome]]
) -> set[tuple[str, str]]:
    """(journey, person) of the acted runs whose person is a control (assigned now)."""
    acted: dict[str, list[str]] = {}
    for entry, outcome in decided:
        if outcome is Outcome.ACTED:
            acted.setdefault(entry.journey_id, []).append(entry.person)
    return {
        (journey_id, person)
        for journey_id, persons in acted.items()
        for person in held_out(session, settings, "journey", journey_id, persons, now)
    }


def _contact_ids(session: Session, persons: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in chunks(sorted(persons)):
        stmt = select(Contact.pseudonym, Contact.id).where(Contact.pseudonym.in_(chunk))
        found.update({p: i for p, i in session.execute(stmt)})
    return found
