"""The demo's run-chart history: one backfilled month for each of the eleven months
before this one, whatever day the demo starts (it used to step back 31 days at a time,
so started on the 1st of a month it skipped the month before)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from services.demo.network import history_months
from services.domain.periods import add_months, period_label, period_of, period_range


def test_every_day_of_two_years_backfills_eleven_consecutive_months() -> None:
    day = datetime(2024, 1, 1, 0, 30, tzinfo=UTC)
    while day.year < 2026:
        months = [period_of(m, "month") for m in history_months(day)]
        last = period_label(add_months(day.date(), -1), "month")
        assert months == period_range(months[0], last, "month"), day
        assert len(months) == 11, day
        day += timedelta(days=1)


def test_a_demo_started_on_march_1st_backfills_february() -> None:
    months = history_months(datetime(2025, 3, 1, 8, tzinfo=UTC))
    assert [m.date() for m in months[-2:]] == [date(2025, 1, 1), date(2025, 2, 1)]
