"""p-charts: a proportion per period with 3-sigma limits that follow each denominator.

For periods i with ``x_i`` of ``n_i`` people converting, the centre line is
``p = sum(x) / sum(n)`` and each period's limits are ``p ± 3·sqrt(p(1 - p) / n_i)``,
clipped to [0, 1] (Montgomery, Introduction to Statistical Quality Control, ch. 7;
Provost & Murray, The Health Care Data Guide, ch. 5). A point outside its limits is
flagged. A period with no denominator has no proportion and no limits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PPoint", "p_chart"]

SIGMAS = 3.0


@dataclass(frozen=True)
class PPoint:
    """One period of a p-chart."""

    numerator: int
    denominator: int
    proportion: float | None
    lower: float | None
    upper: float | None
    outside: bool


def p_chart(numerators: Sequence[int], denominators: Sequence[int]) -> tuple[float, list[PPoint]]:
    """(centre line, one point per period) for the given counts."""
    if len(numerators) != len(denominators):
        raise ValueError("numerators and denominators differ in length")
    if any(x < 0 or x > n for x, n in zip(numerators, denominators, strict=True)):
        raise ValueError("each numerator must be between 0 and its denominator")
    total = sum(denominators)
    centre = sum(numerators) / total if total else 0.0
    points = [_point(x, n, centre) for x, n in zip(numerators, denominators, strict=True)]
    return centre, points


def _point(x: int, n: int, centre: float) -> PPoint:
    if n == 0:
        return PPoint(x, n, None, None, None, False)
    sigma = math.sqrt(centre * (1 - centre) / n)
    lower, upper = max(0.0, centre - SIGMAS * sigma), min(1.0, centre + SIGMAS * sigma)
    p = x / n
    return PPoint(x, n, p, lower, upper, p < lower or p > upper)
