"""What the rules on children, re-consent and preferences read of a contact, in SQL
(services/domain/guardians.py and preferences.py hold the rules themselves)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from services.db.models import Contact
from services.db.models_guardians import GuardianConsent
from services.domain import guardians, preferences

__all__ = ["FACTS", "journey_blocked", "person_of"]

_HAS_GUARDIAN_CONSENT = exists().where(GuardianConsent.child_id == Contact.id)
FACTS = (
    Contact.birth_date,
    Contact.birth_year,
    Contact.email_consent_at,
    _HAS_GUARDIAN_CONSENT.label("guardian_consent"),
    Contact.topics_off,
    Contact.frequency,
)


def person_of(row: Any) -> guardians.Person:
    """The rules' view of a row carrying the columns of ``FACTS``."""
    return guardians.Person(
        row.birth_date, row.birth_year, row.email_consent_at, bool(row.guardian_consent)
    )


def journey_blocked(
    session: Session, persons: Iterable[str], now: datetime, timezone: str = "UTC"
) -> set[str]:
    """The persons no journey message (email or toolkit follow-up) may reach ``now``:
    a child without guardian consent, a person who needs re-consent, or one whose
    frequency is not "as sent"."""
    day = guardians.local_day(now, timezone)
    rows = session.execute(
        select(Contact.pseudonym, *FACTS).where(Contact.pseudonym.in_(list(persons)))
    ).all()
    return {
        row.pseudonym
        for row in rows
        if guardians.child_reason(person_of(row), day, timezone)
        or preferences.journey_reason(row.frequency)
    }
