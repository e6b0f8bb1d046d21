"""The rules for one engagement event posted to ``POST /api/v1/events``.

:func:`check_event` applies the contract's rules to one decoded JSON object and returns a
:class:`NormalisedEvent`, or raises :class:`EventError` whose message starts with the
field at fault (``"occurred_at: more than 5 minutes in the future"``). The person
reference is returned as given; pseudonymising it is the caller's next step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.domain.inputs import MAX_DEPTH, json_depth, storable, too_deep

__all__ = [
    "CHANNELS",
    "EARLIEST",
    "FUTURE_TOLERANCE",
    "LATEST",
    "MAX_PROPERTIES_BYTES",
    "MAX_PROPERTIES_DEPTH",
    "EventError",
    "NormalisedEvent",
    "check_event",
    "depth_error",
    "format_timestamp",
    "json_depth",
    "parse_timestamp",
    "record_hazard",
    "supported_time",
]

CHANNELS = frozenset({"email", "social", "toolkit", "web"})
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_PROPERTIES_BYTES = 4096
# Objects and arrays nested in ``properties`` (the object itself is level 1): the rule of
# all JSON kept as given (services.domain.inputs.MAX_DEPTH).
MAX_PROPERTIES_DEPTH = MAX_DEPTH
# Event times every period, window and time-zone computation supports, in every zone
# (tests/unit/domain/test_time_range.py): datetime's year 1..9999 is not enough once a
# moment is shifted into a zone or by an attribution window (up to 10 years).
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

_TYPE = re.compile(r"[a-z0-9_.-]+")
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})",
    flags=re.ASCII,
)
#: A NUL character as ``json.dumps`` writes it: ``\u0000`` after an even number of
#: backslashes (none, or escaped ones). After an odd number it is the harmless text
#: backslash-u-0000 (its backslash escaped as ``\\``).
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_REQUIRED = ("event_id", "type", "occurred_at", "person_ref")
_OPTIONAL_IDS = ("campaign_id", "messenger_id", "resource_id")
_FIELDS = frozenset({*_REQUIRED, *_OPTIONAL_IDS, "channel", "properties"})


class EventError(ValueError):
    """An event that breaks the contract; the message starts with the field name."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"{field_name}: {problem}")
        self.field = field_name
        self.problem = problem


@dataclass(frozen=True)
class NormalisedEvent:
    """An accepted engagement event. ``occurred_at`` is timezone-aware UTC.

    ``properties`` is a fresh copy (a plain JSON object); ``properties_json`` is its
    compact serialisation, the form that was measured against the 4 KB limit.
    """

    event_id: str
    type: str
    occurred_at: datetime
    person_ref: str
    campaign_id: str | None = None
    channel: str | None = None
    messenger_id: str | None = None
    resource_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    properties_json: str = "{}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, ``occurred_at`` as RFC 3339 UTC with a ``Z``."""
        return {
            "event_id": self.event_id,
            "type": self.type,
            "occurred_at": format_timestamp(self.occurred_at),
            "person_ref": self.person_ref,
            "campaign_id": self.campaign_id,
            "channel": self.channel,
            "messenger_id": self.messenger_id,
            "resource_id": self.resource_id,
            "properties": json.loads(self.properties_json),
        }


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with ``Z``, microseconds only when there are some."""
    text = moment.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def parse_timestamp(text: str, field_name: str = "occurred_at") -> datetime:
    """Parse an RFC 3339 date-time with a time zone (``Z`` or ``±HH:MM``) to aware UTC."""
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        raise EventError(
            field_name, "must be an RFC 3339 date-time with a time zone, e.g. 2017-08-14T10:00:00Z"
        )
    try:
        moment = datetime.fromisoformat(text.upper())
    except ValueError:
        raise EventError(field_name, f"{text!r} is not a real date-time") from None
    return supported_time(moment, field_name, text)


def as_utc(moment: datetime, timezone: str = "UTC") -> datetime:
    """An aware UTC datetime; a naive one is read in ``timezone`` (WINWIN_TIMEZONE)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.astimezone(UTC)


