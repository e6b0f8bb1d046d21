"""Input from outside, made safe to keep: JSON parsed at any depth, text SQL can store.

PostgreSQL's ``text`` and ``json`` refuse the NUL character (SQLite keeps it), and no
database can encode a lone UTF-16 surrogate (``"\\ud800"`` is valid JSON) as UTF-8:
such input is refused or skipped where it arrives, naming the field, never left to fail
as a 500 at commit. ``json.loads`` raises RecursionError (not a ValueError) on arrays
nested a few thousand deep: :func:`parse_json` makes that a ValueError like any other
malformed body. RFC 8259 has no ``NaN`` nor ``Infinity`` (``json.loads`` takes them; PostgreSQL's
``json`` refuses them, SQLite stores ``null``): :func:`parse_json` refuses them, naming where,
and a number beyond a float's range as well (``1e400`` is valid JSON but ``json.loads`` makes
it ``inf``, the same Infinity). JSON kept as given (event properties, contact attributes) may
nest :data:`MAX_DEPTH` levels (:func:`too_deep`); deeper cannot be read back as JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "NotJSONNumber",
    "json_depth",
    "parse_json",
    "readable",
    "storable",
    "too_deep",
    "unstorable",
]

# Objects and arrays nested in JSON kept as given (the outer object is level 1). Deeper JSON
# cannot be pickled or re-encoded by the stream worker within Python's recursion limit, nor
# serialised in an answer (pydantic stops at ~255 levels).
MAX_DEPTH = 32
_NOT_JSON = "is not a number JSON allows"
_TOO_LARGE = "is too large for a number (beyond about 1.8e308)"


class NotJSONNumber(ValueError):
    """``NaN``, ``Infinity``, ``-Infinity`` or a number beyond a float's range (``1e400``)
    in a body: ``where`` is its path (``0.attributes.x``), ``problem`` what is wrong."""

    def __init__(self, constant: str, where: str, problem: str = _NOT_JSON) -> None:
        self.constant, self.where, self.problem = constant, where, problem
        super().__init__(f"{constant} {problem}, at {where or 'the top'}")


class _Constant:
    """What the second, locating parse puts where a refused number stood."""

    def __init__(self, name: str, problem: str = _NOT_JSON) -> None:
        self.name, self.problem = name, problem


def _refuse(name: str) -> Any:
    raise NotJSONNumber(name, "")


def _number(on_overflow: Callable[[str, str], Any]) -> Callable[[str], Any]:
    """A ``parse_float`` that hands a number ``float`` makes infinite to ``on_overflow``."""

    def parse(text: str) -> Any:
        value = float(text)
        if math.isinf(value):
            shown = text if len(text) <= 40 else f"{text[:20]}...{text[-10:]}"
            return on_overflow(shown, _TOO_LARGE)
        return value

    return parse


def _refuse_number(shown: str, problem: str) -> Any:
    raise NotJSONNumber(shown, "", problem)


_STRICT_FLOAT, _LOCATING_FLOAT = _number(_refuse_number), _number(_Constant)


def parse_json(data: str | bytes) -> Any:
    """``json.loads`` without NaN, Infinity nor numbers beyond a float (:class:`NotJSONNumber`,
    naming where); every malformed input (nested too deep too) raises ValueError. A normal
    body is parsed once; only a refused one is parsed again."""
    try:
        return json.loads(data, parse_constant=_refuse, parse_float=_STRICT_FLOAT)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None
    except NotJSONNumber:
        located = json.loads(data, parse_constant=_Constant, parse_float=_LOCATING_FLOAT)
        raise _located(located) from None


def _located(document: object) -> NotJSONNumber:
    """The error naming the first ``NaN``/``Infinity`` in ``document`` (walked without recursion)."""
    stack: list[tuple[object, str]] = [(document, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, _Constant):
            return NotJSONNumber(item.name, where, item.problem)
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


def json_depth(value: object, limit: int) -> int:
    """How deep objects and arrays nest in ``value`` (a scalar is 0), counted without
    recursion and only up to ``limit + 1``: safe on any depth."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def too_deep(value: object) -> str | None:
    """``"nested deeper than 32 levels"`` when ``value`` nests deeper than :data:`MAX_DEPTH`."""
    if json_depth(value, MAX_DEPTH) > MAX_DEPTH:
        return f"nested deeper than {MAX_DEPTH} levels"
    return None


def readable(kept: Mapping[str, Any]) -> Mapping[str, Any]:
    """``kept`` as an answer can serialise it: each value that makes it nest deeper than
    :data:`MAX_DEPTH` (stored before that cap) is given as its JSON text instead."""
    if too_deep(kept) is None:
        return kept
    return {
        key: json.dumps(value) if json_depth(value, MAX_DEPTH - 1) >= MAX_DEPTH else value
        for key, value in kept.items()
    }
