"""An erased person's events still in flight: stored under the erasure's random pseudonym.

Erasure (services/privacy.py) replaces a person's pseudonym everywhere by a random one.
An event or touch that had already left under the old pseudonym (in Kafka, or in the
outbox of another process) and reaches the sink afterwards would otherwise be a "new
person" and change a published count. For ``WINWIN_ERASURE_INFLIGHT_DAYS`` (default 7)
the erasure leaves a map: keyed hash of the old pseudonym -> the new one, and the sink
stores such a record under the new pseudonym when it happened before the erasure (one
that happened after it is a new person, as erasure promises). After the horizon the
dispatcher's retention step forgets the map (:func:`forget`), and with it the last link.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.db.models_consent import ErasedPseudonym
from services.db.session import changed
from services.db.upsert import upsert
from services.db.values import chunks, utc
from services.domain.erasure import inflight_key

Records = Sequence[dict[str, Any]]


def remember(session: Session, secret: bytes, old: str, new: str, now: datetime) -> None:
    """At erasure: late records under ``old`` go to ``new`` until the horizon. A person
    erased again (re-imported since: same external id, same pseudonym) is remapped to
    this erasure's pseudonym and time."""
    row = {"old_key": inflight_key(secret, old), "new_pseudonym": new, "erased_at": now}
    upsert(session, ErasedPseudonym.__table__, [row], ["old_key"])


def forget(session: Session, now: datetime, days: int) -> int:
    """Drop the map rows older than ``days``; how many went."""
    E = ErasedPseudonym
    return changed(session, delete(E).where(E.erased_at < now - timedelta(days=days)))


def rekey_late(
    session: Session, secret: bytes | None, events: Records, touches: Records
) -> tuple[Records, Records]:
    """``events`` and ``touches`` with every erased person's record from before their
    erasure moved to the erasure's pseudonym (new dicts; the inputs are not changed)."""
    if not secret or not (events or touches):
        return events, touches
    keys = {inflight_key(secret, r["person"]): r["person"] for r in (*events, *touches)}
    E = ErasedPseudonym
    moved: dict[str, tuple[str, datetime]] = {}
    for chunk in chunks(list(keys)):
        query = select(E.old_key, E.new_pseudonym, E.erased_at).where(E.old_key.in_(chunk))
        for row in session.connection().execute(query):
            moved[keys[row.old_key]] = (row.new_pseudonym, utc(row.erased_at))
    if not moved:
        return events, touches
    return [_moved(r, moved) for r in events], [_moved(r, moved) for r in touches]


def _moved(record: dict[str, Any], moved: dict[str, tuple[str, datetime]]) -> dict[str, Any]:
    target = moved.get(record["person"])
    if target is None or _when(record["occurred_at"]) > target[1]:
        return record
    return {**record, "person": target[0]}


def _when(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return utc(value)
    return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
