"""Every period, window and time-zone computation works for every moment an event may
carry (services/domain/events.py: EARLIEST..LATEST), in every time zone: the range the API
enforces is one the stream can compute with (issue 13: year 1 in New York killed it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import given, settings
from hypothesis import strategies as st

from services.domain import PeriodKind, next_period, period_bounds, period_of
from services.domain.events import EARLIEST, LATEST, format_timestamp, parse_timestamp

ZONES = sorted(available_timezones())
LONGEST_WINDOW = timedelta(days=3650)  # GET /api/v1/attribution?window_days= allows 3650


def computations(moment: datetime, zone: str) -> None:
    """What the sink, the recount and the reports do with an event's time."""
    local = moment.astimezone(ZoneInfo(zone))
    for shifted in (moment - LONGEST_WINDOW, moment + LONGEST_WINDOW):
        shifted.astimezone(ZoneInfo(zone))
    for kind in PeriodKind:
        label = period_of(moment, kind, zone)
        start, end = period_bounds(label, kind, zone)
        assert start < end and start.date() <= local.date()
        next_period(label, kind)
    assert parse_timestamp(format_timestamp(moment)) == moment


def test_both_ends_of_the_range_in_every_zone() -> None:
    last = LATEST - timedelta(microseconds=1)
    assert len(ZONES) > 300
    for zone in ZONES:
        computations(EARLIEST, zone)
        computations(last, zone)


@settings(max_examples=300, derandomize=True)
@given(
    moment=st.datetimes(
        min_value=EARLIEST.replace(tzinfo=None),
        max_value=(LATEST - timedelta(microseconds=1)).replace(tzinfo=None),
        timezones=st.just(UTC),
    ),
    zone=st.sampled_from(ZONES),
)
def test_any_moment_in_the_range_in_any_zone(moment: datetime, zone: str) -> None:
    computations(moment, zone)
