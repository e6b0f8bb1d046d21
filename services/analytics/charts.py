"""Run charts and p-charts over a stage-count series (the QI habit of the network).

Rule sets for run charts (``rules``):

* ``ihi`` (the default): shift, trend, too few / too many runs (Perla, Provost & Murray
  2011; Provost & Murray, The Health Care Data Guide).
* ``anhoej``: longest run and few crossings (Anhøj & Olesen 2014).

p-charts: use ÷ aware and produce ÷ use per period, 3-sigma limits per denominator.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from services.analytics.stats import crossings_limit
from services.domain.pcharts import p_chart
from services.domain.runcharts import median, shift_signals, trend_signals
from services.domain.runs_rules import anhoej_signals, runs_signals
from services.domain.stages import Stage

__all__ = ["RuleSet", "p_charts", "run_chart"]

STAGES = [s.value for s in Stage]
#: p-chart name -> (numerator stage, denominator stage)
CONVERSIONS = {"use_of_aware": ("use", "aware"), "produce_of_use": ("produce", "use")}


class RuleSet(StrEnum):
    """Which run-chart rules to apply."""

    IHI = "ihi"
    ANHOEJ = "anhoej"


def signals(values: list[float], rules: RuleSet) -> list[tuple[str, int, int]]:
    """(rule, first index, last index) of every signal in ``values``."""
    centre = median(values)
    if rules is RuleSet.ANHOEJ:
        useful = sum(1 for v in values if v != centre)
        return anhoej_signals(values, centre, crossings_limit(useful))
    found = [("shift", a, b) for a, b in shift_signals(values, centre)]
    found += [("trend", a, b) for a, b in trend_signals(values)]
    return found + runs_signals(values, centre)


def run_chart(
    periods: list[str], rows: list[dict[str, Any]], rules: RuleSet = RuleSet.IHI
) -> dict[str, Any]:
    """Median and signals per stage: ``{"median": {...}, "signals": {...}, "rules"}``."""
    medians: dict[str, float] = {}
    found: dict[str, list[dict[str, str]]] = {}
    for stage in STAGES:
        values = [row[stage] for row in rows]
        medians[stage] = median(values)
        found[stage] = [
            {"rule": r, "from": periods[a], "to": periods[b]} for r, a, b in signals(values, rules)
        ]
    return {"rules": rules.value, "median": medians, "signals": found}


def p_charts(periods: list[str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One p-chart per conversion: centre line and, per period, p with its limits."""
    charts: dict[str, Any] = {}
    for name, (top, bottom) in CONVERSIONS.items():
        centre, points = p_chart([r[top] for r in rows], [r[bottom] for r in rows])
        charts[name] = {
            "centre": centre,
            "points": [
                {
                    "period": period,
                    "numerator": p.numerator,
                    "denominator": p.denominator,
                    "p": p.proportion,
                    "lower": p.lower,
                    "upper": p.upper,
                    "outside": p.outside,
                }
                for period, p in zip(periods, points, strict=True)
            ],  # fmt: skip
        }
    return charts
