import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.domain import growth_factor, median, shift_signals, trend_signals


def test_median() -> None:
    assert median([3, 1, 2]) == 2.0
    assert median([1, 2, 3, 10]) == 2.5
    with pytest.raises(ValueError, match="empty"):
        median([])


def test_six_above_is_a_shift_five_is_not() -> None:
    assert shift_signals([5, 5, 5, 5, 5, 5], center=3) == [(0, 5)]
    assert shift_signals([5, 5, 5, 5, 5, 1], center=3) == []
    assert shift_signals([1, 1, 1, 1, 1, 1, 1, 9], center=3) == [(0, 6)]


def test_points_on_the_median_neither_break_nor_extend_a_shift() -> None:
    # five above, one on the line, one above: six counted points, a shift.
    values = [4, 4, 4, 3, 4, 4, 4]
    assert shift_signals(values, center=3) == [(0, 6)]
    # five above with points on the line around them: not six, no shift.
    assert shift_signals([3, 4, 4, 3, 4, 4, 4, 3], center=3) == []
    # the range runs from the first to the last counted point, not the line points.
    assert shift_signals([3, 4, 4, 4, 3, 4, 4, 4, 3], center=3) == [(1, 7)]


def test_two_shifts_either_side() -> None:
    values = [1] * 6 + [9] * 6  # median 5
    assert shift_signals(values, center=median(values)) == [(0, 5), (6, 11)]


def test_five_points_up_is_a_trend() -> None:
    assert trend_signals([1, 2, 3, 4, 5]) == [(0, 4)]
    assert trend_signals([1, 2, 3, 4]) == []
    assert trend_signals([9, 7, 5, 3, 1, 2]) == [(0, 4)]


def test_like_values_neither_make_nor_break_a_trend() -> None:
    assert trend_signals([1, 2, 2, 3, 4, 5]) == [(0, 5)]
    assert trend_signals([1, 2, 2, 3, 4]) == []  # 4 distinct rising points only
    assert trend_signals([1, 1, 2, 3, 4, 5, 5]) == [(1, 5)]


def test_up_then_down_share_the_peak() -> None:
    values = [1, 2, 3, 4, 5, 4, 3, 2, 1]
    assert trend_signals(values) == [(0, 4), (4, 8)]
    assert trend_signals([1, 2, 3, 4, 5, 5, 4, 3, 2, 1]) == [(0, 4), (5, 9)]


def test_zigzag_has_no_signals() -> None:
    values = [1, 3, 2, 4, 3, 5, 4, 6]
    assert trend_signals(values) == []
    assert shift_signals(values, median(values)) == []


def test_min_points_are_checked() -> None:
    with pytest.raises(ValueError):
        trend_signals([1, 2], min_points=1)
    with pytest.raises(ValueError):
        shift_signals([1, 2], center=1, min_points=0)


def test_growth_factor() -> None:
    assert growth_factor(100, 400) == 4.0
    assert growth_factor(10, 27) == pytest.approx(2.7)
    assert growth_factor(0, 5) is None
    assert growth_factor(5, 0) == 0.0


series = st.lists(st.integers(min_value=0, max_value=6), max_size=40)


@given(series)
def test_shift_ranges_are_one_sided_and_long_enough(values: list[int]) -> None:
    if not values:
        assert shift_signals(values, 0) == []
        return
    center = median(values)
    previous_end = -1
    for start, end in shift_signals(values, center):
        assert previous_end < start <= end
        counted = [v for v in values[start : end + 1] if v != center]
        assert len(counted) >= 6
        assert all(v > center for v in counted) or all(v < center for v in counted)
        assert values[start] != center and values[end] != center
        previous_end = end


@given(series)
def test_trend_ranges_are_monotone_and_long_enough(values: list[int]) -> None:
    for start, end in trend_signals(values):
        window = values[start : end + 1]
        distinct = [v for i, v in enumerate(window) if i == 0 or v != window[i - 1]]
        assert len(distinct) >= 5
        assert distinct == sorted(distinct) or distinct == sorted(distinct, reverse=True)


@given(st.lists(st.integers(min_value=-50, max_value=50), min_size=5, max_size=30, unique=True))
def test_strictly_sorted_series_is_one_trend(values: list[int]) -> None:
    assert trend_signals(sorted(values)) == [(0, len(values) - 1)]
    assert trend_signals(sorted(values, reverse=True)) == [(0, len(values) - 1)]
