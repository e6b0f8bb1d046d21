"""Recounting a few persons: their stage facts and credits, rebuilt from their events.

Used when events change hands (an identity merge or its undo): everything stored for
the affected persons is deleted and derived again from their events and touches, with
the same rules as the stream sink, so nothing is counted twice or lost.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from services.analytics.recompute import credit_rows, stored_touch, touch_columns
from services.db.models import Credit, EngagementEvent, StageFact, Touch
from services.db.upsert import insert_ignore
from services.db.values import chunks, utc
from services.domain.attribution import Touch as DomainTouch
from services.domain.periods import PeriodKind, period_of
from services.domain.stages import Stage, implied

__all__ = ["recount_persons"]


def recount_persons(
    session: Session, persons: Sequence[str], timezone: str, stream_window: int
) -> dict[str, int]:
    """Rebuild ``stage_facts`` and ``credits`` (every window in use) of ``persons``."""
    persons = sorted(set(persons))
    C, F, E = Credit, StageFact, EngagementEvent
    windows = set(
        session.scalars(select(C.window_days).distinct().where(C.person.in_(persons)))
    ) | {stream_window}
    session.execute(delete(C).where(C.person.in_(persons)))
    session.execute(delete(F).where(F.person.in_(persons)))
    stmt = select(E.event_id, E.person, E.occurred_at, E.stage).where(
        E.person.in_(persons), E.stage.is_not(None), E.bot.is_(False)
    )
    events = [
        {"event_id": r.event_id, "person": r.person, "occurred_at": utc(r.occurred_at)}
        | {"stage": r.stage}
        for r in session.execute(stmt)
    ]
    facts = _facts(events, timezone)
    for chunk in chunks(facts, 2000):
        insert_ignore(session, cast(Table, F.__table__), chunk)
    touches = _touches(session, persons)
    credits = [
        row
        for window in sorted(windows)
        for e in events
        for row in credit_rows(e, touches.get(e["person"], []), window, timezone)
    ]
    for chunk in chunks(credits, 2000):
        insert_ignore(session, cast(Table, C.__table__), chunk)
    return {"events": len(events), "stage_facts": len(facts), "credits": len(credits)}


def _facts(events: Sequence[dict[str, Any]], timezone: str) -> list[dict[str, str]]:
    found: set[tuple[str, str, str, str]] = set()
    for e in events:
        labels = [(k.value, period_of(e["occurred_at"], k, timezone)) for k in PeriodKind]
        for stage in implied(Stage(e["stage"])):
            found.update((kind, label, stage.value, e["person"]) for kind, label in labels)
    return [
        {"period_kind": k, "period": p, "stage": s, "person": who} for k, p, s, who in sorted(found)
    ]


def _touches(session: Session, persons: Sequence[str]) -> dict[str, list[DomainTouch]]:
    found: dict[str, list[DomainTouch]] = defaultdict(list)
    for r in session.execute(select(*touch_columns()).where(Touch.person.in_(persons))):
        found[r.person].append(stored_touch(r))
    return found
