"""Short random identifiers for rows that travel in URLs and Kafka records."""

from __future__ import annotations

import secrets


def new_id() -> str:
    """12 URL-safe characters (72 random bits)."""
    return secrets.token_urlsafe(9)
