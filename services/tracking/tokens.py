"""Signed tokens for public URLs (/r, /o, /u, /t).

A token is ``<payload>.<mac>``: the payload names stored rows (a link id, a send id),
never an address or a destination, and the MAC (HMAC-SHA256, truncated, compared in
constant time) rejects tampered or guessed tokens before any database lookup.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

MAC_BYTES = 10


@dataclass(frozen=True)
class TokenClaims:
    kind: str  # "r" redirect, "o" open pixel, "u" unsubscribe, "t" toolkit
    ref: str  # link id (r), send id (o, u), toolkit id (t)
    send_id: str | None = None  # r: the send a per-recipient link belongs to


class Tokens:
    def __init__(self, secret: bytes):
        self._key = hashlib.sha256(b"winwin-tokens:" + secret).digest()

    def sign(self, kind: str, ref: str, send_id: str | None = None) -> str:
        payload = f"{kind}:{ref}" + (f":{send_id}" if send_id else "")
        body = _b64(payload.encode())
        return f"{body}.{_b64(self._mac(body))}"

    def verify(self, token: str, kind: str) -> TokenClaims | None:
        """The claims of a genuine token of ``kind``, else None (no detail leaks)."""
        if len(token) > 200 or token.count(".") != 1:
            return None
        body, mac = token.split(".")
        try:
            given = _unb64(mac)
            payload = _unb64(body).decode("ascii")
        except (ValueError, UnicodeDecodeError):
            return None
        if _b64(given) != mac or _b64(payload.encode()) != body:
            return None  # a non-canonical spelling (base64's spare bits) is a tampered token
        if not hmac.compare_digest(given, self._mac(body)):
            return None
        parts = payload.split(":")
        if parts[0] != kind or len(parts) not in (2, 3) or not parts[1]:
            return None
        return TokenClaims(kind, parts[1], parts[2] if len(parts) == 3 else None)

    def _mac(self, body: str) -> bytes:
        return hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:MAC_BYTES]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or any(c not in _ALPHABET for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
