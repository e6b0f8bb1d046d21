"""One person across channels: merging a visitor (``v:<ww_vid>``) into a contact.

The API process writes the merge (``identity_merges``) and, in the same transaction, an
identity change record to the outbox (``schemas/identity.v1.json``, on the engagement
topic keyed by the contact's pseudonym). It writes no read model: the stream worker
applies the record (:mod:`services.journeys.recount`): it rewrites the person of the
visitor's stored events and touches to the contact's pseudonym, notes which rows it
moved (``merged_rows``) and recounts both persons' stage facts and credits, so
unique-people counts drop by one and credits move, with nothing counted twice.
Undoing it is published the same way; the stream moves exactly those rows back and
recounts again.

Future events: the ingest resolves every pseudonym through :func:`resolve` (a per-
process alias map, re-read every few seconds), so later events of a merged visitor are
stored as the contact's. Events already in flight when the merge happened are found by
:func:`reconcile`, which the periodic runner calls: it publishes the merge again. Events stored under the contact
after the merge stay with the contact when the merge is undone.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from services.bus import topics
from services.bus.outbox import enqueue
from services.db.models import Contact
from services.db.models_journeys import IdentityMerge, MergedRow
from services.db.session import transaction
from services.db.values import chunks
from services.domain.events import format_timestamp
from services.domain.pseudonyms import pseudonymise, visitor_ref
from services.ids import new_id
from services.journeys.recount import MOVED

if TYPE_CHECKING:
    from services.application import Container
    from services.tracking.links import SendView

__all__ = [
    "IdentityError",
    "merge_visitor",
    "note_click",
    "reconcile",
    "resolve",
    "resolve_nowait",
    "undo_merge",
    "valid_visitor",
]

log = logging.getLogger(__name__)
TTL = 5.0


class IdentityError(ValueError):
    """A merge that cannot be done; ``status`` is the HTTP answer (404, 409, 422)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# --- the alias map --------------------------------------------------------------------


class Aliases:
    """Visitor pseudonym → contact pseudonym for active merges, cached per process."""

    def __init__(self, sessions: sessionmaker[Session], ttl: float = TTL):
        self.sessions = sessions
        self.ttl = ttl
        self._map: dict[str, str] = {}
        self._at = -1e9
        self._lock = threading.Lock()

    def resolve(self, person: str) -> str:
        if time.monotonic() - self._at > self.ttl and self._lock.acquire(blocking=False):
            try:
                self._load()
            finally:
                self._lock.release()
        return self._map.get(person, person)

    def _load(self) -> None:
        M = IdentityMerge
        try:
            with self.sessions() as session:
                rows = session.execute(
                    select(M.visitor_person, M.contact_person).where(M.undone_at.is_(None))
                ).all()
        except SQLAlchemyError:  # e.g. a database without this table yet: resolve nothing
            log.warning("identity merges unreadable; pseudonyms are not resolved", exc_info=True)
            rows = []
        self._map = {v: c for v, c in rows}
        self._at = time.monotonic()

    def resolve_nowait(self, person: str) -> str | None:
        """Like :meth:`resolve` from the map in memory; None when it is due for a reload
        (the caller reloads it off the event loop, e.g. in a thread)."""
        if time.monotonic() - self._at > self.ttl:
            return None
        return self._map.get(person, person)

    def invalidate(self) -> None:
        self._at = -1e9


_aliases: dict[int, Aliases] = {}


def aliases(sessions: sessionmaker[Session]) -> Aliases:
    found = _aliases.get(id(sessions))
    return found if found is not None else _aliases.setdefault(id(sessions), Aliases(sessions))


def resolve(sessions: sessionmaker[Session], person: str) -> str:
    """The person a pseudonym counts as now (a merged visitor counts as the contact)."""
    return aliases(sessions).resolve(person)


def resolve_nowait(sessions: sessionmaker[Session], person: str) -> str | None:
    """:func:`resolve` without SQL: None when the alias map must be re-read first."""
    return aliases(sessions).resolve_nowait(person)


def valid_visitor(vid: object) -> bool:
    """The shape of a ``ww_vid`` cookie value (as the redirect accepts it)."""
    return (
        isinstance(vid, str)
        and 0 < len(vid) <= 64
        and vid.replace("-", "").replace("_", "").isalnum()
    )


# --- merge and undo -------------------------------------------------------------------


@dataclass(frozen=True)
class MergeView:
    id: str
    visitor_person: str
    contact_person: str
    external_id: str
    moved: dict[str, int]
    undone: bool

    def public(self) -> dict[str, Any]:
        return {
            "merge_id": self.id,
            "person": self.contact_person,
            "external_id": self.external_id,
            "moved": self.moved,
            "undone": self.undone,
        }


def merge_visitor(
    container: Container, vid: str, external_id: str | None = None, contact_id: int | None = None,
    source: str = "identify",
) -> tuple[MergeView, bool]:  # fmt: skip
    """Merge visitor ``vid`` into a contact; returns (merge, created). Idempotent.

    Writes the merge and its record for the stream (outbox, same transaction); the
    stream moves the rows and recounts. ``moved``: the visitor's rows it will move."""
    if not valid_visitor(vid):
        raise IdentityError(422, "visitor: not a ww_vid value")
    secret = container.settings.secret_key.get_secret_value().encode()
    visitor = pseudonymise(secret, visitor_ref(vid))
    with transaction(container.sessions) as session:
        contact = _contact(session, external_id, contact_id)
        active = session.scalars(
            select(IdentityMerge).where(
                IdentityMerge.visitor_person == visitor, IdentityMerge.undone_at.is_(None)
            )
        ).first()
        if active is not None:
            if active.contact_id != contact.id:
                raise IdentityError(409, "visitor: already merged into another contact")
            return _view(active, contact.external_id, {}), False
        merge = IdentityMerge(
            id=new_id(), visitor_person=visitor, contact_person=contact.pseudonym,
            contact_id=contact.id, source=source, created_at=container.now(),
        )  # fmt: skip
        session.add(merge)
        session.flush()
        moved = {
            _NAMES[kind]: _count(session, select(key).where(table.person == visitor))
            for kind, table, key in MOVED
        }
        _publish(session, merge, "identity.merged", merge.created_at)
    aliases(container.sessions).invalidate()
    return _view(merge, contact.external_id, moved), True


