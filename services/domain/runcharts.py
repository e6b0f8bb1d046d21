"""Run-chart rules, the quality-improvement habit of ImproveCareNow.

A run chart plots a monthly series with its median line. Two rules (IHI, Provost &
Murray) flag non-random change:

* **shift**: 6 or more consecutive points all above, or all below, the median. Points
  exactly on the median are skipped: they neither break a run nor count towards it.
* **trend**: 5 or more consecutive points all going up, or all going down. When
  consecutive values are equal, only one of them is counted: like values neither make
  nor break a trend. So ``1, 2, 2, 3, 4, 5`` is a trend of 5 points (4 rises).

Signals are returned as inclusive ``(start, end)`` index ranges over the input, each
the whole maximal run, from its first to its last counted point.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

__all__ = [
    "SHIFT_MIN_POINTS",
    "TREND_MIN_POINTS",
    "growth_factor",
    "median",
    "shift_signals",
    "trend_signals",
]

SHIFT_MIN_POINTS = 6
TREND_MIN_POINTS = 5


def median(values: Sequence[float]) -> float:
    """The median of the series (the centre line of a run chart)."""
    if not values:
        raise ValueError("median of an empty series")
    return float(statistics.median(values))


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def shift_signals(
    values: Sequence[float], center: float, min_points: int = SHIFT_MIN_POINTS
) -> list[tuple[int, int]]:
    """Runs of ``min_points`` or more points on one side of ``center``."""
    if min_points < 1:
        raise ValueError(f"min_points must be at least 1, got {min_points}")
    signals: list[tuple[int, int]] = []
    side, start, end, count = 0, 0, 0, 0
    for index, value in enumerate(values):
        here = _sign(value - center)
        if here == 0:
            continue  # on the line: neither breaks nor extends the run
        if here != side:
            if count >= min_points:
                signals.append((start, end))
            side, start, count = here, index, 0
        end = index
        count += 1
    if count >= min_points:
        signals.append((start, end))
    return signals


def trend_signals(
    values: Sequence[float], min_points: int = TREND_MIN_POINTS
) -> list[tuple[int, int]]:
    """Runs of ``min_points`` or more points each higher (or each lower) than the last.

    Equal neighbours count once; a run turning from rising to falling shares its peak
    point with the next run.
    """
    if min_points < 2:
        raise ValueError(f"min_points must be at least 2, got {min_points}")
    signals: list[tuple[int, int]] = []
    direction, start, end, steps = 0, 0, 0, 0
    for index in range(1, len(values)):
        step = _sign(values[index] - values[index - 1])
        if step == 0:
            continue  # like values neither make nor break a trend
        if step != direction:
            if steps + 1 >= min_points:
                signals.append((start, end))
            direction, start, steps = step, index - 1, 0
        end = index
        steps += 1
    if steps + 1 >= min_points:
        signals.append((start, end))
    return signals


def growth_factor(baseline_value: float, last_value: float) -> float | None:
    """``last_value / baseline_value``, or ``None`` when the baseline is 0.

    Exact: callers round for display (the published result reads x2.7, x4.1, x4.0).
    """
    if baseline_value == 0:
        return None
    return last_value / baseline_value
