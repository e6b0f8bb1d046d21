"""People's right to erasure: what stays of an erased address (standard library only).

An erased address is kept on the suppression list only as a keyed hash (HMAC-SHA256 with
``WINWIN_SECRET_KEY``), so that a later import of the same address is never mailed while
the address itself is not stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

ERASED_PREFIX = "erased:"
ERASED_REASON = "erased"


def address_key(secret: bytes, email_normalized: str) -> str:
    """The suppression list's entry of an erased address (never the address itself)."""
    digest = hmac.new(secret, b"erased-address\x00" + email_normalized.encode(), hashlib.sha256)
    return ERASED_PREFIX + digest.hexdigest()


def new_pseudonym() -> str:
    """A random pseudonym for an erased person's facts: no external id leads to it."""
    return "p" + secrets.token_hex(16)  # the shape of every pseudonym: it tells nothing


def erased_external_id() -> str:
    return ERASED_PREFIX + secrets.token_hex(12)


def inflight_key(secret: bytes, pseudonym: str) -> str:
    """How the erased-pseudonym map names an erased person's old pseudonym: a keyed hash
    (HMAC-SHA256 with ``WINWIN_SECRET_KEY``), so the map itself holds no pseudonym."""
    digest = hmac.new(secret, b"erased-pseudonym\x00" + pseudonym.encode(), hashlib.sha256)
    return digest.hexdigest()
