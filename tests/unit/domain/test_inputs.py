"""services.domain.inputs: JSON parsed at any depth, text SQL can store."""

from __future__ import annotations

import json

import pytest

from services.domain.inputs import NotJSONNumber, parse_json, readable, too_deep, unstorable


def test_json_nested_too_deep_is_a_value_error_not_a_recursion_error():
    with pytest.raises(ValueError, match="nested too deep"):
        parse_json(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize(
    "value", ["a\0", ["ok", "a\0"], {"k\0": 1}, {"k": [{"deep": "\ud800"}]}], ids=repr
)
def test_unstorable_text_is_found_at_any_depth(value):
    assert unstorable(value) == "contains a NUL character or invalid Unicode"


def test_storable_values_pass_and_deep_nesting_does_not_recurse():
    deep: list[object] = ["fine"]
    for _ in range(50_000):
        deep = [deep]
    assert unstorable({"a": ["é", 1, None, True], "b": deep}) is None


@pytest.mark.parametrize(
    ("body", "constant", "where"),
    [
        (b'[{"id": "a", "attributes": {"score": NaN}}]', "NaN", "0.attributes.score"),
        ('{"rule": {"filter": {"attr": "x", "eq": -Infinity}}}', "-Infinity", "rule.filter.eq"),
        (b'{"a": [1, 2, Infinity]}', "Infinity", "a.2"),
        (b"NaN", "NaN", ""),
    ],
)
def test_nan_and_infinity_are_refused_naming_where(body, constant, where):
    """RFC 8259 has neither; ``json.loads`` takes both (PostgreSQL then refuses them)."""
    with pytest.raises(NotJSONNumber) as refused:
        parse_json(body)
    assert (refused.value.constant, refused.value.where) == (constant, where)
    assert f"{constant} is not a number JSON allows" in str(refused.value)


def test_the_words_nan_and_infinity_in_text_are_plain_json():
    assert parse_json(b'{"NaN": "Infinity", "x": 1e308}') == {"NaN": "Infinity", "x": 1e308}


@pytest.mark.parametrize(
    ("body", "shown", "where"),
    [
        (b'{"a": [1.5, 1e400]}', "1e400", "a.1"),
        (b"-1E999", "-1E999", ""),
        (b"[" + b"9" * 400 + b".0]", "9" * 20 + "..." + "9" * 8 + ".0", "0"),
    ],
)
def test_a_number_beyond_a_float_is_refused_naming_where(body, shown, where):
    """Valid JSON, but ``json.loads`` makes it ``inf``: PostgreSQL's json refuses it."""
    with pytest.raises(NotJSONNumber) as refused:
        parse_json(body)
    assert (refused.value.constant, refused.value.where) == (shown, where)
    assert "is too large for a number" in str(refused.value)


def test_json_nested_deeper_than_32_levels_is_too_deep():
    assert too_deep({"a": json.loads("[" * 31 + "]" * 31)}) is None
    assert too_deep({"a": json.loads("[" * 32 + "]" * 32)}) == "nested deeper than 32 levels"


def test_values_stored_too_deep_read_as_their_json_text():
    kept = {"a": json.loads("[" * 32 + "]" * 32), "b": [[1]], "c": "x"}
    assert readable(kept) == {"a": "[" * 32 + "]" * 32, "b": [[1]], "c": "x"}
    fine = {"a": json.loads("[" * 31 + "]" * 31)}
    assert readable(fine) is fine
