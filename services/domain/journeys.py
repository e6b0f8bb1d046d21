"""Journeys: outreach triggered by engagement, decided by pure rules.

A journey has a *trigger* (event types, a stage, a resource or a topic, a campaign), a
*delay*, an *exit* condition and an action. A person enters a journey once, at their
earliest matching event; the action is due ``delay`` after it. When it is due, the
decision is, in this order:

1. **exited**: the person's events up to the due moment meet the exit condition
   (e.g. they already reached *produce*, or already used the resource);
2. **skipped_consent**: the person cannot be reached on the action's channel now;
3. **skipped_cap**: the person already had ``limit`` messages in the cap window ending
   at the due moment (all campaigns and journeys together);
4. **acted** otherwise; the message counts for the cap at its due moment.

The same functions decide for the live timer runner and for a simulation over stored
events, so both give the same counts for the same events.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from services.domain.stages import Stage

__all__ = [
    "MAX_DELAY",
    "STATS",
    "Entry",
    "ExitRule",
    "FrequencyCap",
    "JourneyError",
    "JourneyRule",
    "Outcome",
    "RunState",
    "StageEvent",
    "Trigger",
    "cap_allows",
    "decide",
    "decide_due",
    "earliest",
    "exited",
    "match_triggers",
    "matches",
    "parse_cap",
    "parse_delay",
    "parse_exit",
    "parse_trigger",
]


class JourneyError(ValueError):
    """A journey definition that cannot be used; the message names the field."""


class Outcome(StrEnum):
    """What became of a due journey run (the value is the stats key)."""

    ACTED = "acted"
    EXITED = "exited"
    SKIPPED_CONSENT = "skipped_consent"
    SKIPPED_CAP = "skipped_cap"


class RunState(StrEnum):
    """A journey run as stored: ``waiting`` until it is due and decided, then its
    :class:`Outcome` (the same strings)."""

    WAITING = "waiting"
    ACTED = Outcome.ACTED.value
    EXITED = Outcome.EXITED.value
    SKIPPED_CONSENT = Outcome.SKIPPED_CONSENT.value
    SKIPPED_CAP = Outcome.SKIPPED_CAP.value
    HELD_OUT = "held_out"  # a control of the journey's (or the global) holdout: no action


STATS = ("triggered", *(s.value for s in RunState))
"""The keys of a journey's statistics, in display order."""


@dataclass(frozen=True)
class Trigger:
    """Which events start a journey; every given part must match (empty = any)."""

    types: frozenset[str] = frozenset()
    stage: Stage | None = None
    topic: str | None = None
    resource_id: str | None = None
    campaign_id: str | None = None


@dataclass(frozen=True)
class ExitRule:
    """A journey ends without acting when the person, by the due moment, has reached
    ``reached_stage``, used ``used_resource`` (an event at stage use or higher on it),
    or has an event of one of ``types`` after the trigger."""

    reached_stage: Stage | None = None
    used_resource: str | None = None
    types: frozenset[str] = frozenset()


@dataclass(frozen=True)
class JourneyRule:
    """The decision-relevant part of a journey. Events before ``starts_at`` (the
    journey's creation) do not trigger it; ``None`` means any (simulations)."""

    id: str
    trigger: Trigger
    delay: timedelta
    exit: ExitRule = ExitRule()
    starts_at: datetime | None = None


@dataclass(frozen=True)
class StageEvent:
    """An engagement event as journeys see it (``topics`` of its resource, if any)."""

    event_id: str
    person: str
    type: str
    occurred_at: datetime
    stage: Stage | None = None
    resource_id: str | None = None
    campaign_id: str | None = None
    topics: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, order=True)
