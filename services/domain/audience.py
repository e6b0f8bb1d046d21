"""Audience filters: which contacts an email campaign goes to.

The filter language (CONTRACT.md) is JSON:

* ``{"all": [f, ...]}`` every filter matches; ``{"any": [f, ...]}`` at least one does;
  ``{"not": f}`` ``f`` does not match;
* ``{"attr": NAME, "eq": V}``, ``{"attr": NAME, "in": [V, ...]}``,
  ``{"attr": NAME, "exists": true|false}``;
* ``{"tag": T}`` the contact has tag ``T``.

No filter (``None``) matches everyone. A contact is seen through a *contact view*, a
mapping with ``role``, ``language``, ``external_id``, ``tags`` (a list) and
``attributes`` (a dict). ``attr`` looks at the top-level fields ``role``, ``language``
and ``external_id`` first (when set), then at ``attributes[NAME]``. A missing value and
``null`` are the same: they do not exist and equal nothing (so ``eq``/``in`` refuse
``null``; write ``exists: false``). When the value is a list
(e.g. ``attributes.needs``), ``eq`` and ``in`` match when any element does. Comparisons
are exact: case-sensitive, and ``true`` never equals ``1``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EVERYONE",
    "AllOf",
    "AnyOf",
    "AttrEquals",
    "AttrExists",
    "AttrIn",
    "Audience",
    "AudienceError",
    "Everyone",
    "HasTag",
    "Not",
    "Scalar",
    "attribute_value",
    "parse_audience",
]

Scalar = str | int | float | bool | None
TOP_LEVEL_FIELDS = ("role", "language", "external_id")
_MAX_DEPTH = 32
_COMBINATORS = ("all", "any", "not", "tag")
_OPERATORS = ("eq", "in", "exists")


class AudienceError(ValueError):
    """An audience filter that does not parse; the message starts with the path."""


class Audience:
    """A parsed audience filter. Subclasses are immutable and comparable."""

    def matches(self, contact: Mapping[str, Any]) -> bool:
        """Whether the contact (a contact view) is in the audience."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any] | None:
        """The JSON form that :func:`parse_audience` reads back (``None``: everyone)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Everyone(Audience):
    """No filter: every contact matches."""

    def matches(self, contact: Mapping[str, Any]) -> bool:
        return True

    def to_dict(self) -> dict[str, Any] | None:
        return None


EVERYONE = Everyone()


@dataclass(frozen=True)
class AllOf(Audience):
    """``{"all": [...]}``"""

    parts: tuple[Audience, ...]

    def matches(self, contact: Mapping[str, Any]) -> bool:
        return all(part.matches(contact) for part in self.parts)

    def to_dict(self) -> dict[str, Any] | None:
        return {"all": [part.to_dict() for part in self.parts]}


@dataclass(frozen=True)
class AnyOf(Audience):
    """``{"any": [...]}``"""

    parts: tuple[Audience, ...]

    def matches(self, contact: Mapping[str, Any]) -> bool:
        return any(part.matches(contact) for part in self.parts)

    def to_dict(self) -> dict[str, Any] | None:
        return {"any": [part.to_dict() for part in self.parts]}


@dataclass(frozen=True)
class Not(Audience):
    """``{"not": {...}}``"""

    part: Audience

    def matches(self, contact: Mapping[str, Any]) -> bool:
        return not self.part.matches(contact)

    def to_dict(self) -> dict[str, Any] | None:
        return {"not": self.part.to_dict()}


@dataclass(frozen=True)
class AttrEquals(Audience):
    """``{"attr": NAME, "eq": V}``"""

    name: str
    value: Scalar

    def matches(self, contact: Mapping[str, Any]) -> bool:
        return _any_value(attribute_value(contact, self.name), lambda v: _same(v, self.value))

    def to_dict(self) -> dict[str, Any] | None:
        return {"attr": self.name, "eq": self.value}


@dataclass(frozen=True)
class AttrIn(Audience):
    """``{"attr": NAME, "in": [V, ...]}``"""

    name: str
    values: tuple[Scalar, ...]

    def matches(self, contact: Mapping[str, Any]) -> bool:
        return _any_value(
            attribute_value(contact, self.name),
            lambda v: any(_same(v, wanted) for wanted in self.values),
        )

    def to_dict(self) -> dict[str, Any] | None:
        return {"attr": self.name, "in": list(self.values)}


@dataclass(frozen=True)
class AttrExists(Audience):
    """``{"attr": NAME, "exists": true|false}``"""

    name: str
    exists: bool

    def matches(self, contact: Mapping[str, Any]) -> bool:
        return (attribute_value(contact, self.name) is not None) == self.exists

    def to_dict(self) -> dict[str, Any] | None:
        return {"attr": self.name, "exists": self.exists}


@dataclass(frozen=True)
class HasTag(Audience):
    """``{"tag": T}``"""

    tag: str

    def matches(self, contact: Mapping[str, Any]) -> bool:
        tags = contact.get("tags")
        if isinstance(tags, str) or not isinstance(tags, Sequence | set | frozenset):
            return False
        return self.tag in tags

    def to_dict(self) -> dict[str, Any] | None:
        return {"tag": self.tag}


def attribute_value(contact: Mapping[str, Any], name: str) -> Any:
    """The value ``attr: name`` sees: a set top-level field, else ``attributes[name]``."""
    if name in TOP_LEVEL_FIELDS:
        value = contact.get(name)
        if value is not None:
            return value
    attributes = contact.get("attributes")
    if isinstance(attributes, Mapping):
        return attributes.get(name)
    return None


def _same(have: Any, wanted: Scalar) -> bool:
    # JSON booleans are not numbers here, though Python says True == 1.
    if isinstance(have, bool) or isinstance(wanted, bool):
        return isinstance(have, bool) and isinstance(wanted, bool) and have is wanted
    return bool(have == wanted)


def _any_value(value: Any, test: Callable[[Any], bool]) -> bool:
    if value is None:
        return False
    if isinstance(value, list | tuple | set | frozenset):
        return any(item is not None and test(item) for item in value)
    return bool(test(value))


def parse_audience(obj: object) -> Audience:
    """Parse the JSON form of a filter; ``None`` gives :data:`EVERYONE`.

    Raises :class:`AudienceError` whose message starts with the path of the offending
    part, e.g. ``"all[1]: unknown operator 'gt'"``.
    """
    if obj is None:
        return EVERYONE
    return _parse(obj, "", 0)


def _fail(path: str, message: str) -> AudienceError:
    return AudienceError(f"{path or 'audience'}: {message}")


def _join(path: str, step: str) -> str:
    return f"{path}.{step}" if path else step


def _parse(obj: object, path: str, depth: int) -> Audience:
    if depth > _MAX_DEPTH:
        raise _fail(path, f"filter nested more than {_MAX_DEPTH} levels deep")
    if not isinstance(obj, Mapping):
        raise _fail(path, f"must be an object, got {_json_type(obj)}")
    if "attr" in obj:
        return _parse_attr(obj, path)
    if not obj:
        raise _fail(path, "empty filter: expected one of all, any, not, tag, attr")
    unknown = sorted(str(key) for key in obj if key not in _COMBINATORS)
    if unknown:
        raise _fail(path, f"unknown operator {unknown[0]!r}")
    if len(obj) > 1:
        keys = ", ".join(sorted(obj))
        raise _fail(path, f"an object holds exactly one of all, any, not, tag, attr; got {keys}")
    key, value = next(iter(obj.items()))
    if key == "tag":
        return HasTag(_name(value, path, "tag"))
    if key == "not":
        return Not(_parse(value, _join(path, "not"), depth + 1))
    if not isinstance(value, list) or not value:
        raise _fail(_join(path, key), "must be a non-empty list of filters")
    parts = tuple(
        _parse(item, _join(path, f"{key}[{index}]"), depth + 1) for index, item in enumerate(value)
    )
    return AllOf(parts) if key == "all" else AnyOf(parts)


def _parse_attr(obj: Mapping[Any, Any], path: str) -> Audience:
    name = _name(obj["attr"], path, "attr")
    operators = [key for key in obj if key != "attr"]
    unknown = sorted(str(key) for key in operators if key not in _OPERATORS)
    if unknown:
        raise _fail(path, f"unknown operator {unknown[0]!r}")
    if not operators:
        raise _fail(path, f"attr {name!r} needs one operator: eq, in or exists")
    if len(operators) > 1:
        raise _fail(path, f"attr {name!r} has more than one operator: {', '.join(operators)}")
    operator = operators[0]
    value = obj[operator]
    if operator == "eq":
        return AttrEquals(name, _scalar(value, _join(path, "eq")))
    if operator == "in":
        if not isinstance(value, list) or not value:
            raise _fail(_join(path, "in"), "must be a non-empty list of values")
        return AttrIn(
            name, tuple(_scalar(item, _join(path, f"in[{i}]")) for i, item in enumerate(value))
        )
    if not isinstance(value, bool):
        raise _fail(_join(path, "exists"), f"must be true or false, got {_json_type(value)}")
    return AttrExists(name, value)


def _name(value: object, path: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(_join(path, key), "must be a non-empty string")
    return value


def _scalar(value: object, path: str) -> Scalar:
    if value is None:
        raise _fail(path, "null matches nothing; use exists: false for a missing value")
    if isinstance(value, str | int | float | bool):
        return value
    raise _fail(path, f"must be a string, number or boolean, got {_json_type(value)}")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
