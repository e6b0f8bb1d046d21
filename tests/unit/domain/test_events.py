from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.domain import EventError, NormalisedEvent, check_event, format_timestamp

NOW = datetime(2017, 8, 31, 12, 0, tzinfo=UTC)


def event(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": "e-1",
        "type": "resource.view",
        "occurred_at": "2017-08-14T10:00:00Z",
        "person_ref": "ext-42",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def test_minimal_event() -> None:
    checked = check_event(event(), NOW)
    assert checked == NormalisedEvent(
        event_id="e-1",
        type="resource.view",
        occurred_at=datetime(2017, 8, 14, 10, tzinfo=UTC),
        person_ref="ext-42",
    )
    assert checked.properties == {}
    assert checked.properties_json == "{}"


def test_full_event_with_offset_is_normalised_to_utc() -> None:
    raw = event(
        occurred_at="2017-08-14T12:30:00.250+02:00",
        person_ref="v:abc",
        campaign_id="camp-1",
        channel="toolkit",
        messenger_id="m-1",
        resource_id="r-1",
        properties={"topic": "diet", "n": [1, 2], "ünï": "çødé"},
    )
    checked = check_event(raw, NOW)
    assert checked.occurred_at == datetime(2017, 8, 14, 10, 30, 0, 250_000, tzinfo=UTC)
    assert checked.occurred_at.tzinfo is UTC
    assert checked.channel == "toolkit"
    assert checked.properties == raw["properties"]
    assert checked.properties is not raw["properties"]
    assert checked.to_dict()["occurred_at"] == "2017-08-14T10:30:00.250000Z"
    assert check_event(checked.to_dict(), NOW) == checked


def test_optional_fields_may_be_null_and_lowercase_t_z_accepted() -> None:
    checked = check_event(
        event(channel=None, properties=None, occurred_at="2017-08-14t10:00:00z"), NOW
    )
    assert checked.channel is None
    assert checked.occurred_at == datetime(2017, 8, 14, 10, tzinfo=UTC)


def test_future_limit_is_five_minutes() -> None:
    assert check_event(event(occurred_at=format_timestamp(NOW + timedelta(minutes=5))), NOW)
    with pytest.raises(EventError, match="^occurred_at: more than 5 minutes in the future$"):
        check_event(event(occurred_at=format_timestamp(NOW + timedelta(minutes=5, seconds=1))), NOW)
    backfill = check_event(event(occurred_at="2001-01-01T00:00:00Z"), NOW)
    assert backfill.occurred_at.year == 2001


def test_properties_limit_is_4096_bytes_compact() -> None:
    filler = 4096 - len('{"k":""}')
    assert check_event(event(properties={"k": "x" * filler}), NOW)
    with pytest.raises(EventError, match="properties: 4097 bytes serialised"):
        check_event(event(properties={"k": "x" * (filler + 1)}), NOW)
    # multi-byte characters count in bytes
    with pytest.raises(EventError, match="properties"):
        check_event(event(properties={"k": "é" * 2048}), NOW)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"event_id": ...}, "event_id: is required"),
        ({"person_ref": None}, "person_ref: is required"),
        ({"event_id": ""}, "event_id: must not be empty"),
        ({"event_id": 12}, "event_id: must be a string"),
        ({"event_id": "x" * 101}, "event_id: longer than 100 characters"),
        ({"type": "Resource.View"}, "type: may hold only"),
        ({"type": "resource view"}, "type: may hold only"),
        ({"type": "r" * 101}, "type: longer than 100 characters"),
        (
            {"occurred_at": "2017-08-14T10:00:00"},
            "occurred_at: must be an RFC 3339 date-time with a time zone",
        ),
        ({"occurred_at": "2017-08-14"}, "occurred_at: must be an RFC 3339"),
        ({"occurred_at": "2017-08-14T10:00:00+0200"}, "occurred_at: must be an RFC 3339"),
        ({"occurred_at": 1502704800}, "occurred_at: must be an RFC 3339"),
        (
            {"occurred_at": "2017-02-30T10:00:00Z"},
            "occurred_at: '2017-02-30T10:00:00Z' is not a real",
        ),
        ({"person_ref": "x" * 201}, "person_ref: longer than 200 characters"),
        ({"person_ref": "   "}, "person_ref: must not be blank"),
        ({"channel": "sms"}, "channel: must be one of email, social, toolkit, web"),
        ({"campaign_id": ""}, "campaign_id: must not be empty"),
        ({"resource_id": "r" * 101}, "resource_id: longer than 100 characters"),
        ({"messenger_id": 5}, "messenger_id: must be a string"),
        ({"properties": ["a"]}, "properties: must be an object"),
        ({"properties": {"x": float("nan")}}, "properties: must be plain JSON"),
        ({"extra": 1}, "extra: unknown field"),
    ],
)
def test_errors_name_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(EventError, match=message.replace("(", r"\(")) as caught:
        check_event(event(**changes), NOW)
    assert str(caught.value).split(":")[0] == caught.value.field


