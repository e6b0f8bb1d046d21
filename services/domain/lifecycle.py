"""The life cycle of a campaign, of its sends and of its social posts: statuses and rules.

Campaign: ``draft`` → ``scheduled`` → ``sending`` → ``sent``. Staff may

* **schedule** a draft, or a scheduled campaign again (a new time);
* **pause** a scheduled or sending campaign (pausing a paused one changes nothing); the
  dispatcher stops between two batches;
* **resume** a paused campaign: back to ``sending`` when it had started (it has sends),
  else to ``scheduled``;
* **cancel** anything not yet ``sent``.

The dispatchers move ``scheduled`` → ``sending`` when a campaign is due and ``sending`` →
``sent`` when nothing is left; a journey's campaign is created ``sent`` and reopened
(``sent`` → ``sending``) when a journey run adds sends to it.

Send: ``pending`` → ``sent`` | ``suppressed`` | ``failed``; only a pending send changes.
Social post: ``pending`` → ``published``, or ``refused`` when it is built (never published).

The values are the strings stored in SQL and shown by the API (``StrEnum``: a member
equals its string).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

__all__ = [
    "ACTIVE",
    "NEXT",
    "CampaignStateError",
    "CampaignStatus",
    "PostStatus",
    "SendStatus",
    "cancel",
    "is_final",
    "may_change",
    "pause",
    "resume",
    "schedule",
]


class CampaignStatus(StrEnum):
    """Where a campaign is in its life cycle."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    PAUSED = "paused"
    CANCELLED = "cancelled"


class SendStatus(StrEnum):
    """What became of one message to one person."""

    PENDING = "pending"
    SENT = "sent"
    SUPPRESSED = "suppressed"
    FAILED = "failed"
    HELD_OUT = "held_out"  # a control of the campaign's (or the global) holdout


class PostStatus(StrEnum):
    """A social post of a campaign (its deliveries to each publisher are kept apart)."""

    PENDING = "pending"
    PUBLISHED = "published"
    REFUSED = "refused"


class CampaignStateError(Exception):
    """The campaign is not in a state that allows the change (HTTP 409, CLI exit 2)."""


_C = CampaignStatus
#: The campaigns the dispatchers and publishers work on (due ones are claimed).
ACTIVE: tuple[CampaignStatus, ...] = (_C.SCHEDULED, _C.SENDING)
#: Every change a campaign's status may undergo, by staff or by a dispatcher.
NEXT: Mapping[CampaignStatus, frozenset[CampaignStatus]] = {
    _C.DRAFT: frozenset({_C.SCHEDULED, _C.CANCELLED}),
    _C.SCHEDULED: frozenset({_C.SCHEDULED, _C.SENDING, _C.PAUSED, _C.CANCELLED}),
    _C.SENDING: frozenset({_C.SENT, _C.PAUSED, _C.CANCELLED}),
    _C.PAUSED: frozenset({_C.PAUSED, _C.SCHEDULED, _C.SENDING, _C.CANCELLED}),
    _C.SENT: frozenset({_C.SENDING}),
    _C.CANCELLED: frozenset({_C.CANCELLED}),
}


def may_change(old: str, new: str) -> bool:
    """Whether a campaign may go from ``old`` to ``new`` (unknown statuses may not)."""
    return old in NEXT and new in NEXT[CampaignStatus(old)]


def schedule(status: str) -> CampaignStatus:
    """``draft|scheduled`` → ``scheduled``."""
    if status not in (_C.DRAFT, _C.SCHEDULED):
        raise CampaignStateError(
            f"campaign is {status}; only draft or scheduled campaigns can be scheduled"
        )
    return _C.SCHEDULED


def pause(status: str) -> CampaignStatus:
    """``scheduled|sending|paused`` → ``paused``."""
    if status not in (_C.SCHEDULED, _C.SENDING, _C.PAUSED):
        raise CampaignStateError(
            f"campaign is {status}; only a scheduled or sending campaign can be paused"
        )
    return _C.PAUSED


def resume(status: str, *, started: bool) -> CampaignStatus:
    """``paused`` → ``sending`` if it had ``started`` (it has sends), else ``scheduled``."""
    if status != _C.PAUSED:
        raise CampaignStateError(f"campaign is {status}; only a paused campaign can be resumed")
    return _C.SENDING if started else _C.SCHEDULED


def cancel(status: str) -> CampaignStatus:
    """Anything not yet ``sent`` → ``cancelled``."""
    if status == _C.SENT:
        raise CampaignStateError("campaign already sent")
    return _C.CANCELLED


def is_final(status: str) -> bool:
    """Whether a send's status can no longer change (everything but ``pending``)."""
    return status in (
        SendStatus.SENT,
        SendStatus.SUPPRESSED,
        SendStatus.FAILED,
        SendStatus.HELD_OUT,
    )
