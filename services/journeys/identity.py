"""One person across channels: merging a visitor (``v:<ww_vid>``) into a contact.

A merge rewrites the person of the visitor's stored events and touches to the
contact's pseudonym, records which rows it moved (``merged_rows``), and recounts both
persons' stage facts and credits from their events (:mod:`services.journeys.recount`),
so unique-people counts drop by one and credits move, with nothing counted twice.
Undoing it moves exactly those rows back and recounts again.

Future events: the ingest resolves every pseudonym through :func:`resolve` (a per-
process alias map, re-read every few seconds), so later events of a merged visitor are
stored as the contact's. Events already in flight when the merge happened are moved by
:func:`reconcile`, which the periodic runner calls. Events stored under the contact
after the merge stay with the contact when the merge is undone.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from services.db.models import Contact, EngagementEvent, Touch
from services.db.models_journeys import IdentityMerge, MergedRow
from services.db.session import transaction
from services.db.upsert import insert_ignore
from services.db.values import chunks
from services.domain.pseudonyms import pseudonymise, visitor_ref
from services.ids import new_id
from services.journeys.recount import recount_persons

if TYPE_CHECKING:
    from services.bootstrap import Container
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
    """Merge visitor ``vid`` into a contact; returns (merge, created). Idempotent."""
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
        moved = _move(session, merge, visitor, contact.pseudonym)
        moved |= _recount(container, session, [visitor, contact.pseudonym])
    aliases(container.sessions).invalidate()
    return _view(merge, contact.external_id, moved), True


def undo_merge(container: Container, merge_id: str) -> MergeView:
    """Move the merged events and touches back to the visitor and recount both."""
    with transaction(container.sessions) as session:
        merge = session.get(IdentityMerge, merge_id)
        if merge is None:
            raise IdentityError(404, "merge not found")
        contact = session.get(Contact, merge.contact_id)
        external_id = contact.external_id if contact else ""
        if merge.undone_at is not None:
            return _view(merge, external_id, {})
        moved = {}
        for kind, table, key in _TABLES:
            ids = list(
                session.scalars(
                    select(MergedRow.key).where(
                        MergedRow.merge_id == merge.id, MergedRow.kind == kind
                    )
                )
            )
            for chunk in chunks(ids):
                session.execute(
                    update(table).where(key.in_(chunk)).values(person=merge.visitor_person)
                )
            moved["touches" if kind == "touch" else "events"] = len(ids)
        moved |= _recount(container, session, [merge.visitor_person, merge.contact_person])
        merge.undone_at = container.now()
    aliases(container.sessions).invalidate()
    return _view(merge, external_id, moved)


def reconcile(container: Container) -> int:
    """Move rows stored under a merged visitor after its merge (events in flight)."""
    M = IdentityMerge
    moved = 0
    with transaction(container.sessions) as session:
        merges = session.scalars(select(M).where(M.undone_at.is_(None))).all()
        by_visitor = {m.visitor_person: m for m in merges}
        for chunk in chunks(sorted(by_visitor)):
            late = set(
                session.scalars(
                    select(EngagementEvent.person)
                    .distinct()
                    .where(EngagementEvent.person.in_(chunk))
                )
            ) | set(session.scalars(select(Touch.person).distinct().where(Touch.person.in_(chunk))))
            for visitor in sorted(late):
                merge = by_visitor[visitor]
                moved += sum(_move(session, merge, visitor, merge.contact_person).values())
                _recount(container, session, [visitor, merge.contact_person])
    return moved


def note_click(container: Container, vid: str | None, send: SendView) -> None:
    """A contact's own email link clicked in a browser known as visitor ``vid``: merge
    that visitor into the contact, in the background (the redirect does not wait)."""
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

    threading.Thread(target=merge, name="identity-merge", daemon=True).start()


# --- helpers --------------------------------------------------------------------------

_TABLES = (
    ("event", EngagementEvent, EngagementEvent.event_id),
    ("touch", Touch, Touch.touch_id),
)


def _contact(session: Session, external_id: str | None, contact_id: int | None) -> Contact:
    if contact_id is not None:
        contact = session.get(Contact, contact_id)
    else:
        contact = session.scalars(select(Contact).where(Contact.external_id == external_id)).first()
    if contact is None:
        raise IdentityError(404, f"external_id: unknown contact {external_id!r}")
    return contact


def _move(session: Session, merge: IdentityMerge, visitor: str, contact: str) -> dict[str, int]:
    """Rewrite the visitor's events and touches to the contact, noting each row moved."""
    moved = {}
    for kind, table, key in _TABLES:
        ids = list(session.scalars(select(key).where(table.person == visitor)))
        rows = [{"merge_id": merge.id, "kind": kind, "key": k} for k in ids]
        for chunk in chunks(rows, 2000):
            insert_ignore(session, cast(Table, MergedRow.__table__), chunk)
        for chunk in chunks(ids):
            session.execute(update(table).where(key.in_(chunk)).values(person=contact))
        moved["touches" if kind == "touch" else "events"] = len(ids)
    return moved


def _recount(container: Container, session: Session, persons: list[str]) -> dict[str, int]:
    s = container.settings
    counts = recount_persons(session, persons, s.timezone, s.attribution_window_days)
    return {"credits": counts["credits"], "stage_facts": counts["stage_facts"]}


def _view(merge: IdentityMerge, external_id: str, moved: dict[str, int]) -> MergeView:
    return MergeView(
        merge.id, merge.visitor_person, merge.contact_person, external_id, moved,
        merge.undone_at is not None,
    )  # fmt: skip
