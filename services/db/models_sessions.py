"""Sign-in sessions of the dashboard and staff pages: one row per login.

The browser holds a random session id; only its SHA-256 is stored, so a copy of the
database does not let anyone sign in. ``account`` and ``role`` say who signed in (today
only the API token, an admin; the staff console's named accounts use the same rows).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from services.db.models import Base


class StaffSession(Base):
    """One login. Valid until revoked, idle too long, or past ``expires_at``."""

    __tablename__ = "staff_sessions"
    __table_args__ = (Index("ix_staff_sessions_expires_at", "expires_at"),)
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
