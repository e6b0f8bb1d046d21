"""The SQL of audiences: who matches a segment (services.domain.segments).

Consent, an address and the engagement clauses are SQL (``EXISTS`` over the stage
facts: day facts for a clause with ``within_days``, month facts otherwise, as reaching a
stage in a day means reaching it in its month); the contact filter, whose JSON
attributes SQLite and PostgreSQL query differently, is the domain's own ``matches`` over
each page of contacts. The only module that turns a segment into SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Row, and_, exists, select
from sqlalchemy.orm import Session

from services.db.models import Contact, StageFact
from services.domain.consent import Consent
from services.domain.periods import PeriodKind, period_label
from services.domain.segments import Engagement, Segment

#: Contacts an email can go to: an address, and email consent confirmed.
MAILABLE = (
    Contact.email.is_not(None),
    Contact.email != "",
    Contact.email_consent == Consent.CONFIRMED,
)

__all__ = ["Member", "SegmentCount", "count_segment", "members"]

PAGE = 5000
SAMPLE = 10


class Member(NamedTuple):
    """A contact in a segment, as the dispatcher and the count need it (no address)."""

    id: int
    pseudonym: str
    external_id: str


class SegmentCount(NamedTuple):
    people: int
    sample: list[str]  # external ids, never addresses


def count_segment(session: Session, segment: Segment, today: date) -> SegmentCount:
    """How many consenting people match, and the external ids of the first ten."""
    people, sample = 0, list[str]()
    for page in members(session, segment, today):
        people += len(page)
        sample.extend(m.external_id for m in page[: SAMPLE - len(sample)])
    return SegmentCount(people, sample)


def members(session: Session, segment: Segment, today: date) -> Iterator[list[Member]]:
    """Pages of the contacts with confirmed consent and an address who match."""
    engaged = [_clause(c, today) for c in segment.engagement]
    last = 0
    while True:
        page = session.execute(
            select(
                Contact.id, Contact.pseudonym, Contact.external_id, Contact.role, Contact.language
            )
            .add_columns(Contact.tags, Contact.attributes, Contact.needs)
            .where(
                Contact.id > last,
                *MAILABLE,
                *engaged,
            )
            .order_by(Contact.id)
            .limit(PAGE)
        ).all()
        if not page:
            return
        last = page[-1].id
        yield [
            Member(c.id, c.pseudonym, c.external_id)
            for c in page
            if segment.filter.matches(contact_view(c))
        ]


def contact_view(c: Row[Any]) -> dict[str, Any]:
    """What a filter sees of a contact: its ``needs`` as the attribute ``needs``."""
    attributes = dict(c.attributes or {})
    if c.needs:
        attributes.setdefault("needs", list(c.needs))
    return {"role": c.role, "language": c.language, "external_id": c.external_id} | {
        "tags": c.tags or [],
        "attributes": attributes,
    }


def _clause(clause: Engagement, today: date) -> ColumnElement[bool]:
    F = StageFact
    first = clause.first_day(today)
    kind = PeriodKind.MONTH if first is None else PeriodKind.DAY
    found = [F.person == Contact.pseudonym, F.stage == clause.stage.value, F.period_kind == kind]
    if first is not None:
        found.append(F.period >= period_label(first, PeriodKind.DAY))
        found.append(F.period <= period_label(today, PeriodKind.DAY))
    fact = exists().where(and_(*found))
    return fact if clause.reached else ~fact