def supported_time(moment: datetime, field_name: str, shown: str | None = None) -> datetime:
    """``moment`` (aware) in UTC when inside the supported range (every time a person or
    staff gives), else an :class:`EventError` naming the field (``shown``: as given)."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        utc = EARLIEST - timedelta(days=1)
    if not EARLIEST <= utc < LATEST:
        raise EventError(field_name, f"{shown or moment.isoformat()!r} is outside {_RANGE}")
    return utc


_RANGE = f"the supported range {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d} (exclusive)"


def record_hazard(record: Mapping[str, Any]) -> str | None:
    """Why a schema-valid stream record (engagement or touch) would break the worker
    though the schema allows it, or None: a time outside the supported range, or
    ``properties`` nested deeper than :data:`MAX_PROPERTIES_DEPTH`. Records made by
    this code are never refused; this stops what reached Kafka another way."""
    try:
        parse_timestamp(record.get("occurred_at"))  # type: ignore[arg-type]
    except EventError as exc:
        return str(exc)
    return depth_error(record.get("properties"))


def depth_error(properties: object) -> str | None:
    """``"properties: nested deeper than 32 levels"``, or None."""
    problem = too_deep(properties)
    return f"properties: {problem}" if problem else None


def check_event(raw: Mapping[str, Any], now: datetime) -> NormalisedEvent:
    """Check one event against the contract; ``now`` is the aware time of arrival."""
    if not isinstance(raw, Mapping):
        raise EventError("event", "must be an object")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    unknown = sorted(str(key) for key in raw if key not in _FIELDS)
    if unknown:
        raise EventError(unknown[0], "unknown field")
    for name in _REQUIRED:
        if raw.get(name) is None:
            raise EventError(name, "is required")

    event_id = _text(raw, "event_id", 100)
    event_type = _text(raw, "type", 100)
    if not _TYPE.fullmatch(event_type):
        raise EventError("type", "may hold only a-z, 0-9, '_', '.' and '-'")
    occurred_at = parse_timestamp(raw["occurred_at"])
    if occurred_at > now.astimezone(UTC) + FUTURE_TOLERANCE:
        raise EventError("occurred_at", "more than 5 minutes in the future")
    person_ref = _text(raw, "person_ref", 200)
    if not person_ref.strip():
        raise EventError("person_ref", "must not be blank")

    ids = {name: _optional_text(raw, name, 100) for name in _OPTIONAL_IDS}
    channel = _optional_text(raw, "channel", 100)
    if channel is not None and channel not in CHANNELS:
        raise EventError("channel", "must be one of email, social, toolkit, web")
    properties, properties_json = _properties(raw.get("properties"))
    return NormalisedEvent(
        event_id=event_id,
        type=event_type,
        occurred_at=occurred_at,
        person_ref=person_ref,
        campaign_id=ids["campaign_id"],
        channel=channel,
        messenger_id=ids["messenger_id"],
        resource_id=ids["resource_id"],
        properties=properties,
        properties_json=properties_json,
    )


def _text(raw: Mapping[str, Any], name: str, max_chars: int) -> str:
    value = raw.get(name)
    if not isinstance(value, str):
        raise EventError(name, "must be a string")
    if not value:
        raise EventError(name, "must not be empty")
    if len(value) > max_chars:
        raise EventError(name, f"longer than {max_chars} characters")
    if not storable(value):
        raise EventError(name, "contains a NUL character or invalid Unicode")
    return value


def _optional_text(raw: Mapping[str, Any], name: str, max_chars: int) -> str | None:
    if raw.get(name) is None:
        return None
    return _text(raw, name, max_chars)


def _properties(value: object) -> tuple[dict[str, Any], str]:
    if value is None:
        return {}, "{}"
    if not isinstance(value, Mapping):
        raise EventError("properties", "must be an object")
    if problem := too_deep(value):
        raise EventError("properties", problem)
    try:
        text = json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        size = len(text.encode("utf-8"))  # a lone surrogate raises here
    except (TypeError, ValueError) as error:
        raise EventError("properties", f"must be plain JSON ({error})") from None
    if "\\u0000" in text and _NUL_ESCAPE.search(text):
        raise EventError("properties", "must not contain NUL characters")
    if size > MAX_PROPERTIES_BYTES:
        raise EventError(
            "properties", f"{size} bytes serialised, more than {MAX_PROPERTIES_BYTES} (4 KB)"
        )
    copy: dict[str, Any] = json.loads(text)
    return copy, text
