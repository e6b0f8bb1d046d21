"""Staff accounts, service tokens and the audit log (issue 16).

Passwords and token secrets are stored only as hashes (argon2id; SHA-256 of a 256-bit
random secret). The audit log names staff (an account's email, a token's id), objects
by kind and id, never a contact's address or name.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.db.models import Base


class StaffAccount(Base):
    """A named sign-in: lowercased email, argon2 hash, role; disabled, never deleted."""

    __tablename__ = "staff_accounts"
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ServiceToken(Base):
    """A named bearer token for a machine, with a role; revoked, never deleted."""

    __tablename__ = "service_tokens"
    token_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """One change: when, by whom, what action on which object."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_actor", "actor_id", "entry_id"),
    )
    entry_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(80))
    object_kind: Mapped[str] = mapped_column(String(80))
    object_id: Mapped[str] = mapped_column(String(300))
