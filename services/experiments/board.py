"""The figures of the "Did it work?" page, its CSV and its pictures, in one place.

Every experiment's lift, the global holdout's monthly report and the stage metrics (the
run chart with the chosen rules and the p-charts) for the selected months, with small
counts withheld when ``min_cell`` is above 0 (:mod:`services.analytics.sharing`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from services.analytics import metrics, sharing
from services.analytics.charts import RuleSet
from services.config import Settings
from services.domain.periods import PeriodKind
from services.experiments.global_lift import global_lift
from services.experiments.overview import experiments

__all__ = ["did_it_work", "run_chart_data"]


def did_it_work(
    session: Session,
    settings: Settings,
    now: datetime,
    months: tuple[str, str],
    rules: RuleSet,
    min_cell: int,
) -> dict[str, Any]:
    """``{"experiments", "global", "stages", "rules", "from", "to", "disclosure"}``."""
    first, last = months
    found = experiments(session, now)
    report = global_lift(session, settings, first, last)
    stages = metrics.stage_metrics(session, PeriodKind.MONTH, first, last,
                                   window_days=settings.attribution_window_days,
                                   rules=rules)  # fmt: skip
    if min_cell:
        found = [sharing.lift(e, min_cell) for e in found]
        report["months"] = [sharing.lift(m, min_cell) for m in report["months"]]
        stages = sharing.stages(stages, min_cell)
        disclosure: dict[str, Any] = {"exact": False, "min_cell": min_cell}
    else:
        disclosure = sharing.exact_marker()
    return {"experiments": found, "global": report, "stages": stages, "rules": rules.value,
            "from": first, "to": last, "disclosure": disclosure}  # fmt: skip


def run_chart_data(stages: dict[str, Any], stage: str) -> dict[str, Any]:
    """What the run-chart picture of one stage draws, from the page's stage metrics (as
    shared): per month its count (``None``: withheld, drawn as a gap), its median, its
    signals, its growth, the rule set and the disclosure."""
    keep = ("baseline", "rules", "disclosure")
    return {k: stages[k] for k in keep if k in stages} | {
        "rows": [{"period": r["period"], stage: r[stage]} for r in stages["rows"]],
        **{k: {stage: stages[k][stage]} for k in ("median", "signals", "growth")},
    }
