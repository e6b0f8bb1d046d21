"""A fast path in front of the JSON Schema validator, for the stream's hot loop.

``jsonschema`` costs ~0.1 ms a record, more than everything else the worker does with
it. :func:`compile_check` turns a record schema of the simple shape ours have (an
object with ``required``, ``additionalProperties: false`` and per-property ``type``,
``enum``, ``minLength``/``maxLength``, ``pattern`` and ``format: date-time``) into a
plain function that answers *surely valid* or *not sure*. A record that is not surely
valid goes to the real validator, which stays the authority and writes the error
message, so the fast path can only ever be stricter than the schema, never looser.
A schema using anything else gets no fast path at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import schemas

Check = Callable[[Any], bool]
_SUPPORTED_OBJECT = {
    "$schema",
    "$id",
    "title",
    "description",
    "type",
    "required",
    "additionalProperties",
    "properties",
}
_SUPPORTED_FIELD = {"type", "enum", "minLength", "maxLength", "pattern", "format", "description"}
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "object": (dict,),
    "null": (type(None),),
}
# RFC 3339 date-time, upper-case separators only; datetime then checks the ranges.
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)",
    re.ASCII,
)


def surely_valid(name: str, record: Any) -> bool:
    """True only if ``record`` is valid against schema ``name`` (False: ask jsonschema)."""
    check = _CHECKS.get(name)
    if check is None:
        check = _CHECKS[name] = compile_check(schemas.load(name))
    return check(record)


def errors_of(name: str, record: Any) -> str | None:
    """Like :func:`schemas.errors_of`, with the fast path first."""
    return None if surely_valid(name, record) else schemas.errors_of(name, record)


_CHECKS: dict[str, Check] = {}


def compile_check(schema: dict[str, Any]) -> Check:
    """The fast check of an object schema (or one that always says "not sure")."""
    if set(schema) - _SUPPORTED_OBJECT or schema.get("type") != "object":
        return _not_sure
    if schema.get("additionalProperties") is not False:
        return _not_sure
    fields: dict[str, Check] = {}
    for key, spec in schema.get("properties", {}).items():
        check = _field_check(spec)
        if check is None:
            return _not_sure
        fields[key] = check
    required = tuple(schema.get("required", ()))
    allowed = frozenset(fields)

    def check_record(record: Any) -> bool:
        if type(record) is not dict or not allowed.issuperset(record):
            return False
        for key in required:
            if key not in record:
                return False
        return all(fields[k](v) for k, v in record.items())

    return check_record


def _field_check(spec: dict[str, Any]) -> Check | None:
    if set(spec) - _SUPPORTED_FIELD or spec.get("format", "date-time") != "date-time":
        return None
    if "enum" in spec:
        if set(spec) - {"enum", "description"}:
            return None
        strings = frozenset(v for v in spec["enum"] if isinstance(v, str))
        if len(strings) + spec["enum"].count(None) != len(spec["enum"]):
            return None
        allow_null = None in spec["enum"]
        return lambda v: (type(v) is str and v in strings) or (allow_null and v is None)
    kinds = spec.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    if kinds == ["boolean"]:
        return lambda v: type(v) is bool
    if not kinds or any(k not in _PY_TYPES for k in kinds):
        return None
    py_types = tuple(t for k in kinds for t in _PY_TYPES[k])
    string = _string_check(spec)
    return lambda v: type(v) in py_types and (type(v) is not str or string(v))


def _string_check(spec: dict[str, Any]) -> Check:
    lo, hi = spec.get("minLength", 0), spec.get("maxLength")
    pattern = re.compile(spec["pattern"]) if "pattern" in spec else None
    date_time = spec.get("format") == "date-time"

    def check(v: str) -> bool:
        n = len(v)
        if n < lo or (hi is not None and n > hi):
            return False
        if pattern is not None and pattern.search(v) is None:
            return False
        return not date_time or _is_date_time(v)

    return check


def _is_date_time(v: str) -> bool:
    if _DATE_TIME.fullmatch(v) is None:
        return False
    try:
        datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _not_sure(_: Any) -> bool:
    return False
