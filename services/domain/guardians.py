"""Children and guardians (COPPA): who may be messaged, by age, consent and guardians.

* **Age** is counted on the network's calendar (``WINWIN_TIMEZONE``): a person born on
  5 May turns 13 at the start of 5 May in that zone. Someone born on 29 February has
  their birthday on 1 March in a common year (the later date: a child is never treated
  as older than they are). With only a ``birth_year``, the person is taken to be born
  on 31 December of it (the youngest they can be) for the same reason.
* **Under 13** (COPPA, 16 CFR 312): no email, journey message or toolkit follow-up
  unless a guardian's verifiable consent is recorded. A campaign either skips the child
  (``children: "skip"``, the default) or sends to their guardians instead
  (``"guardians"``).
* **Turning 13 and 18** make the earlier consent lapse: a consent given before the
  person's 13th (or 18th) birthday does not hold after it. The person *needs re-consent*
  and gets no message until their own consent is recorded again.
* A person without a birth date or year is not known to be a child: none of this applies.

Decided at send time, from the stored facts: nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

__all__ = [
    "ADULT_AGE",
    "CHILD_AGE",
    "REASONS",
    "Children",
    "Person",
    "age_on",
    "birthday",
    "child_reason",
    "local_day",
    "needs_reconsent",
]

CHILD_AGE = 13
ADULT_AGE = 18
UNDER_13 = "child under 13: no guardian consent"
TO_GUARDIANS = "child under 13: sent to guardians"
RECONSENT = "needs re-consent"
#: Progress keys of the reasons a send is skipped for (services/db/repositories.py).
REASONS = {UNDER_13: "skipped_under_13", TO_GUARDIANS: "sent_to_guardians"}


class Children(StrEnum):
    """What a campaign does with a child under 13 who has no guardian consent."""

    SKIP = "skip"
    GUARDIANS = "guardians"


@dataclass(frozen=True, slots=True)
class Person:
    """What the rules read of a contact."""

    birth_date: date | None = None
    birth_year: int | None = None
    consent_at: datetime | None = None  # when their email consent was last confirmed
    guardian_consent: bool = False  # a guardian's verifiable consent is recorded


def local_day(at: datetime, timezone: str) -> date:
    """The calendar day of the instant ``at`` in ``timezone`` (an IANA name)."""
    return at.astimezone(ZoneInfo(timezone)).date()


def birthday(born: date, years: int) -> date:
    """The day a person born on ``born`` turns ``years`` (29 February → 1 March)."""
    try:
        return born.replace(year=born.year + years)
    except ValueError:  # 29 February in a common year
        return date(born.year + years, 3, 1)


def _born(person: Person) -> date | None:
    if person.birth_date is not None:
        return person.birth_date
    if person.birth_year is not None:
        return date(person.birth_year, 12, 31)
    return None


def age_on(person: Person, day: date) -> int | None:
    """Whole years on ``day`` (None when no birth date or year is known)."""
    born = _born(person)
    if born is None:
        return None
    years = day.year - born.year
    return years if day >= birthday(born, years) else years - 1


def needs_reconsent(person: Person, day: date, timezone: str) -> bool:
    """Turned 13 or 18 after their consent was given (or no consent time is known)."""
    age, born = age_on(person, day), _born(person)
    if age is None or born is None or age < CHILD_AGE:
        return False
    since = birthday(born, ADULT_AGE if age >= ADULT_AGE else CHILD_AGE)
    given = person.consent_at
    return given is None or local_day(given, timezone) < since


def child_reason(person: Person, day: date, timezone: str) -> str | None:
    """Why a message may not go to this person on ``day`` because of their age, or None."""
    age = age_on(person, day)
    if age is None:
        return None
    if age < CHILD_AGE:
        return None if person.guardian_consent else UNDER_13
    if needs_reconsent(person, day, timezone):
        return f"{RECONSENT}: turned {ADULT_AGE if age >= ADULT_AGE else CHILD_AGE}"
    return None