class Entry:
    """A person entering a journey: the action is due at ``due_at``. Orders by due time."""

    due_at: datetime
    event_id: str
    journey_id: str
    person: str
    triggered_at: datetime


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``limit`` messages a person in any window of ``window``."""

    limit: int
    window: timedelta


# --- parsing -------------------------------------------------------------------------

MAX_DELAY = timedelta(days=3650)
#: Event types a trigger or an exit rule may list (each as long as an event's type may be).
MAX_TYPES, MAX_TYPE_CHARS = 100, 100
"""The longest journey delay (about ten years): a due time always within the calendar."""
_DURATION = re.compile(
    r"P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?",
    flags=re.ASCII,
)
_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_CAP = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*([dhw])\s*", flags=re.ASCII)
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_delay(text: object) -> timedelta:
    """An ISO 8601 duration of weeks, days, hours, minutes, seconds (``P7D``, ``PT36H``),
    at most :data:`MAX_DELAY`."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None or text in ("P", "PT") or str(text).endswith("T"):
        raise JourneyError(f"delay: must be an ISO 8601 duration like P7D or PT12H, got {text!r}")
    parts = {k: v.lstrip("0") or "0" for k, v in match.groupdict().items() if v}
    too_long = JourneyError(f"delay: at most {MAX_DELAY.days} days, got {text!r}")
    if any(len(v) > 12 for v in parts.values()):  # past the bound: no huge integer made
        raise too_long
    seconds = sum(int(v) * _SECONDS[k] for k, v in parts.items())
    if seconds > MAX_DELAY.total_seconds():
        raise too_long
    return timedelta(seconds=seconds)


def parse_cap(text: str) -> FrequencyCap:
    """``"3/7d"`` → at most 3 messages per 7 days (units h, d, w)."""
    match = _CAP.fullmatch(text or "")
    if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise JourneyError(f"frequency cap: must look like 3/7d, got {text!r}")
    return FrequencyCap(int(match.group(1)), int(match.group(2)) * _UNITS[match.group(3)])


def _stage(value: object, name: str) -> Stage | None:
    if value is None:
        return None
    try:
        return Stage(value)
    except ValueError:
        raise JourneyError(f"{name}: must be aware, use or produce, got {value!r}") from None


