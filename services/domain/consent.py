"""Consent to be emailed: its states and who may change them.

A contact's email consent is ``unconfirmed`` until staff (or an import) record that the
person agreed (``confirmed``); the person may withdraw it (``unsubscribed``): a one-click
unsubscribe, a SendGrid unsubscribe or spam report. Staff may set any consent, except
over an unsubscribe, which only the person can undo: their choice is theirs, and a
re-posted or re-imported record from an older list must not sign them up again. Only a
confirmed contact is emailed.

The values are the strings stored in SQL and accepted by the API (``StrEnum``).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Consent", "group_consent", "may_email", "staff_may_set"]


class Consent(StrEnum):
    """A contact's consent on a channel (email)."""

    CONFIRMED = "confirmed"
    UNCONFIRMED = "unconfirmed"
    UNSUBSCRIBED = "unsubscribed"


def staff_may_set(current: str | None, requested: str | None) -> str | None:
    """The consent staff may set over ``current``: ``requested``, except over an
    unsubscribe (only the person can undo it), where it is None: leave it as it is."""
    if current == Consent.UNSUBSCRIBED and requested != Consent.UNSUBSCRIBED:
        return None
    return requested


def may_email(consent: str | None) -> bool:
    """Whether a contact with this consent may get a campaign email."""
    return consent == Consent.CONFIRMED


def group_consent(unsubscribed: bool) -> Consent:
    """The consent a person's choice about one unsubscribe group records for that group
    (leaving it or rejoining it is their own choice, so either way it stands)."""
    return Consent.UNSUBSCRIBED if unsubscribed else Consent.CONFIRMED
