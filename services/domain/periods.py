"""Reporting periods: months, ISO weeks and days, named by labels.

Labels are what the API and reports show and what the read models store:

* month: ``"2017-08"``
* week: the ISO date of that week's Monday, ``"2017-08-14"`` (weeks run Monday-Sunday)
* day: the ISO date, ``"2017-08-14"``

A moment belongs to a period by its local date in the reporting time zone
(``WINWIN_TIMEZONE``, UTC by default). Labels of one kind sort in time order as strings.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "PeriodKind",
    "add_months",
    "next_period",
    "parse_period",
    "period_bounds",
    "period_label",
    "period_of",
    "period_range",
    "period_start",
]

_Day = TypeVar("_Day", date, datetime)
_MONTH_LABEL = re.compile(r"\d{4}-\d{2}", flags=re.ASCII)
_DATE_LABEL = re.compile(r"\d{4}-\d{2}-\d{2}", flags=re.ASCII)


class PeriodKind(StrEnum):
    """The length of a reporting period."""

    MONTH = "month"
    WEEK = "week"
    DAY = "day"


def _kind(kind: PeriodKind | str) -> PeriodKind:
    try:
        return PeriodKind(kind)
    except ValueError:
        raise ValueError(f"period kind must be month, week or day, got {kind!r}") from None


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r}") from None


def period_label(day: date, kind: PeriodKind | str) -> str:
    """The label of the period of ``kind`` that contains the calendar date ``day``."""
    kind = _kind(kind)
    if isinstance(day, datetime):
        day = day.date()
    if kind is PeriodKind.MONTH:
        return f"{day.year:04d}-{day.month:02d}"
    if kind is PeriodKind.WEEK:
        return (day - timedelta(days=day.weekday())).isoformat()
    return day.isoformat()


def period_of(moment: datetime, kind: PeriodKind | str, tz: str = "UTC") -> str:
    """The label of the period containing ``moment`` (timezone-aware) in zone ``tz``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("moment must be timezone-aware")
    return period_label(moment.astimezone(_zone(tz)).date(), kind)


def parse_period(label: str, kind: PeriodKind | str) -> date:
    """The first day of the period named ``label``.

    Raises ``ValueError`` naming the expected form: ``YYYY-MM`` for months,
    ``YYYY-MM-DD`` for days, and a Monday ``YYYY-MM-DD`` for weeks.
    """
    kind = _kind(kind)
    if not isinstance(label, str):
        raise ValueError(f"{kind.value} label must be a string, got {label!r}")
    if kind is PeriodKind.MONTH:
        if not _MONTH_LABEL.fullmatch(label):
            raise ValueError(f"month label must look like YYYY-MM, got {label!r}")
        try:
            return date(int(label[:4]), int(label[5:7]), 1)
        except ValueError:
            raise ValueError(f"month label {label!r} is not a real month") from None
    if not _DATE_LABEL.fullmatch(label):
        raise ValueError(f"{kind.value} label must look like YYYY-MM-DD, got {label!r}")
    try:
        day = date.fromisoformat(label)
    except ValueError:
        raise ValueError(f"{kind.value} label {label!r} is not a real date") from None
    if kind is PeriodKind.WEEK and day.weekday() != 0:
        monday = period_label(day, PeriodKind.WEEK)
        raise ValueError(
            f"week label must be the Monday of its week: {label!r} is a "
            f"{day.strftime('%A')} (its week is {monday!r})"
        )
    return day


def next_period(label: str, kind: PeriodKind | str) -> str:
    """The label of the period right after ``label``."""
    kind = _kind(kind)
    first = parse_period(label, kind)
    if kind is PeriodKind.MONTH:
        year, month = (first.year + 1, 1) if first.month == 12 else (first.year, first.month + 1)
        return f"{year:04d}-{month:02d}"
    step = timedelta(days=7 if kind is PeriodKind.WEEK else 1)
    return (first + step).isoformat()


def add_months(day: _Day, months: int) -> _Day:
    """``day`` moved by whole calendar months (back when negative), the day of the month
    kept where it exists and otherwise the month's last: Jan 31 + 1 month is Feb 28 (29
    in a leap year), Mar 31 - 1 month too. Times and time zones of a datetime are kept.

    Stepping by a fixed number of days instead drifts: 31 days back from Mar 1 is in
    January, and February is skipped.
    """
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return day.replace(year=year, month=month + 1, day=min(day.day, last))


def period_range(start_label: str, end_label: str, kind: PeriodKind | str) -> list[str]:
    """Every period label from ``start_label`` to ``end_label``, both included.

    Raises ``ValueError`` when a label is malformed or the start is after the end.
    """
    kind = _kind(kind)
    first, last = parse_period(start_label, kind), parse_period(end_label, kind)
    if first > last:
        raise ValueError(f"period range starts after it ends: {start_label!r} > {end_label!r}")
    labels = [start_label]
    while labels[-1] != end_label:
        labels.append(next_period(labels[-1], kind))
    return labels


def period_start(label: str, kind: PeriodKind | str, tz: str = "UTC") -> datetime:
    """The first moment of the period: local midnight of its first day in zone ``tz``."""
    first = parse_period(label, kind)
    return datetime(first.year, first.month, first.day, tzinfo=_zone(tz))


def period_bounds(label: str, kind: PeriodKind | str, tz: str = "UTC") -> tuple[datetime, datetime]:
    """``(start, end)`` of the period, start included and end excluded, in zone ``tz``.

    Handy for SQL range queries: ``start <= occurred_at < end``.
    """
    return period_start(label, kind, tz), period_start(next_period(label, kind), kind, tz)
