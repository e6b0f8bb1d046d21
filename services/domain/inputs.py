"""Input from outside, made safe to keep: JSON parsed at any depth, text SQL can store.

PostgreSQL's ``text`` and ``json`` refuse the NUL character (SQLite keeps it), and no
database can encode a lone UTF-16 surrogate (``"\\ud800"`` is valid JSON) as UTF-8:
such input is refused or skipped where it arrives, naming the field, never left to fail
as a 500 at commit. ``json.loads`` raises RecursionError (not a ValueError) on arrays
nested a few thousand deep: :func:`parse_json` makes that a ValueError like any other
malformed body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["parse_json", "storable", "unstorable"]


def parse_json(data: str | bytes) -> Any:
    """``json.loads``; every malformed input (nested too deep too) raises ValueError."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


def storable(text: str) -> bool:
    """No NUL (PostgreSQL text refuses it) and no lone surrogate (not encodable as UTF-8)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unstorable(value: object) -> str | None:
    """Why some text in ``value`` (a string, or keys and values of JSON-like objects and
    arrays at any depth, walked without recursion) cannot be stored, or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not storable(item):
                return "contains a NUL character or invalid Unicode"
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return None
