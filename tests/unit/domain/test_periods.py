from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.domain import (
    PeriodKind,
    add_months,
    next_period,
    parse_period,
    period_bounds,
    period_label,
    period_of,
    period_range,
    period_start,
)

MOMENT = datetime(2017, 8, 16, 10, 0, tzinfo=UTC)  # a Wednesday


def test_labels_of_each_kind() -> None:
    assert period_of(MOMENT, PeriodKind.MONTH) == "2017-08"
    assert period_of(MOMENT, PeriodKind.WEEK) == "2017-08-14"
    assert period_of(MOMENT, PeriodKind.DAY) == "2017-08-16"
    assert period_of(MOMENT, "month") == "2017-08"


def test_time_zone_moves_the_day_and_month() -> None:
    late = datetime(2017, 8, 31, 23, 30, tzinfo=UTC)
    assert period_of(late, "month") == "2017-08"
    assert period_of(late, "month", tz="Europe/Paris") == "2017-09"
    assert period_of(late, "day", tz="America/New_York") == "2017-08-31"
    assert period_of(datetime(2017, 9, 1, 2, tzinfo=UTC), "day", "America/New_York") == (
        "2017-08-31"
    )


@pytest.mark.parametrize(
    ("day", "week"),
    [
        (date(2021, 1, 1), "2020-12-28"),  # Friday of ISO week 2020-W53
        (date(2021, 1, 3), "2020-12-28"),  # Sunday ends it
        (date(2021, 1, 4), "2021-01-04"),
        (date(2019, 12, 31), "2019-12-30"),  # ISO 2020-W01 starts in 2019
        (date(2024, 12, 30), "2024-12-30"),
        (date(2025, 1, 5), "2024-12-30"),
    ],
)
def test_week_labels_across_year_boundaries(day: date, week: str) -> None:
    assert period_label(day, PeriodKind.WEEK) == week
    assert date.fromisoformat(week).isocalendar()[:2] == day.isocalendar()[:2]


def test_week_range_across_new_year() -> None:
    assert period_range("2020-12-21", "2021-01-11", "week") == [
        "2020-12-21",
        "2020-12-28",
        "2021-01-04",
        "2021-01-11",
    ]


def test_month_range_across_new_year_and_single() -> None:
    assert period_range("2017-11", "2018-02", "month") == [
        "2017-11",
        "2017-12",
        "2018-01",
        "2018-02",
    ]
    assert period_range("2017-08", "2017-08", "month") == ["2017-08"]
    assert len(period_range("2017-08", "2018-08", "month")) == 13


def test_day_range_through_leap_day() -> None:
    assert period_range("2020-02-28", "2020-03-01", "day") == [
        "2020-02-28",
        "2020-02-29",
        "2020-03-01",
    ]


@pytest.mark.parametrize(
    ("label", "kind", "message"),
    [
        ("2017-8", "month", "YYYY-MM"),
        ("2017-13", "month", "not a real month"),
        ("2017-08-01", "month", "YYYY-MM"),
        ("2017-08", "day", "YYYY-MM-DD"),
        ("2017-02-30", "day", "not a real date"),
        (
            "2017-08-15",
            "week",
            "Monday of its week: '2017-08-15' is a Tuesday .its week is '2017-08-14'",
        ),
        ("2017-08", "year", "month, week or day"),
        ("２０１７-08", "month", "YYYY-MM"),
    ],
)
def test_parse_period_errors(label: str, kind: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_period(label, kind)


def test_range_backwards_is_refused() -> None:
    with pytest.raises(ValueError, match="starts after it ends"):
        period_range("2018-01", "2017-12", "month")


def test_period_start_and_bounds() -> None:
    assert period_start("2017-08", "month") == datetime(2017, 8, 1, tzinfo=UTC)
    paris = period_start("2017-08-14", "week", "Europe/Paris")
    assert paris == datetime(2017, 8, 13, 22, tzinfo=UTC)
    assert paris.tzinfo == ZoneInfo("Europe/Paris")
    start, end = period_bounds("2017-12", "month")
    assert (start, end) == (datetime(2017, 12, 1, tzinfo=UTC), datetime(2018, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="unknown time zone"):
        period_start("2017-08", "month", "Mars/Olympus")


def test_naive_moment_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        period_of(datetime(2017, 8, 1), "month")


moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)
zones = st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"])
kinds = st.sampled_from(list(PeriodKind))


@given(moments, kinds, zones)
def test_moment_lies_within_its_period(moment: datetime, kind: PeriodKind, tz: str) -> None:
    label = period_of(moment, kind, tz)
    start, end = period_bounds(label, kind, tz)
    assert start <= moment < end
    assert period_label(parse_period(label, kind), kind) == label
    assert period_of(start, kind, tz) == label


@given(moments, kinds, st.integers(min_value=0, max_value=60))
def test_range_length_counts_every_period(moment: datetime, kind: PeriodKind, n: int) -> None:
    first = period_of(moment, kind)
    labels = [first]
    for _ in range(n):
        labels.append(next_period(labels[-1], kind))
    assert period_range(first, labels[-1], kind) == labels
    assert labels == sorted(labels)
    assert len(set(labels)) == n + 1


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 1, 1)))
def test_week_label_is_the_iso_monday(day: date) -> None:
    monday = date.fromisoformat(period_label(day, "week"))
    assert monday.weekday() == 0
    assert timedelta(0) <= day - monday < timedelta(days=7)


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2025, 1, 31), 1, date(2025, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2025, 3, 31), -1, date(2025, 2, 28)),
        (date(2024, 3, 31), -1, date(2024, 2, 29)),
        (date(2025, 3, 1), -1, date(2025, 2, 1)),
        (date(2024, 3, 1), -1, date(2024, 2, 1)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2025, 2, 28), -11, date(2024, 3, 28)),
        (date(2024, 12, 31), 1, date(2025, 1, 31)),
        (date(2025, 1, 31), -1, date(2024, 12, 31)),
        (date(2024, 12, 31), -10, date(2024, 2, 29)),
        (date(2025, 3, 1), -11, date(2024, 4, 1)),
    ],
)
def test_add_months_steps_calendar_months_on_edge_days(day, months, expected) -> None:
    assert add_months(day, months) == expected


def test_add_months_keeps_the_time_and_zone() -> None:
    moment = datetime(2024, 3, 31, 12, 30, tzinfo=UTC)
    assert add_months(moment, -1) == datetime(2024, 2, 29, 12, 30, tzinfo=UTC)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)))
def test_eleven_months_back_are_eleven_distinct_consecutive_months(day: date) -> None:
    labels = [period_label(add_months(day, -back), "month") for back in range(11, -1, -1)]
    assert labels == period_range(labels[0], labels[-1], "month")
