"""p-chart limits worked by hand (Montgomery, Introduction to SQC, ch. 7)."""

import math

import pytest

from services.domain.pcharts import p_chart


def test_limits_follow_each_denominator_and_flag_points_outside() -> None:
    # 4 months, 40 of 400 overall: p = 0.1. Month 3 (n = 100): sigma = 0.03, limits
    # 0.01..0.19, 25/100 = 0.25 is above. Month 4 (n = 100): 1/100 = 0.01 is on the
    # lower limit: inside.
    centre, points = p_chart([7, 7, 25, 1], [100, 100, 100, 100])
    assert centre == pytest.approx(0.1)
    assert points[2].upper == pytest.approx(0.19) and points[2].outside
    assert points[3].lower == pytest.approx(0.01) and not points[3].outside
    assert [p.outside for p in points] == [False, False, True, False]


def test_smaller_denominator_wider_limits_clipped_at_zero() -> None:
    centre, points = p_chart([10, 0], [100, 4])
    assert centre == pytest.approx(10 / 104)
    width = 3 * math.sqrt(centre * (1 - centre) / 4)
    assert points[1].upper == pytest.approx(centre + width)
    assert points[1].lower == 0.0 and not points[1].outside


def test_an_empty_month_has_no_point() -> None:
    _, points = p_chart([0, 3], [0, 10])
    assert points[0].proportion is None and not points[0].outside
    with pytest.raises(ValueError):
        p_chart([5], [4])
