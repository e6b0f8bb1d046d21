"""Unsubscribe groups (SendGrid's ASM groups) and who may be emailed: the pure rules.

A campaign may name an *unsubscribe group*: SendGrid's integer id of a kind of email
("newsletter", "events"). A person who leaves a group gets no campaign of that group;
other campaigns still reach them, and rejoining the group restores it. An unsubscribe
that names no group is the person leaving all email, as before.

SendGrid retries webhook batches for up to a day, so a person's group choices can
arrive out of order: the choice with the latest event time wins, whatever the order
of arrival (at equal times, the one that arrives last).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.domain.consent import may_email

__all__ = [
    "MAX_GROUP_ID",
    "GroupChoice",
    "blocked_reason",
    "choice_applies",
    "group_choice",
    "group_id",
]

#: SendGrid's group ids are 32-bit integers (sendgrid-go's ``SendMailRequestAsm``).
MAX_GROUP_ID = 2**31 - 1
_LEAVING = {"group_unsubscribe": True, "group_resubscribe": False}


@dataclass(frozen=True, slots=True)
class GroupChoice:
    """A person left (``unsubscribed``) or rejoined a group at ``at``."""

    group: int
    unsubscribed: bool
    at: datetime


def group_id(value: Any) -> int | None:
    """A valid group id (an integer in 1..2^31-1, as SendGrid sends it), else None.

    Booleans are not ids, though Python says ``True == 1``."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 1 <= value <= MAX_GROUP_ID else None


def group_choice(event: Mapping[str, Any], at: datetime) -> GroupChoice | None:
    """The group choice a SendGrid event makes, or None: not a group (un)subscribe, or
    one without a valid ``asm_group_id`` (that one keeps the all-email meaning)."""
    unsubscribed = _LEAVING.get(str(event.get("event")))
    group = group_id(event.get("asm_group_id"))
    if unsubscribed is None or group is None:
        return None
    return GroupChoice(group, unsubscribed, at)


def choice_applies(stored_at: datetime | None, choice: GroupChoice) -> bool:
    """Whether ``choice`` replaces the stored one (made at ``stored_at``): the latest wins."""
    return stored_at is None or choice.at >= stored_at


def blocked_reason(
    email: str | None, consent: str | None, suppressed: str | None, left_group: int | None
) -> str | None:
    """Why a campaign email may not go to a contact now, or None when it may.

    ``suppressed``: the address's suppression reason; ``left_group``: the campaign's
    unsubscribe group when the contact left it."""
    if suppressed is not None:
        return f"suppressed: {suppressed}"
    if not may_email(consent):
        return f"consent: {consent}"
    if left_group is not None:
        return f"unsubscribed from group {left_group}"
    if not email or not email.strip():
        return "no email address"
    return None
