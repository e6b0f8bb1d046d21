"""Dashboard sign-ins kept on the server: start one per login, find it, revoke it.

The cookie carries a random id (256 bits); SQL keeps only its SHA-256, with a CSRF token
(synchronizer token) of its own, who signed in, and when it ends: after
``WINWIN_SESSION_IDLE_MINUTES`` unused or ``WINWIN_SESSION_MAX_HOURS`` after the login,
whichever comes first, or at logout.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, update

from services.db.models_sessions import StaffSession

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from services.application import Container

#: ``last_seen_at`` is written at most this often (not on every request).
TOUCH_EVERY = timedelta(seconds=60)
#: Longer cookie values are not ours (token_urlsafe(32) is 43 characters).
MAX_ID_LENGTH = 200


@dataclass(frozen=True)
class SignIn:
    """A new session: ``session_id`` goes into the cookie and is never stored."""

    session_id: str
    csrf_token: str
    max_age: int


@dataclass(frozen=True)
class Current:
    """A live session, as found from its cookie."""

    id_hash: str
    csrf_token: str
    account: str
    role: str


def digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(container: Container, account: str, role: str, replacing: str = "") -> SignIn:
    """A new session (a new id at every login); the one in ``replacing`` is revoked."""
    settings, now = container.settings, _utc(container.now())
    lifetime = timedelta(hours=settings.session_max_hours)
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with container.sessions() as session, session.begin():
        if replacing:
            _revoke(session, replacing, now)
        session.execute(delete(StaffSession).where(StaffSession.expires_at < now))
        session.add(
            StaffSession(
                id_hash=digest(session_id),
                csrf_token=csrf,
                account=account,
                role=role,
                created_at=now,
                last_seen_at=now,
                expires_at=now + lifetime,
            )
        )
    return SignIn(session_id, csrf, int(lifetime.total_seconds()))


def find(container: Container, session_id: str, touch: bool = True) -> Current | None:
    """The live session of this cookie value, or None (unknown, revoked or expired).
    ``touch`` records the use, which keeps the session from ending idle."""
    if not session_id or len(session_id) > MAX_ID_LENGTH:
        return None
    now = _utc(container.now())
    idle = timedelta(minutes=container.settings.session_idle_minutes)
    with container.sessions() as session, session.begin():
        row = session.get(StaffSession, digest(session_id))
        if row is None or row.revoked_at is not None:
            return None
        last_seen = _utc(row.last_seen_at)
        if now >= _utc(row.expires_at) or now >= last_seen + idle:
            return None
        if touch and now - last_seen >= TOUCH_EVERY:
            row.last_seen_at = now
        return Current(row.id_hash, row.csrf_token, row.account, row.role)


def revoke(container: Container, session_id: str) -> None:
    """Ends the session of this cookie value (logout): the cookie no longer works."""
    with container.sessions() as session, session.begin():
        _revoke(session, session_id, _utc(container.now()))


def _revoke(session: Session, session_id: str, now: datetime) -> None:
    if session_id and len(session_id) <= MAX_ID_LENGTH:
        session.execute(
            update(StaffSession)
            .where(StaffSession.id_hash == digest(session_id), StaffSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )


def _utc(moment: datetime) -> datetime:
    """In UTC: SQLite stores and gives back naive datetimes, so all are written in UTC."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
