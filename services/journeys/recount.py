"""Identity changes applied by the stream: events change hands, persons are recounted.

The stream worker's sink process is the one writer of read models. An identity merge
(or its undo) reaches it as a record on the engagement topic
(``schemas/identity.v1.json``, :mod:`services.journeys.identity` publishes it), and
:func:`apply_changes` brings the stored rows in line with the merge as it stands in
``identity_merges``: an active merge has the visitor's events and touches moved to the
contact (each noted in ``merged_rows``), an undone one has exactly the noted rows moved
back (and the notes dropped). Then both persons' stage facts and credits are deleted and
derived again from their events and touches, with the same rules as the stream sink, so
nothing is counted twice or lost.

Applying a record depends only on the merge's state, not on how often or how late the
record comes: a redelivered record moves nothing and recounts the same rows.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from services.analytics import windows
from services.analytics.credit_rows import credit_rows
from services.analytics.stage_map import version_in_force
from services.analytics.window_credits import stored_touch, touch_columns
from services.db.models import Credit, EngagementEvent, StageFact, Touch
from services.db.models_journeys import IdentityMerge, MergedRow
from services.db.upsert import insert_ignore
from services.db.values import chunks, utc
from services.domain.attribution import Touch as DomainTouch
from services.domain.attribution import TouchHistory
from services.domain.periods import PeriodKind, period_of
from services.domain.stages import Stage, implied

__all__ = ["apply_changes", "recount_persons", "settle"]

log = logging.getLogger(__name__)
#: What a merge moves: (kind noted in merged_rows, table, its key column).
MOVED = (
    ("event", EngagementEvent, EngagementEvent.event_id),
    ("touch", Touch, Touch.touch_id),
)


def apply_changes(
    sessions: sessionmaker[Session],
    records: Sequence[dict[str, Any]],
    timezone: str,
    stream_window: int,
) -> int:
    """Apply a batch's identity change records in order (one transaction); returns the
    rows moved."""
    if not records:
        return 0
    moved = 0
    with sessions() as session, session.begin():
        version_in_force(session)  # like a batch: a window's computation waits for it
        for record in records:
            moved += settle(session, record["merge_id"], timezone, stream_window)
        # Counts changed: kept answers are stale (last: the sink waits on this row).
        windows.data_changed(session)
    return moved


def settle(session: Session, merge_id: str, timezone: str, stream_window: int) -> int:
    """Move the rows of merge ``merge_id`` as its state says and recount both persons."""
    merge = session.get(IdentityMerge, merge_id)
    if merge is None:
        log.warning("identity change for an unknown merge %s: nothing to apply", merge_id)
        return 0
    if merge.undone_at is None:
        moved = _move_to_contact(session, merge)
    else:
        moved = _move_back(session, merge)
    recount_persons(session, [merge.visitor_person, merge.contact_person], timezone, stream_window)
    return moved


def _move_to_contact(session: Session, merge: IdentityMerge) -> int:
    """Rewrite the visitor's events and touches to the contact, noting each row moved."""
    moved = 0
    for kind, table, key in MOVED:
        ids = list(session.scalars(select(key).where(table.person == merge.visitor_person)))
        rows = [{"merge_id": merge.id, "kind": kind, "key": k} for k in ids]
        for notes in chunks(rows, 2000):
            insert_ignore(session, cast(Table, MergedRow.__table__), notes)
        for chunk in chunks(ids):
            session.execute(update(table).where(key.in_(chunk)).values(person=merge.contact_person))
        moved += len(ids)
    return moved


def _move_back(session: Session, merge: IdentityMerge) -> int:
    """Move the rows the merge noted back to the visitor and drop the notes (a late or
    repeated record then finds nothing to move)."""
    M = MergedRow
    moved = 0
    for kind, table, key in MOVED:
        noted = (M.merge_id == merge.id, M.kind == kind)
        ids = list(session.scalars(select(M.key).where(*noted)))
        for chunk in chunks(ids):
            session.execute(update(table).where(key.in_(chunk)).values(person=merge.visitor_person))
        session.execute(delete(M).where(*noted))
        moved += len(ids)
    return moved


def recount_persons(
    session: Session, persons: Sequence[str], timezone: str, stream_window: int
) -> dict[str, int]:
    """Rebuild ``stage_facts`` and ``credits`` (every window in use) of ``persons``."""
    persons = sorted(set(persons))
    C, F, E = Credit, StageFact, EngagementEvent
    held = select(C.window_days).distinct().where(C.person.in_(persons))
    in_use = set(session.scalars(held)) | {stream_window}
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
        for window in sorted(in_use)
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


def _touches(session: Session, persons: Sequence[str]) -> dict[str, TouchHistory]:
    found: dict[str, list[DomainTouch]] = defaultdict(list)
    for r in session.execute(select(*touch_columns()).where(Touch.person.in_(persons))):
        found[r.person].append(stored_touch(r))
    return {who: TouchHistory(touches) for who, touches in found.items()}
