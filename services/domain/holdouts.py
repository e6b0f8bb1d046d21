"""Randomized holdouts: who is held out of a campaign or journey, and who converted.

Assignment is deterministic and stable: ``HMAC-SHA256(key, "kind:id" + NUL + person)``,
its first 8 bytes read as an integer and divided by 2**64, gives a number in [0, 1);
a person whose number is below the share is a control. The same person in the same
experiment always lands in the same arm, in every process, with no state.

Conversion (intention to treat): a person converts at stage S when they have a counted
event of stage S or higher in ``(assigned_at, assigned_at + window]``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = [
    "CONTROL",
    "GLOBAL",
    "NOT_RANDOMIZABLE",
    "TREATMENT",
    "Holdout",
    "HoldoutError",
    "arm_of",
    "assignment_unit",
    "converted",
    "window_closed",
]

CONTROL, TREATMENT = "control", "treatment"
GLOBAL = "global:all"  # the experiment name of the global holdout
MAX_SHARE = 0.5
MAX_WINDOW_DAYS = 365
NOT_RANDOMIZABLE = "holdout: social and toolkit campaigns cannot be randomized per person"


class HoldoutError(ValueError):
    """A holdout that cannot be set (the API answers 422 with the message)."""


@dataclass(frozen=True)
class Holdout:
    """A share of the eligible people kept from the message, and the conversion window."""

    share: float
    window_days: int = 30

    def __post_init__(self) -> None:
        if not 0 < self.share <= MAX_SHARE:
            raise HoldoutError(f"holdout.share: must be in (0, {MAX_SHARE}], got {self.share}")
        if not 1 <= self.window_days <= MAX_WINDOW_DAYS:
            raise HoldoutError(f"holdout.window_days: must be 1 to {MAX_WINDOW_DAYS}")

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.window_days)


def assignment_unit(key: bytes, experiment: str, person: str) -> float:
    """The person's number in [0, 1) for ``experiment`` (e.g. ``"campaign:ID"``)."""
    if not key:
        raise ValueError("holdout key must not be empty")
    message = f"{experiment}\x00{person}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def arm_of(unit: float, share: float) -> str:
    """``control`` below the share, else ``treatment``."""
    return CONTROL if unit < share else TREATMENT


def converted(assigned_at: datetime, event_at: datetime, window: timedelta) -> bool:
    """Is the event inside the person's window ``(assigned_at, assigned_at + window]``?"""
    return assigned_at < event_at <= assigned_at + window


def window_closed(last_assigned_at: datetime | None, window: timedelta, now: datetime) -> bool:
    """Has the window passed for everyone assigned (the last one included)?"""
    return last_assigned_at is not None and now >= last_assigned_at + window
