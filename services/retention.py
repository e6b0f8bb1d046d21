"""Retention: raw detail older than ``WINWIN_RETENTION_MONTHS_RAW`` (default 24) is cleared.

Cleared: the properties of stored engagement events (free text a site or form sent) and
the bodies of replies (subject, text, html, sender address). Kept: the events' type,
time and pseudonym, stage facts and credits, so every count and credit stays as it was.

The dispatcher runs :class:`Retention` on every tick; it does the work at most once a
day (the last run's day is kept in the ``settings`` table, so restarts and several
dispatchers do not repeat it) and is idempotent: a second run clears nothing more. It
also forgets erased people's old pseudonyms (their keyed hashes) once
``WINWIN_ERASURE_INFLIGHT_DAYS`` have passed (services/analytics/erased.py).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import String, cast, or_, select, update

from services.analytics import erased
from services.db import models
from services.db.models_consent import Reply
from services.db.session import changed
from services.db.upsert import upsert

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from services.application import Container

log = logging.getLogger(__name__)
LAST_RUN_KEY = "retention.last_run"
EMPTY = "{}"


def cutoff(now: datetime, months: int) -> datetime:
    """The same day and time ``months`` months before ``now`` (clamped to the month's end)."""
    index = now.year * 12 + now.month - 1 - months
    year, month = divmod(index, 12)
    day = min(now.day, [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28,
                        31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month])  # fmt: skip
    return now.replace(year=year, month=month + 1, day=day)


def clear_raw(session: Session, before: datetime) -> dict[str, int]:
    """Clear event properties and reply bodies older than ``before``; counts cleared."""
    E = models.EngagementEvent
    events = changed(
        session,
        update(E)
        .where(E.occurred_at < before, cast(E.properties, String) != EMPTY)
        .values(properties={}),
    )
    replies = changed(session,
        update(Reply)
        .where(Reply.received_at < before,
               or_(Reply.text.is_not(None), Reply.html.is_not(None), Reply.subject.is_not(None),
                   Reply.from_email.is_not(None)))
        .values(text=None, html=None, subject=None, from_email=None)
    )  # fmt: skip
    return {"events": events, "replies": replies}


class Retention:
    """A dispatcher step: :func:`clear_raw` once a day."""

    def __init__(self, container: Container):
        self.container = container

    def __call__(self, now: datetime) -> dict[str, int] | None:
        today = now.astimezone(UTC).date().isoformat()
        months = self.container.settings.retention_months_raw
        with self.container.sessions() as session, session.begin():
            last = session.scalar(
                select(models.Setting.value).where(models.Setting.key == LAST_RUN_KEY)
            )
            if last and last.get("day") == today:
                return None
            cleared = clear_raw(session, cutoff(now, months))
            forgotten = erased.forget(session, now, self.container.settings.erasure_inflight_days)
            upsert(session, models.Setting.__table__,
                   [{"key": LAST_RUN_KEY, "value": {"day": today, **cleared}, "updated_at": now}],
                   ["key"])  # fmt: skip
        if any(cleared.values()):
            log.info("retention: cleared raw detail older than %d months: %s", months, cleared)
        if forgotten:
            log.info("retention: forgot %d erased pseudonyms past their horizon", forgotten)
        return cleared
