"""Children and guardians, re-consent at 13 and 18, preferences: the pure rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.domain.guardians import (
    TO_GUARDIANS,
    UNDER_13,
    Person,
    age_on,
    birthday,
    child_reason,
    local_day,
    needs_reconsent,
)
from services.domain.preferences import campaign_reason, journey_reason

LEAP = date(2012, 2, 29)


def test_a_leap_day_birthday_is_the_first_of_march_in_a_common_year() -> None:
    assert birthday(LEAP, 13) == date(2025, 3, 1)
    assert birthday(LEAP, 12) == date(2024, 2, 29)
    person = Person(birth_date=LEAP)
    assert age_on(person, date(2025, 2, 28)) == 12
    assert age_on(person, date(2025, 3, 1)) == 13


def test_the_birthday_is_counted_on_the_networks_calendar() -> None:
    # 2024-05-04 23:30 in Los Angeles is already 5 May in UTC, not yet in LA.
    at = datetime(2024, 5, 5, 6, 30, tzinfo=UTC)
    kid = Person(birth_date=date(2011, 5, 5), guardian_consent=False)
    la, utc = local_day(at, "America/Los_Angeles"), local_day(at, "UTC")
    assert (la, utc) == (date(2024, 5, 4), date(2024, 5, 5))
    assert child_reason(kid, la, "America/Los_Angeles") == UNDER_13
    assert child_reason(kid, utc, "UTC") == "needs re-consent: turned 13"


def test_only_a_birth_year_counts_as_the_youngest_age_possible() -> None:
    person = Person(birth_year=2011)
    assert age_on(person, date(2024, 12, 30)) == 12
    assert age_on(person, date(2024, 12, 31)) == 13
    assert age_on(Person(), date(2024, 1, 1)) is None


def test_under_13_needs_a_guardians_consent_and_no_birth_date_is_no_rule() -> None:
    day = date(2024, 3, 1)
    assert child_reason(Person(birth_date=date(2015, 1, 1)), day, "UTC") == UNDER_13
    assert child_reason(Person(date(2015, 1, 1), guardian_consent=True), day, "UTC") is None
    assert child_reason(Person(), day, "UTC") is None
    assert UNDER_13 != TO_GUARDIANS


def test_consent_given_before_13_or_18_lapses_on_that_birthday() -> None:
    born = date(2006, 3, 1)  # 18 on 2024-03-01
    before = datetime(2024, 2, 29, 23, 0, tzinfo=UTC)
    after = datetime(2024, 3, 1, 0, 0, tzinfo=UTC)
    assert needs_reconsent(Person(born, consent_at=before), date(2024, 3, 1), "UTC")
    assert not needs_reconsent(Person(born, consent_at=before), date(2024, 2, 29), "UTC")
    assert not needs_reconsent(Person(born, consent_at=after), date(2024, 3, 1), "UTC")
    assert child_reason(Person(born, consent_at=before), date(2024, 3, 1), "UTC") == (
        "needs re-consent: turned 18"
    )
    assert needs_reconsent(Person(born), date(2024, 3, 1), "UTC")  # no consent time known


@given(st.dates(date(1990, 1, 1), date(2020, 12, 31)), st.integers(0, 30))
def test_age_grows_by_one_on_each_birthday_and_never_between(born: date, years: int) -> None:
    person = Person(birth_date=born)
    day = birthday(born, years)
    assert age_on(person, day) == years
    assert age_on(person, day - timedelta(days=1)) == years - 1


@given(st.dates(date(1990, 1, 1), date(2020, 12, 31)), st.integers(0, 20_000))
def test_a_consent_on_or_after_the_last_threshold_holds(born: date, offset: int) -> None:
    day = born + timedelta(days=offset)
    person = Person(born, consent_at=datetime(day.year, day.month, day.day, tzinfo=UTC))
    assert not needs_reconsent(person, day, "UTC")


def test_preferences_topics_frequency_and_digest() -> None:
    assert campaign_reason(None, [], {"diet"}, False) is None
    assert campaign_reason("as_sent", ["diet"], {"diet"}, False) == "preferences: topics turned off"
    assert campaign_reason("as_sent", ["diet"], {"diet", "school"}, False) is None
    assert campaign_reason("as_sent", ["diet"], set(), False) is None
    assert campaign_reason("monthly_digest", [], set(), False) == "preferences: monthly digest only"
    assert campaign_reason("monthly_digest", [], set(), True) is None
    assert campaign_reason("none", [], set(), True) == "preferences: no emails"
    assert journey_reason("as_sent") is None and journey_reason("monthly_digest")