def test_not_an_object_and_naive_now() -> None:
    with pytest.raises(EventError, match="event: must be an object"):
        check_event(["x"], NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        check_event(event(), datetime(2017, 8, 31))


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(2017, 8, 31, 12, 5),
        timezones=st.sampled_from([UTC]),
    ),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_any_offset_round_trips_to_the_same_instant(moment: datetime, offset_minutes: int) -> None:
    from datetime import timezone

    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    checked = check_event(event(occurred_at=local.isoformat()), NOW)
    assert checked.occurred_at == moment
    assert checked.occurred_at.utcoffset() == timedelta(0)


def nested(depth: int) -> dict[str, Any]:
    """``properties`` whose objects nest ``depth`` levels (``{}`` is one)."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_properties_nest_at_most_32_levels() -> None:
    assert check_event(event(properties=nested(32)), NOW)
    for depth in (33, 500):  # 500 deep is 3.5 KB: under the size limit, past the worker's
        with pytest.raises(EventError, match="^properties: nested deeper than 32 levels$"):
            check_event(event(properties=nested(depth)), NOW)
    with pytest.raises(EventError, match="nested deeper"):
        check_event(
            event(
                properties={"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
            ),
            NOW,
        )


@pytest.mark.parametrize(
    "moment",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC: was an OverflowError (500)
        "9999-12-31T23:59:59-14:00",
        "1899-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
    ],
)
def test_times_outside_the_supported_range_are_refused(moment: str) -> None:
    later = datetime(2300, 1, 1, tzinfo=UTC)  # so that "in the future" does not answer first
    with pytest.raises(EventError, match="^occurred_at: .* is outside the supported range"):
        check_event(event(occurred_at=moment), later)


def test_the_range_edges_are_accepted() -> None:
    later = datetime(2300, 1, 1, tzinfo=UTC)
    assert check_event(event(occurred_at="1900-01-01T00:00:00Z"), later)
    assert check_event(event(occurred_at="2199-12-31T23:59:59.999999Z"), later)


@pytest.mark.parametrize("text", ["\\u0000", "a\\\\\\u0000", "\\\\u0000", "\\u00000"], ids=repr)
def test_the_text_backslash_u0000_in_properties_is_kept(text: str) -> None:
    """Six characters (or more backslashes), not a NUL: kept as given."""
    checked = check_event(event(properties={"q": text, text: 1}), NOW)
    assert checked.properties == {"q": text, text: 1}


@pytest.mark.parametrize("text", ["\x00", "a\\\x00", "\\\\\x00", "\\u0000\x00"], ids=repr)
def test_a_real_nul_in_properties_is_refused_after_any_backslashes(text: str) -> None:
    for properties in ({"q": text}, {text: 1}, {"q": [{"deep": text}]}):
        with pytest.raises(EventError, match="^properties: must not contain NUL characters$"):
            check_event(event(properties=properties), NOW)


@given(st.text(alphabet="\\u0\x00", max_size=12))
def test_properties_are_refused_exactly_when_a_string_holds_a_nul(text: str) -> None:
    try:
        check_event(event(properties={"q": text}), NOW)
    except EventError:
        assert "\x00" in text
    else:
        assert "\x00" not in text
