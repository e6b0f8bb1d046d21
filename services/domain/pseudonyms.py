"""Pseudonyms: how a person appears in streams, URLs and SendGrid metadata.

A pseudonym is ``"p"`` followed by the first 16 bytes of HMAC-SHA256(secret,
person_ref) in lowercase hex (33 characters in all). ``person_ref`` is a contact's
``external_id``, for a visitor known only by the ``ww_vid`` cookie ``"v:<ww_vid>"``, and
for a trusted messenger (who has no contact record) ``"messenger:<messenger id>"``; all
are pseudonymised the same way, so one secret gives one stable pseudonym per person and
the reference cannot be read back from it.
"""

from __future__ import annotations

import hashlib
import hmac
import re

__all__ = [
    "MESSENGER_PREFIX",
    "VISITOR_PREFIX",
    "is_pseudonym",
    "messenger_ref",
    "pseudonymise",
    "visitor_ref",
]

VISITOR_PREFIX = "v:"
"""Prefix of the person reference of a visitor: ``"v:<ww_vid>"``."""
MESSENGER_PREFIX = "messenger:"
"""Prefix of the person reference of a messenger: ``"messenger:<messenger id>"``."""

_PSEUDONYM = re.compile(r"p[0-9a-f]{32}")


def pseudonymise(secret: bytes, person_ref: str) -> str:
    """The pseudonym of ``person_ref`` under ``secret``: ``"p"`` + 32 hex characters."""
    if not secret:
        raise ValueError("pseudonym secret must not be empty")
    if not person_ref:
        raise ValueError("person_ref must not be empty")
    digest = hmac.new(secret, person_ref.encode("utf-8"), hashlib.sha256).digest()
    return "p" + digest[:16].hex()


def is_pseudonym(value: object) -> bool:
    """Whether ``value`` has the form of a pseudonym (not whether it is a known one)."""
    return isinstance(value, str) and _PSEUDONYM.fullmatch(value) is not None


def visitor_ref(ww_vid: str) -> str:
    """The person reference of a visitor identified by the ``ww_vid`` cookie."""
    if not ww_vid:
        raise ValueError("ww_vid must not be empty")
    return VISITOR_PREFIX + ww_vid


def messenger_ref(messenger_id: str) -> str:
    """The person reference of a trusted messenger (their own page views and shares)."""
    if not messenger_id:
        raise ValueError("messenger_id must not be empty")
    return MESSENGER_PREFIX + messenger_id
