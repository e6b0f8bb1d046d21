"""services.domain.inputs: JSON parsed at any depth, text SQL can store."""

from __future__ import annotations

import pytest

from services.domain.inputs import parse_json, unstorable


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
