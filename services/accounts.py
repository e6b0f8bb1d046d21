"""Named staff accounts and service tokens: create, list, disable or revoke, check.

An account is a lowercased email, an argon2 hash of its password and a role. A service
token is a named bearer secret with a role, shown once at creation; SQL keeps only its
SHA-256. Every change is written to the audit log in the same transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from services import audit, passwords
from services.db.models_accounts import ServiceToken, StaffAccount
from services.db.models_sessions import StaffSession
from services.domain.roles import ActorKind, Role
from services.errors import UsageError
from services.ids import new_id

if TYPE_CHECKING:
    from services.application import Container

#: Service token secrets start with this, so a leaked one is recognised (secret scanners).
TOKEN_PREFIX = "wwt_"


@dataclass(frozen=True)
class Actor:
    """Who is acting: kind (account, token, cli), id (email, token id) and role."""

    kind: ActorKind
    id: str
    role: Role


@dataclass(frozen=True)
class Account:
    email: str
    role: Role
    created_at: datetime
    disabled_at: datetime | None


def normal_email(email: str) -> str:
    """The stored form of an account's email; UsageError when it is not one."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or any(ch.isspace() for ch in email):
        raise UsageError(f"{email[:80]!r} is not an email address")
    return email


def create_account(c: Container, email: str, role: Role, password: str, by: Actor) -> Account:
    email = normal_email(email)
    if reason := passwords.weakness(password):
        raise UsageError(reason)
    now = c.now()
    with c.sessions() as session, session.begin():
        if session.get(StaffAccount, email) is not None:
            raise UsageError(f"an account for {email} exists already")
        hashed = passwords.hash_password(password)
        session.add(StaffAccount(email=email, password_hash=hashed, role=role, created_at=now))
        audit.add(session, now, by, "create", "account", email)
    return Account(email, role, now, None)


def list_accounts(c: Container) -> list[Account]:
    with c.sessions() as session:
        rows = session.scalars(select(StaffAccount).order_by(StaffAccount.email)).all()
        return [Account(r.email, Role(r.role), r.created_at, r.disabled_at) for r in rows]


def any_admin(c: Container) -> bool:
    with c.sessions() as session:
        found = session.scalar(
            select(StaffAccount.email).where(
                StaffAccount.role == Role.ADMIN, StaffAccount.disabled_at.is_(None)
            )
        )
        return found is not None


def disable_account(c: Container, email: str, by: Actor) -> bool:
    """Disables the account and ends its sessions; False when there is no such account."""
    email, now = normal_email(email), c.now()
    with c.sessions() as session, session.begin():
        row = session.get(StaffAccount, email)
        if row is None:
            return False
        if row.disabled_at is None:
            row.disabled_at = now
            session.execute(
                update(StaffSession)
                .where(StaffSession.account == email, StaffSession.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            audit.add(session, now, by, "disable", "account", email)
    return True


def check_password(c: Container, email: str, password: str) -> Role | None:
    """The role of the enabled account ``email`` when ``password`` is its own; None
    otherwise, after the same argon2 work. A hash with old parameters is renewed."""
    email = email.strip().lower()
    with c.sessions() as session, session.begin():
        row = session.get(StaffAccount, email) if email else None
        live = row is not None and row.disabled_at is None
        stored = row.password_hash if row is not None and live else None
        if not passwords.verify(stored, password) or row is None:
            return None
        if passwords.needs_rehash(row.password_hash):
            row.password_hash = passwords.hash_password(password)
        return Role(row.role)


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    name: str
    role: Role
    created_by: str
    created_at: datetime
    revoked_at: datetime | None

    def as_json(self) -> dict[str, str | None]:
        return {
            "id": self.token_id,
            "name": self.name,
            "role": self.role.value,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(c: Container, name: str, role: Role, by: Actor) -> tuple[TokenInfo, str]:
    """A new service token and its secret (the only time the secret is seen)."""
    secret, now = TOKEN_PREFIX + secrets.token_urlsafe(32), c.now()
    row = ServiceToken(
        token_id=new_id(),
        name=name.strip()[:200],
        role=role,
        secret_hash=secret_digest(secret),
        created_by=by.id,
        created_at=now,
    )
    with c.sessions() as session, session.begin():
        session.add(row)  # audited by the request (services.audit.AuditTrail)
    return TokenInfo(row.token_id, row.name, role, by.id, now, None), secret


def list_tokens(c: Container) -> list[TokenInfo]:
    with c.sessions() as session:
        rows = session.scalars(select(ServiceToken).order_by(ServiceToken.created_at)).all()
        return [_info(r) for r in rows]


def revoke_token(c: Container, token_id: str) -> TokenInfo | None:
    """Revokes the token (audited by the request that asks); None when unknown."""
    with c.sessions() as session, session.begin():
        row = session.get(ServiceToken, token_id)
        if row is None:
            return None
        row.revoked_at = row.revoked_at or c.now()
        return _info(row)


def token_actor(c: Container, secret: str) -> Actor | None:
    """The actor of a live service token's secret, or None."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    with c.sessions() as session:
        row = session.scalar(
            select(ServiceToken).where(ServiceToken.secret_hash == secret_digest(secret))
        )
        if row is None or row.revoked_at is not None:
            return None
        return Actor(ActorKind.TOKEN, row.token_id, Role(row.role))


def _info(row: ServiceToken) -> TokenInfo:
    return TokenInfo(
        row.token_id, row.name, Role(row.role), row.created_by, row.created_at, row.revoked_at
    )
