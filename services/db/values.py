"""Helpers for values going to and coming from SQL (the sink, recomputations, journeys)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TypeVar

IN_CHUNK = 900  # keys per IN list (SQLite's variable limit is far above this)

T = TypeVar("T")


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size`` (an IN list, a bulk insert)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def utc(moment: datetime) -> datetime:
    """A stored time as aware UTC (SQLite returns naive datetimes; everything stored is UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
