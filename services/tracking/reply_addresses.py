"""Reply addresses: each send's own signed ``reply+<send id hex>.<mac>@<domain>``, so an
Inbound Parse post maps back to its send without personal data (no router here: the
campaigns that make the addresses and the inbound router that reads them both use it)."""

from __future__ import annotations

import hashlib
import hmac
import re

__all__ = ["reply_address", "send_of_address"]

_ADDRESS = re.compile(r"reply\+([0-9a-f]{2,80})\.([0-9a-f]{12})@", re.IGNORECASE)


def _mac(secret: bytes, payload: str) -> str:
    key = hashlib.sha256(b"winwin-reply:" + secret).digest()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()[:12]


def reply_address(secret: bytes, send_id: str, domain: str) -> str:
    """The reply address of one send: lower-case, no personal data, signed."""
    payload = send_id.encode().hex()
    return f"reply+{payload}.{_mac(secret, payload)}@{domain}"


def send_of_address(secret: bytes, text: str) -> str | None:
    """The send id of the first genuine reply address found in ``text``, else None."""
    for match in _ADDRESS.finditer(text or ""):
        payload, mac = match.group(1).lower(), match.group(2).lower()
        if hmac.compare_digest(mac, _mac(secret, payload)):
            try:
                return bytes.fromhex(payload).decode()
            except (ValueError, UnicodeDecodeError):
                continue
    return None
