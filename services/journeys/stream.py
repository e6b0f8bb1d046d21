"""Journeys in the stream: each committed batch of engagement records may start timers.

``on_batch(sessions, records)`` is called by the stream agent right after the sink
wrote a batch, in the same worker thread. It matches the records against the enabled
journeys (pure :func:`services.domain.journeys.match_triggers`) and writes one durable
timer per (journey, person) into ``journey_runs``. It costs nothing while no journey is
enabled (the list is cached for a few seconds) and two statements per batch otherwise.

Redelivered batches insert nothing (unique (journey, person)). A matching event older
than a waiting timer's trigger moves the timer to the earlier event, so the timers do
not depend on the order in which events arrive.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from services.analytics.stage_map import load_stage_map
from services.db.models_journeys import Journey, JourneyRun
from services.db.upsert import insert_ignore
from services.db.values import utc
from services.domain.journeys import Entry, JourneyRule, RunState, StageEvent, match_triggers
from services.domain.stages import StageMap
from services.journeys.definitions import rule_of
from services.journeys.facts import resource_topics

__all__ = ["JourneyTriggers", "on_batch", "write_entries"]

log = logging.getLogger(__name__)
TTL = 2.0
_RUNS = cast(Table, JourneyRun.__table__)
_EARLIER = (
    update(_RUNS)
    .where(
        _RUNS.c.journey_id == bindparam("b_journey"),
        _RUNS.c.person == bindparam("b_person"),
        _RUNS.c.state == RunState.WAITING,
        or_(
            _RUNS.c.triggered_at > bindparam("b_at"),
            and_(
                _RUNS.c.triggered_at == bindparam("b_at"),
                _RUNS.c.trigger_event_id > bindparam("b_event"),
            ),
        ),
    )
    .values(
        trigger_event_id=bindparam("b_event"),
        triggered_at=bindparam("b_at"),
        due_at=bindparam("b_due"),
    )
)


class JourneyTriggers:
    """Per-process trigger matcher with short-lived caches of journeys and the stage map."""

    def __init__(self, sessions: sessionmaker[Session], ttl: float = TTL):
        self.sessions = sessions
        self.ttl = ttl
        self._loaded_at = -1e9
        self._rules: list[JourneyRule] = []
        self._stage_map: StageMap | None = None

    def on_batch(self, records: Sequence[dict[str, Any]]) -> int:
        """Start timers for the batch's matching events; returns the entries written."""
        if not records or not self._refresh():
            return 0
        beyond: list[tuple[str, str]] = []
        with self.sessions() as session, session.begin():
            entries = match_triggers(self._rules, self._events(session, records), beyond)
            write_entries(session, entries)
        for journey_id, event_id in beyond:
            log.warning("journey %s: event %s would be due past year 9999; no timer",
                        journey_id, event_id)  # fmt: skip
        return len(entries)

    def _refresh(self) -> list[JourneyRule]:
        """The enabled journeys, re-read at most every ``ttl`` seconds."""
        if time.monotonic() - self._loaded_at > self.ttl:
            with self.sessions() as session:
                journeys = session.scalars(select(Journey).where(Journey.enabled.is_(True))).all()
                self._rules = [rule_of(j) for j in journeys]
                self._stage_map = load_stage_map(session) if journeys else None
            self._loaded_at = time.monotonic()
        return self._rules

    def _events(self, session: Session, records: Sequence[dict[str, Any]]) -> list[StageEvent]:
        assert self._stage_map is not None
        counted = [r for r in records if not r.get("bot")]
        topics = resource_topics(session, (r.get("resource_id") for r in counted))
        return [
            StageEvent(
                event_id=r["event_id"],
                person=r["person"],
                type=r["type"],
                occurred_at=_time(r["occurred_at"]),
                stage=self._stage_map.stage_of(r["type"]),
                resource_id=r.get("resource_id"),
                campaign_id=r.get("campaign_id"),
                topics=topics.get(r.get("resource_id") or "", frozenset()),
            )
            for r in counted
        ]


def write_entries(session: Session, entries: Sequence[Entry]) -> None:
    """Insert new timers; move waiting ones to an earlier trigger event."""
    if not entries:
        return
    rows = [
        {
            "journey_id": e.journey_id,
            "person": e.person,
            "trigger_event_id": e.event_id,
            "triggered_at": e.triggered_at,
            "due_at": e.due_at,
            "state": RunState.WAITING,
        }
        for e in entries
    ]
    insert_ignore(session, _RUNS, rows)
    session.execute(
        _EARLIER,
        [
            {
                "b_journey": e.journey_id,
                "b_person": e.person,
                "b_at": e.triggered_at,
                "b_event": e.event_id,
                "b_due": e.due_at,
            }
            for e in entries
        ],
    )


_hooks: dict[int, JourneyTriggers] = {}
_lock = threading.Lock()


def on_batch(sessions: sessionmaker[Session], records: Sequence[dict[str, Any]]) -> int:
    """The stream's hook: start journey timers for a committed batch of engagement records."""
    hook = _hooks.get(id(sessions))
    if hook is None:
        with _lock:
            hook = _hooks.setdefault(id(sessions), JourneyTriggers(sessions))
    return hook.on_batch(records)


def _time(value: str | datetime) -> datetime:
    return utc(value if isinstance(value, datetime) else datetime.fromisoformat(value))