def undo_merge(container: Container, merge_id: str) -> MergeView:
    """Mark the merge undone and publish that for the stream, which moves the merged
    events and touches back to the visitor and recounts both. ``moved``: the rows the
    merge has moved so far (those the stream will move back)."""
    with transaction(container.sessions) as session:
        merge = session.get(IdentityMerge, merge_id)
        if merge is None:
            raise IdentityError(404, "merge not found")
        contact = session.get(Contact, merge.contact_id)
        external_id = contact.external_id if contact else ""
        if merge.undone_at is not None:
            return _view(merge, external_id, {})
        noted = select(MergedRow.key).where(MergedRow.merge_id == merge.id)
        moved = {_NAMES[k]: _count(session, noted.where(MergedRow.kind == k)) for k, *_ in MOVED}
        merge.undone_at = container.now()
        _publish(session, merge, "identity.unmerged", merge.undone_at)
    aliases(container.sessions).invalidate()
    return _view(merge, external_id, moved)


def reconcile(container: Container) -> int:
    """Rows stored under a merged visitor after its merge was applied (events that were
    in flight): publish that merge again, so the stream moves them and recounts.
    Returns how many such rows there are. A merge is published again at most once per
    :data:`REPUBLISH_AFTER` seconds while the stream has not caught up."""
    M = IdentityMerge
    late: dict[str, int] = {}
    with transaction(container.sessions) as session:
        merges = session.scalars(select(M).where(M.undone_at.is_(None))).all()
        by_visitor = {m.visitor_person: m for m in merges}
        for chunk in chunks(sorted(by_visitor)):
            for _, table, _ in MOVED:
                counted = select(table.person, func.count()).where(table.person.in_(chunk))
                for visitor, n in session.execute(counted.group_by(table.person)):
                    late[visitor] = late.get(visitor, 0) + n
        for visitor in sorted(late):
            merge = by_visitor[visitor]
            if _due(merge.id):
                _publish(session, merge, "identity.merged", container.now())
    return sum(late.values())


def note_click(container: Container, vid: str | None, send: SendView) -> None:
    """A contact's own email link clicked in a browser known as visitor ``vid``: merge
    that visitor into the contact, off the caller's thread (the redirect does not wait):
    the gatherer's thread does it after spooling the clicks it holds."""
    if not valid_visitor(vid):
        return
    assert vid is not None
    secret = container.settings.secret_key.get_secret_value().encode()
    visitor = pseudonymise(secret, visitor_ref(vid))
    known = resolve_nowait(container.sessions, visitor)  # never SQL on the caller's thread
    if known is not None and known != visitor:
        return  # merged already (into this contact, or kept apart from another one)
    pending = container.identity_pending
    if visitor in pending:
        return
    pending.add(visitor)

    def merge() -> None:
        try:
            if known is None and resolve(container.sessions, visitor) != visitor:
                return
            merge_visitor(container, vid, contact_id=send.contact_id, source="email-click")
        except IdentityError:
            pass  # the visitor is someone else's already: keep both as they are
        except Exception:  # noqa: BLE001 - a failed merge must not break anything else
            log.exception("could not merge a visitor after an email click")
        finally:
            pending.discard(visitor)

    container.gatherer.later(merge)


# --- helpers --------------------------------------------------------------------------

_NAMES = {"event": "events", "touch": "touches"}
#: Seconds before :func:`reconcile` publishes the same merge again.
REPUBLISH_AFTER = 30.0


_republished: dict[str, float] = {}  # merge id → when reconcile last published it


def _due(merge_id: str) -> bool:
    now = time.monotonic()
    if now - _republished.get(merge_id, -1e9) < REPUBLISH_AFTER:
        return False
    for old in [k for k, at in _republished.items() if now - at >= REPUBLISH_AFTER]:
        del _republished[old]
    _republished[merge_id] = now
    return True


def _publish(session: Session, merge: IdentityMerge, kind: str, at: datetime) -> None:
    """The identity change record (schemas/identity.v1.json), to the outbox: on the
    engagement topic, keyed by the contact, so it is in order with the contact's events."""
    record = {
        "kind": kind,
        "merge_id": merge.id,
        "person": merge.contact_person,
        "visitor": merge.visitor_person,
        "occurred_at": format_timestamp(at),
    }
    enqueue(session, topics.ENGAGEMENT, [record])


def _count(session: Session, query: Select[Any]) -> int:
    return int(session.scalar(query.with_only_columns(func.count())) or 0)


def _contact(session: Session, external_id: str | None, contact_id: int | None) -> Contact:
    if contact_id is not None:
        contact = session.get(Contact, contact_id)
    else:
        contact = session.scalars(select(Contact).where(Contact.external_id == external_id)).first()
    if contact is None:
        raise IdentityError(404, f"external_id: unknown contact {external_id!r}")
    return contact


def _view(merge: IdentityMerge, external_id: str, moved: dict[str, int]) -> MergeView:
    return MergeView(
        merge.id, merge.visitor_person, merge.contact_person, external_id, moved,
        merge.undone_at is not None,
    )  # fmt: skip
