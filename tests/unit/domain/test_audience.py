import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.domain import EVERYONE, AudienceError, attribute_value, parse_audience

PARENT_ES: dict[str, Any] = {
    "external_id": "c-1",
    "role": "parent",
    "language": "es",
    "tags": ["newsletter", "diet"],
    "attributes": {"center": "cincinnati", "needs": ["diet", "school"], "age": 12, "vip": True},
}
CLINICIAN_EN: dict[str, Any] = {
    "external_id": "c-2",
    "role": "clinician",
    "language": "en",
    "tags": [],
    "attributes": {"center": "boston", "role": "ignored-when-top-level-set", "vip": 1},
}
BARE: dict[str, Any] = {"external_id": "c-3", "role": None, "attributes": {"role": "patient"}}


def matches(obj: object, contact: dict[str, Any]) -> bool:
    return parse_audience(obj).matches(contact)


def test_contract_example() -> None:
    audience = {"all": [{"attr": "role", "in": ["parent"]}, {"attr": "language", "eq": "es"}]}
    assert matches(audience, PARENT_ES)
    assert not matches(audience, CLINICIAN_EN)


def test_no_filter_matches_everyone() -> None:
    assert parse_audience(None) is EVERYONE
    assert EVERYONE.matches({})
    assert EVERYONE.to_dict() is None


def test_attribute_lookup_order() -> None:
    assert attribute_value(CLINICIAN_EN, "role") == "clinician"
    assert attribute_value(BARE, "role") == "patient"  # top-level unset: attributes
    assert attribute_value(PARENT_ES, "center") == "cincinnati"
    assert attribute_value(PARENT_ES, "missing") is None
    assert attribute_value({}, "role") is None
    assert matches({"attr": "external_id", "eq": "c-2"}, CLINICIAN_EN)


def test_any_not_tag_exists() -> None:
    either = {"any": [{"attr": "center", "eq": "boston"}, {"tag": "diet"}]}
    assert matches(either, PARENT_ES)
    assert matches(either, CLINICIAN_EN)
    assert not matches(either, BARE)
    assert matches({"not": {"tag": "newsletter"}}, CLINICIAN_EN)
    assert not matches({"not": {"tag": "newsletter"}}, PARENT_ES)
    assert not matches({"tag": "newsletter"}, BARE)  # no tags at all
    assert matches({"attr": "age", "exists": True}, PARENT_ES)
    assert matches({"attr": "age", "exists": False}, CLINICIAN_EN)
    assert matches({"attr": "language", "exists": False}, BARE)


def test_list_values_match_any_element() -> None:
    assert matches({"attr": "needs", "eq": "school"}, PARENT_ES)
    assert matches({"attr": "needs", "in": ["sleep", "diet"]}, PARENT_ES)
    assert not matches({"attr": "needs", "in": ["sleep"]}, PARENT_ES)


def test_comparisons_are_exact() -> None:
    assert not matches({"attr": "language", "eq": "ES"}, PARENT_ES)
    assert matches({"attr": "vip", "eq": True}, PARENT_ES)
    assert not matches({"attr": "vip", "eq": True}, CLINICIAN_EN)  # 1 is not true
    assert not matches({"attr": "vip", "eq": 1}, PARENT_ES)
    assert matches({"attr": "age", "in": [12.0, 13]}, PARENT_ES)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"all": [{"tag": "x"}, {"attr": "age", "gt": 3}]}, "all[1]: unknown operator 'gt'"),
        ({"any": [{"not": {"foo": 1}}]}, "any[0].not: unknown operator 'foo'"),
        ({"all": []}, "all: must be a non-empty list of filters"),
        ({"all": {"tag": "x"}}, "all: must be a non-empty list of filters"),
        ({"all": ["role"]}, "all[0]: must be an object, got a string"),
        ([{"tag": "x"}], "audience: must be an object, got a list"),
        ({}, "audience: empty filter"),
        ({"tag": "x", "not": {"tag": "y"}}, "audience: an object holds exactly one of"),
        ({"tag": ""}, "tag: must be a non-empty string"),
        ({"attr": 3, "eq": 1}, "attr: must be a non-empty string"),
        ({"attr": "role"}, "attr 'role' needs one operator"),
        ({"attr": "role", "eq": "a", "in": ["a"]}, "more than one operator: eq, in"),
        ({"attr": "role", "in": []}, "in: must be a non-empty list of values"),
        ({"attr": "role", "in": ["a", ["b"]]}, "in[1]: must be a string, number or boolean"),
        ({"attr": "role", "eq": None}, "eq: null matches nothing; use exists: false"),
        ({"attr": "role", "exists": "yes"}, "exists: must be true or false, got a string"),
        (
            {"not": {"all": [{"any": [{"attr": "a", "eq": {}}]}]}},
            "not.all[0].any[0].eq: must be a string, number or boolean, got an object",
        ),
    ],
)
def test_errors_name_the_path(obj: object, message: str) -> None:
    with pytest.raises(AudienceError, match=re.escape(message)):
        parse_audience(obj)


def test_depth_is_bounded() -> None:
    deep: dict[str, Any] = {"tag": "x"}
    for _ in range(40):
        deep = {"not": deep}
    with pytest.raises(AudienceError, match="nested more than"):
        parse_audience(deep)


leaves = st.one_of(
    st.builds(lambda t: {"tag": t}, st.sampled_from(["diet", "newsletter", "none"])),
    st.builds(
        lambda a, v: {"attr": a, "eq": v},
        st.sampled_from(["role", "language", "center", "needs", "age"]),
        st.sampled_from(["parent", "es", "boston", "diet", 12, True]),
    ),
    st.builds(
        lambda a, vs: {"attr": a, "in": vs},
        st.sampled_from(["role", "center"]),
        st.lists(st.sampled_from(["parent", "clinician", "boston"]), min_size=1, max_size=3),
    ),
    st.builds(
        lambda a, e: {"attr": a, "exists": e}, st.sampled_from(["age", "role"]), st.booleans()
    ),
)
filters = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, inner),
    ),
    max_leaves=10,
)


@given(filters)
def test_round_trip_and_negation(obj: dict[str, Any]) -> None:
    audience = parse_audience(obj)
    assert audience.to_dict() == obj
    assert parse_audience(audience.to_dict()) == audience
    negated = parse_audience({"not": obj})
    for contact in (PARENT_ES, CLINICIAN_EN, BARE):
        assert negated.matches(contact) is not audience.matches(contact)
