"""The stream's fast validation path (streams/validation.py) is never looser than the
JSON Schema: whatever it calls *surely valid*, jsonschema accepts too.

Records are drawn from each schema's own properties, then spoiled (a key dropped or
added, a value replaced by any JSON value or by a near miss: one character more, a
trailing newline, a time a little out of range); synthetic schemas mixing the keywords
the fast path knows with ones it does not check the same rule beyond our five."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

import schemas
from streams import validation

FAST = ("engagement.v1", "identity.v1", "touch.v1")
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
#: RFC 3339 date-times: right ones, and ones a little wrong (a part out of range, a
#: lower-case or missing separator, too many fraction digits, an offset without a colon,
#: a trailing newline).
RIGHT_TIMES = st.builds(
    "{}{}{}".format,
    st.datetimes().map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%S")),
    st.sampled_from(["", ".5", ".123456"]),
    st.sampled_from(["Z", "+00:00", "-05:30", "+23:59"]),
)
WRONG_TIMES = st.builds(
    "{:04d}-{:02d}-{:02d}{}{:02d}:{:02d}:{:02d}{}{}{}".format,
    st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.sampled_from("TTTt "),
    st.integers(0, 24), st.integers(0, 60), st.integers(0, 61),
    st.sampled_from(["", "", ".5", ".123456", ".1234567", "."]),
    st.sampled_from(["Z", "Z", "+00:00", "-05:30", "+23:59", "+24:00", "-00:60", "z", "", "+0100"]),
    st.sampled_from(["", "", "", "\n", "x"]),
)  # fmt: skip
DATE_TIMES = RIGHT_TIMES | WRONG_TIMES
PERSON = "p" + "0123456789abcdef" * 2
VALID = {
    "engagement.v1": {
        "event_id": "e1", "type": "page.view", "occurred_at": "2017-08-14T10:00:00Z",
        "person": PERSON, "channel": "email", "bot": False, "properties": {"path": "/a"},
    },
    "touch.v1": {
        "touch_id": "t1", "person": PERSON, "campaign_id": "c1", "kind": "email",
        "occurred_at": "2017-08-14T10:00:00.123+02:00", "channel": None,
    },
    "identity.v1": {
        "kind": "identity.merged", "merge_id": "m1", "person": PERSON,
        "visitor": "p" + "1" * 32, "occurred_at": "2017-08-14T10:00:00Z",
    },
}  # fmt: skip


def value_of(spec: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values a property of this spec may take, mostly valid."""
    if "enum" in spec:
        return st.sampled_from(spec["enum"])
    if "const" in spec:
        return st.just(spec["const"]) | ANY_JSON
    kinds = spec.get("type") or []
    kinds = [kinds] if isinstance(kinds, str) else kinds
    options = [
        {
            "null": st.none(),
            "boolean": st.booleans(),
            "object": st.dictionaries(st.text(max_size=5), ANY_JSON, max_size=3),
            "integer": st.integers(),
            "number": st.floats(allow_nan=False, allow_infinity=False),
            "array": st.lists(st.dictionaries(st.text(max_size=5), ANY_JSON, max_size=2)),
        }.get(kind, st.nothing())
        for kind in kinds
    ]
    if "string" in kinds:
        if "pattern" in spec:
            options.append(st.from_regex(spec["pattern"]))
        elif spec.get("format") == "date-time":
            options.append(DATE_TIMES)
        else:
            options.append(lengths(spec.get("minLength", 0), spec.get("maxLength", 30)))
    return st.one_of(options) if options else ANY_JSON


def lengths(lo: int, hi: int) -> st.SearchStrategy[str]:
    """Strings of any length from ``lo - 1`` to ``hi + 1``, the four bounds often."""
    bounds = st.sampled_from([max(lo - 1, 0), lo, hi, hi + 1])
    return (bounds | st.integers(lo, max(lo, hi))).flatmap(
        lambda n: st.text(min_size=n, max_size=n)
    )


def near_miss(value: Any) -> st.SearchStrategy[Any]:
    """A value next to ``value``: one that a careless check might still accept."""
    if isinstance(value, str):
        return st.sampled_from(
            [value + "x", value + "\n", value[:-1], value.upper(), value.lower(), " " + value]
        )
    return ANY_JSON


