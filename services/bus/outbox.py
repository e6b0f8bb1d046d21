"""Transactional outbox: records are written in the same SQL transaction as the change
that caused them; the relay publishes them. Pure SQL, no Kafka here.

On a broker that keeps nothing across restarts (the embedded one, memory storage:
``WINWIN_KAFKA_EPHEMERAL``) a published row is kept until the sinks have stored every
record of it (:func:`prune_stored`), and :func:`replay` hands the kept rows to the relay
again after the broker may have lost them. The sinks are idempotent, so a record sent
twice is stored once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from services.bus import topics
from services.db.models import EngagementEvent, OutboxMessage, Touch
from services.db.models_journeys import IdentityMerge, MergedRow
from services.db.repositories import add_to_outbox
from services.db.values import chunks, utc

#: A published row whose records never all reach the sinks (a dead letter among them)
#: is dropped this long after its publication.
KEEP_UNSTORED = timedelta(days=7)
#: Where the sinks store each topic's records, and the record field that is their key.
STORED_AS = {
    topics.ENGAGEMENT: (EngagementEvent.event_id, "event_id"),
    topics.TOUCHES: (Touch.touch_id, "touch_id"),
}


def enqueue(session: Session, topic: str, records: Sequence[dict[str, Any]]) -> None:
    """Add records bound for ``topic`` to the outbox (one row, however many records)."""
    add_to_outbox(session, topic, records)


def replay(session: Session) -> int:
    """Mark every kept (published, not yet pruned) row unpublished: the relay sends it
    again. Returns the number of rows."""
    marked = update(OutboxMessage).where(OutboxMessage.published_at.is_not(None))
    result = session.execute(marked.values(published_at=None))
    return int(getattr(result, "rowcount", 0) or 0)


def prune_stored(session: Session, after_id: int = 0, limit: int = 50) -> tuple[int, int]:
    """Delete the published rows, among ``limit`` of them after id ``after_id``, whose
    records the sinks have all stored, or that were published :data:`KEEP_UNSTORED` ago.
    Returns (rows deleted, the id to continue after next time: 0 once at the end)."""
    rows = session.execute(
        select(
            OutboxMessage.id, OutboxMessage.topic, OutboxMessage.records, OutboxMessage.published_at
        )
        .where(OutboxMessage.published_at.is_not(None), OutboxMessage.id > after_id)
        .order_by(OutboxMessage.id)
        .limit(limit)
    ).all()
    expired = datetime.now(UTC) - KEEP_UNSTORED
    done = [
        row.id
        for row in rows
        if utc(row.published_at) < expired or _all_stored(session, row.topic, row.records)
    ]
    if done:
        session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(done)))
    return len(done), (rows[-1].id if len(rows) == limit else 0)


def _all_stored(session: Session, topic: str, records: list[dict[str, Any]]) -> bool:
    column, field = STORED_AS[topic]
    changes = [r for r in records if topics.is_identity(r)]
    if not all(_applied(session, r["merge_id"]) for r in changes):
        return False
    keys = sorted({r[field] for r in records if not topics.is_identity(r)})
    for chunk in chunks(keys):  # stops at the first chunk with a record not yet stored
        if session.scalar(select(func.count()).where(column.in_(chunk))) != len(chunk):
            return False
    return True


def _applied(session: Session, merge_id: str) -> bool:
    """An identity change is applied once the rows agree with its merge: none left under
    the visitor of an active merge, none noted (to move back) for an undone one."""
    merge = session.get(IdentityMerge, merge_id)
    if merge is None:
        return True
    left: Any = select(MergedRow.key).where(MergedRow.merge_id == merge_id)
    if merge.undone_at is None:
        visitor = merge.visitor_person
        left = select(EngagementEvent.event_id).where(EngagementEvent.person == visitor)
        left = left.union_all(select(Touch.touch_id).where(Touch.person == visitor))
    return session.execute(left.limit(1)).first() is None