def _types(value: object, name: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise JourneyError(f"{name}: must be a list of event types")
    items = list(value)
    if len(items) > MAX_TYPES:
        raise JourneyError(f"{name}: at most {MAX_TYPES} event types, got {len(items)}")
    if not all(isinstance(t, str) and 0 < len(t) <= MAX_TYPE_CHARS for t in items):
        raise JourneyError(
            f"{name}: event types must be strings of 1 to {MAX_TYPE_CHARS} characters"
        )
    return frozenset(items)


def _text(obj: Mapping[str, Any], key: str, name: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise JourneyError(f"{name}.{key}: must be a non-empty string")
    return value


def parse_trigger(obj: Mapping[str, Any]) -> Trigger:
    """A trigger from its JSON form; at least one part must be given."""
    if not isinstance(obj, Mapping):
        raise JourneyError("trigger: must be an object")
    trigger = Trigger(
        types=_types(obj.get("types"), "trigger.types"),
        stage=_stage(obj.get("stage"), "trigger.stage"),
        topic=_text(obj, "topic", "trigger"),
        resource_id=_text(obj, "resource_id", "trigger"),
        campaign_id=_text(obj, "campaign_id", "trigger"),
    )
    if trigger == Trigger():
        raise JourneyError("trigger: give types, a stage, a topic, a resource or a campaign")
    return trigger


def parse_exit(obj: Mapping[str, Any] | None) -> ExitRule:
    """An exit rule from its JSON form (``None`` or ``{}``: never exits early)."""
    if obj is None:
        return ExitRule()
    if not isinstance(obj, Mapping):
        raise JourneyError("exit: must be an object")
    return ExitRule(
        reached_stage=_stage(obj.get("reached_stage"), "exit.reached_stage"),
        used_resource=_text(obj, "used_resource", "exit"),
        types=_types(obj.get("types"), "exit.types"),
    )


# --- triggers ------------------------------------------------------------------------


def matches(trigger: Trigger, event: StageEvent) -> bool:
    """Whether ``event`` starts a journey with ``trigger``."""
    return (
        (not trigger.types or event.type in trigger.types)
        and (trigger.stage is None or event.stage == trigger.stage)
        and (trigger.topic is None or trigger.topic in event.topics)
        and (trigger.resource_id is None or event.resource_id == trigger.resource_id)
        and (trigger.campaign_id is None or event.campaign_id == trigger.campaign_id)
    )


def earliest(a: Entry, b: Entry) -> Entry:
    """Of two entries of one person into one journey, the one from the earlier event."""
    return a if (a.triggered_at, a.event_id) <= (b.triggered_at, b.event_id) else b


def match_triggers(
    rules: Iterable[JourneyRule],
    events: Iterable[StageEvent],
    beyond: list[tuple[str, str]] | None = None,
) -> list[Entry]:
    """The earliest entry of each (journey, person) among ``events``, in due order.

    Keeping the earliest makes the result independent of arrival order: merging the
    entries of two batches with :func:`earliest` gives the entries of both together.
    An entry that would be due past the end of the calendar (a delay stored before it
    was bounded, an event dated near year 9999) is never due: it is left out, and its
    (journey id, event id) added to ``beyond`` when given.
    """
    rules = list(rules)
    found: dict[tuple[str, str], Entry] = {}
    for event in events:
        for rule in rules:
            if rule.starts_at is not None and event.occurred_at < rule.starts_at:
                continue
            if not matches(rule.trigger, event):
                continue
            try:
                due = event.occurred_at + rule.delay
            except OverflowError:
                if beyond is not None:
                    beyond.append((rule.id, event.event_id))
                continue
            entry = Entry(due, event.event_id, rule.id, event.person, event.occurred_at)
            key = (rule.id, event.person)
            found[key] = earliest(found[key], entry) if key in found else entry
    return sorted(found.values())


# --- decisions -----------------------------------------------------------------------


def exited(rule: ExitRule, entry: Entry, events: Iterable[StageEvent]) -> bool:
    """Whether the person's ``events`` up to ``entry.due_at`` meet the exit rule."""
    for e in events:
        if e.occurred_at > entry.due_at:
            continue
        if rule.reached_stage is not None and e.stage is not None and e.stage >= rule.reached_stage:
            return True
        used = e.stage is not None and e.stage >= Stage.USE
        if rule.used_resource is not None and used and e.resource_id == rule.used_resource:
            return True
        if rule.types and e.type in rule.types and e.occurred_at > entry.triggered_at:
            return True
    return False


def cap_allows(cap: FrequencyCap, at: datetime, message_times: Iterable[datetime]) -> bool:
    """Whether one more message at ``at`` keeps the count in ``(at - window, at]`` within
    the cap."""
    recent = sum(1 for t in message_times if at - cap.window < t <= at)
    return recent < cap.limit


def decide(
    rule: ExitRule,
    entry: Entry,
    events: Iterable[StageEvent],
    reachable: bool,
    message_times: Iterable[datetime],
    cap: FrequencyCap,
) -> Outcome:
    """The outcome of one due entry (see the module doc for the order of the checks)."""
    if exited(rule, entry, events):
        return Outcome.EXITED
    if not reachable:
        return Outcome.SKIPPED_CONSENT
    if not cap_allows(cap, entry.due_at, message_times):
        return Outcome.SKIPPED_CAP
    return Outcome.ACTED


def decide_due(
    entries: Sequence[Entry],
    exits: Mapping[str, ExitRule],
    events: Mapping[str, Sequence[StageEvent]],
    reachable: Callable[[Entry], bool],
    messages: Mapping[str, Sequence[datetime]],
    cap: FrequencyCap,
) -> list[tuple[Entry, Outcome]]:
    """Decide due entries in due order; each action counts for the cap of later ones.

    ``exits`` maps journey ids to exit rules, ``events`` and ``messages`` map persons to
    their events and to the times of their earlier messages.
    """
    sent: dict[str, list[datetime]] = {}
    decided = []
    for entry in sorted(entries):
        times = [*messages.get(entry.person, ()), *sent.get(entry.person, ())]
        outcome = decide(
            exits[entry.journey_id],
            entry,
            events.get(entry.person, ()),
            reachable(entry),
            times,
            cap,
        )
        if outcome is Outcome.ACTED:
            sent.setdefault(entry.person, []).append(entry.due_at)
        decided.append((entry, outcome))
    return decided
