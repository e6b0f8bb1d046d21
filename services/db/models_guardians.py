"""Tables of children's guardians and of double opt-in (issue 18, migration 0024_guardians).

``contact_guardians`` links a child to each guardian (both contacts).
``guardian_consents`` records a guardian's verifiable consent for a child (COPPA): who
gave it, when, how, and the text they consented to. ``email_confirmations`` are the
double opt-in requests: a contact whose consent came from a form or an import as
``unconfirmed`` gets a confirmation email with a signed link; the row records when it
was sent and when and how it was confirmed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.db.models import Base, BigId


class GuardianLink(Base):
    __tablename__ = "contact_guardians"
    child_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id"), primary_key=True)
    guardian_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id"), primary_key=True)


class GuardianConsent(Base):
    __tablename__ = "guardian_consents"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    child_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id"), index=True)
    guardian_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id"))
    method: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    consented_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_by: Mapped[str | None] = mapped_column(String(320))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EmailConfirmation(Base):
    __tablename__ = "email_confirmations"
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id"), primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    method: Mapped[str | None] = mapped_column(String(50))
