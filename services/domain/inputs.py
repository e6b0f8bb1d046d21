"""Input from outside, made safe to keep: JSON parsed at any depth, text SQL can store.

PostgreSQL's ``text`` and ``json`` refuse the NUL character (SQLite keeps it), and no
database can encode a lone UTF-16 surrogate (``"\\ud800"`` is valid JSON) as UTF-8:
such input is refused or skipped where it arrives, naming the field, never left to fail
as a 500 at commit. ``json.loads`` raises RecursionError (not a ValueError) on arrays
nested a few thousand deep: :func:`parse_json` makes that a ValueError like any other
malformed body. RFC 8259 has no ``NaN`` nor ``Infinity`` (``json.loads`` takes them; PostgreSQL's
``json`` refuses them, SQLite stores ``null``): :func:`parse_json` refuses them, naming where.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["NotJSONNumber", "parse_json", "storable", "unstorable"]


class NotJSONNumber(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity`` in a body: ``where`` is its path (``0.attributes.x``)."""

    def __init__(self, constant: str, where: str) -> None:
        self.constant, self.where = constant, where
        super().__init__(f"{constant} is not a number JSON allows, at {where or 'the top'}")


class _Constant:
    """What the second, locating parse puts where ``NaN`` or ``Infinity`` stood."""

    def __init__(self, name: str) -> None:
        self.name = name


def _refuse(name: str) -> Any:
    raise NotJSONNumber(name, "")


def parse_json(data: str | bytes) -> Any:
    """``json.loads`` without NaN and Infinity (:class:`NotJSONNumber`, naming where);
    every malformed input (nested too deep too) raises ValueError. A normal body is
    parsed once at the standard library's speed; only a refused one is parsed again."""
    try:
        return json.loads(data, parse_constant=_refuse)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None
    except NotJSONNumber:
        raise _located(json.loads(data, parse_constant=_Constant)) from None


def _located(document: object) -> NotJSONNumber:
    """The error naming the first ``NaN``/``Infinity`` in ``document`` (walked without recursion)."""
    stack: list[tuple[object, str]] = [(document, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, _Constant):
            return NotJSONNumber(item.name, where)
        children = (
            item.items()
            if isinstance(item, dict)
            else enumerate(item)
            if isinstance(item, list)
            else ()
        )
        stack.extend(
            (value, f"{where}.{key}" if where else str(key))
            for key, value in reversed(list(children))
        )
    return NotJSONNumber("NaN", "")  # not reached: the first parse met one


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
