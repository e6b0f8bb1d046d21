"""Runs rules of a run chart: too few or too many runs (IHI) and the Anhøj rules.

A **run** is a maximal sequence of consecutive points on one side of the median; points
on the median are not *useful observations*: they neither break a run nor count.
A **crossing** is a change of side between two useful observations (crossings = runs - 1).

* **IHI runs rule** (Perla, Provost & Murray, BMJ Qual Saf 2011;20:46-51, Table 1; from
  Swed & Eisenhart, Ann Math Stat 1943;14:66-87): with 10 to 60 useful observations the
  number of runs should lie within the table's limits; fewer is ``too_few_runs``, more
  is ``too_many_runs``. Outside 10-60 the rule is not applied.
* **Anhøj rules** (Anhøj & Olesen, PLoS One 2014;9(11):e113825): the longest run is
  longer than ``round(log2 N) + 3`` (``longest_run``), or the number of crossings is
  below the 5% quantile of Binomial(N - 1, 0.5) (``few_crossings``), N the number of
  useful observations. The quantile is computed by the caller (the domain stays
  standard library only: see ``services.analytics.stats.crossings_limit``).

Signals are ``(rule, start, end)``: inclusive indices over the input. A runs-count signal
covers the whole series; a longest-run signal covers that run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "RUNS_TABLE",
    "anhoej_signals",
    "crossings",
    "longest_run",
    "longest_run_limit",
    "runs",
    "runs_signals",
]

#: Useful observations -> (lowest, highest) number of runs expected by chance, both
#: inclusive. Perla, Provost & Murray 2011, Table 1 ("Table for checking for too many
#: or too few runs on a run chart"), adapted from Swed & Eisenhart 1943 (about 5% risk).
#: Kept as published: 35 of its 51 rows are the exact two-sided 5% limits for the points
#: split in half, the other 16 one run off them (tests/unit/domain/test_runs_rules.py).
RUNS_TABLE: dict[int, tuple[int, int]] = {
    10: (3, 9), 11: (3, 10), 12: (3, 11), 13: (4, 11), 14: (4, 12), 15: (5, 12),
    16: (5, 13), 17: (5, 13), 18: (6, 14), 19: (6, 15), 20: (6, 16), 21: (7, 16),
    22: (7, 17), 23: (7, 17), 24: (8, 18), 25: (8, 18), 26: (9, 19), 27: (10, 19),
    28: (10, 20), 29: (10, 20), 30: (11, 21), 31: (11, 22), 32: (11, 23), 33: (12, 23),
    34: (12, 24), 35: (13, 24), 36: (13, 25), 37: (13, 25), 38: (14, 26), 39: (14, 26),
    40: (15, 27), 41: (16, 27), 42: (16, 28), 43: (17, 28), 44: (17, 29), 45: (17, 30),
    46: (17, 31), 47: (18, 31), 48: (18, 32), 49: (19, 32), 50: (19, 33), 51: (20, 33),
    52: (20, 34), 53: (21, 34), 54: (21, 35), 55: (22, 35), 56: (22, 36), 57: (23, 36),
    58: (23, 37), 59: (24, 38), 60: (24, 38),
}  # fmt: skip


def _useful(values: Sequence[float], center: float) -> list[tuple[int, int]]:
    """(index, side) of each point off the median; side is +1 above, -1 below."""
    return [(i, 1 if v > center else -1) for i, v in enumerate(values) if v != center]


def _runs(values: Sequence[float], center: float) -> list[tuple[int, int]]:
    """Each run as an inclusive (first index, last index) over the input."""
    found: list[tuple[int, int]] = []
    side = 0
    for index, here in _useful(values, center):
        if here != side:
            found.append((index, index))
            side = here
        else:
            found[-1] = (found[-1][0], index)
    return found


def runs(values: Sequence[float], center: float) -> int:
    """The number of runs about ``center``."""
    return len(_runs(values, center))


def crossings(values: Sequence[float], center: float) -> int:
    """The number of times the series crosses ``center`` (points on it skipped)."""
    return max(runs(values, center) - 1, 0)


def longest_run(values: Sequence[float], center: float) -> tuple[int, int, int]:
    """(length in useful observations, first index, last index) of the longest run.

    The first of equally long runs wins; ``(0, 0, 0)`` when no point is off the median.
    """
    sides = dict(_useful(values, center))
    best = (0, 0, 0)
    for start, end in _runs(values, center):
        length = sum(1 for i in range(start, end + 1) if i in sides)
        if length > best[0]:
            best = (length, start, end)
    return best


def longest_run_limit(useful: int) -> int:
    """Anhøj: a run longer than this is a signal (``round(log2 N) + 3``)."""
    return round(math.log2(useful)) + 3


def runs_signals(values: Sequence[float], center: float) -> list[tuple[str, int, int]]:
    """IHI: too few or too many runs for the useful observations (10 to 60 only)."""
    limits = RUNS_TABLE.get(len(_useful(values, center)))
    if limits is None or not values:
        return []
    count, whole = runs(values, center), (0, len(values) - 1)
    if count < limits[0]:
        return [("too_few_runs", *whole)]
    if count > limits[1]:
        return [("too_many_runs", *whole)]
    return []


def anhoej_signals(
    values: Sequence[float], center: float, crossings_limit: int
) -> list[tuple[str, int, int]]:
    """Anhøj: the longest run too long, or fewer crossings than ``crossings_limit``."""
    useful = len(_useful(values, center))
    if useful < 2:
        return []
    found: list[tuple[str, int, int]] = []
    length, start, end = longest_run(values, center)
    if length > longest_run_limit(useful):
        found.append(("longest_run", start, end))
    if crossings(values, center) < crossings_limit:
        found.append(("few_crossings", 0, len(values) - 1))
    return found