@st.composite
def records(draw: st.DrawFn, schema: dict[str, Any]) -> Any:
    """A record built from ``schema``'s properties, then spoiled or not."""
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))
    record = {
        key: draw(value_of(spec))
        for key, spec in properties.items()
        if key in required or draw(st.booleans())
    }
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        how = draw(st.sampled_from(["drop", "add", "replace", "near"]))
        keys = sorted(record)
        if how == "add":
            record[draw(st.text(max_size=10))] = draw(ANY_JSON)
        elif keys:
            key = draw(st.sampled_from(keys))
            if how == "drop":
                del record[key]
            else:
                record[key] = draw(ANY_JSON if how == "replace" else near_miss(record[key]))
    return draw(st.sampled_from([record] * 7 + [[record], None, "record"]))


def verdicts(schema: dict[str, Any], record: Any) -> tuple[bool, bool]:
    """(the fast path is sure it is valid, jsonschema finds it valid)."""
    checker = Draft202012Validator(schema, format_checker=FormatChecker())
    return validation.compile_check(schema)(record), checker.is_valid(record)


def test_the_fast_path_is_used_for_the_stream_schemas():
    for name in FAST:
        assert validation.surely_valid(name, VALID[name])
        assert validation.errors_of(name, VALID[name]) is None


@pytest.mark.parametrize("name", FAST)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_never_surely_valid_when_the_schema_refuses(name, data):
    record = data.draw(records(schemas.load(name)))
    sure = validation.surely_valid(name, record)
    event("surely valid" if sure else "not sure")
    if sure:
        assert schemas.errors_of(name, record) is None
    assert validation.errors_of(name, record) == schemas.errors_of(name, record)


@pytest.mark.parametrize("name", sorted(set(schemas.NAMES) - set(FAST)))
def test_schemas_with_keywords_it_does_not_check_get_no_fast_path(name):
    assert validation.compile_check(schemas.load(name)) is validation._not_sure


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        ({"type": "string", "format": "date-time"}, "2017-08-14T10:00:60Z"),  # leap second
        ({"type": "string", "format": "date-time"}, "2017-08-14t10:00:00z"),
        ({"type": "string", "format": "date-time"}, "2017-08-14T10:00:00Z\n"),
        ({"type": "string", "format": "date-time"}, "٢٠١٧-08-14T10:00:00Z"),  # Arabic digits
        ({"type": "string", "format": "email"}, "a@b.c"),  # a format it does not check
        ({"type": "integer"}, 3),
        ({"enum": ["a", 1]}, "a"),
    ],
)
def test_what_it_is_unsure_of_goes_to_jsonschema(spec, value):
    schema = {"type": "object", "properties": {"f": spec}, "additionalProperties": False}
    sure, _ = verdicts(schema, {"f": value})
    assert not sure  # not a verdict of invalid: the real validator then decides


PATTERNS = ["^p[0-9a-f]{32}$", "^[a-z0-9_.-]{1,100}$", "[0-9]", "^a", "b$"]
FIELD_SPECS = st.one_of(
    st.fixed_dictionaries(
        {"enum": st.lists(st.sampled_from(["a", "b", "", None, 1, True]), min_size=1, max_size=3)}
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["string", "null", "object", "boolean", "integer"])
         | st.lists(st.sampled_from(["string", "null", "object", "array"]), min_size=1,
                    max_size=2, unique=True)},
        optional={
            "minLength": st.integers(0, 3), "maxLength": st.integers(0, 40),
            "pattern": st.sampled_from(PATTERNS),
            "format": st.sampled_from(["date-time", "date-time", "email"]),
            "minimum": st.just(1), "description": st.just("d"),
        },
    ),
)  # fmt: skip
SCHEMAS = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["object", "object", "array"]),
        "properties": st.dictionaries(st.sampled_from("abcde"), FIELD_SPECS, max_size=4),
    },
    optional={"additionalProperties": st.sampled_from([False, False, True])},
).map(lambda s: s | {"required": sorted(s["properties"])[:2]})


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_schema_of_these_keywords_is_never_looser(data):
    schema = data.draw(SCHEMAS)
    record = data.draw(records(schema))
    sure, valid = verdicts(schema, record)
    event("surely valid" if sure else "not sure")
    assert valid or not sure, (schema, record)
