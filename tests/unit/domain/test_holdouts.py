"""The holdout assignment: deterministic, stable, uniform; the window; the settings."""

from datetime import UTC, datetime, timedelta

import pytest

from services.domain.holdouts import (
    CONTROL,
    TREATMENT,
    Holdout,
    HoldoutError,
    arm_of,
    assignment_unit,
    converted,
    window_closed,
)

KEY = b"holdout-test-key-0123456789abcdef"
T0 = datetime(2024, 3, 4, tzinfo=UTC)


def test_the_same_person_lands_in_the_same_arm_and_experiments_differ() -> None:
    unit = assignment_unit(KEY, "campaign:c1", "p1")
    assert unit == assignment_unit(KEY, "campaign:c1", "p1") and 0 <= unit < 1
    assert unit != assignment_unit(KEY, "campaign:c2", "p1")
    assert unit != assignment_unit(b"another-key", "campaign:c1", "p1")
    with pytest.raises(ValueError):
        assignment_unit(b"", "campaign:c1", "p1")


def test_about_the_share_is_held_out() -> None:
    arms = [arm_of(assignment_unit(KEY, "campaign:c1", f"p{i}"), 0.2) for i in range(5000)]
    assert 0.18 < arms.count(CONTROL) / 5000 < 0.22
    assert set(arms) == {CONTROL, TREATMENT}


def test_the_window_is_open_at_the_start_and_closed_at_the_end() -> None:
    window = timedelta(days=30)
    assert not converted(T0, T0, window)  # at the assignment itself: not after it
    assert converted(T0, T0 + window, window)
    assert not converted(T0, T0 + window + timedelta(seconds=1), window)
    assert not window_closed(None, window, T0)
    assert window_closed(T0, window, T0 + window) and not window_closed(T0, window, T0)


@pytest.mark.parametrize(("share", "days"), [(0, 30), (0.51, 30), (0.2, 0), (0.2, 366)])
def test_bad_holdouts_are_refused(share: float, days: int) -> None:
    with pytest.raises(HoldoutError):
        Holdout(share, days)
