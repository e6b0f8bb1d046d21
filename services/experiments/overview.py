"""Every experiment at once, for the "Did it work?" page, its API and its CSV.

:func:`experiments`: each campaign or journey with a holdout, by name, with its lift
(:func:`services.experiments.lift.experiment_lift`). :func:`csv_rows`: all of the page as
one table (experiments' lift per stage, the global holdout per month and stage, the
p-charts, the run chart's counts and signals), one ``section`` column saying which.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db.models import Campaign
from services.db.models_experiments import HoldoutRow
from services.db.models_journeys import Journey
from services.experiments.lift import experiment_lift

__all__ = ["COLUMNS", "csv_rows", "experiments"]

COLUMNS = ["section", "subject", "period", "stage", "people_treatment", "people_control",
           "rate_treatment", "rate_control", "difference", "ci95_low", "ci95_high",
           "relative_lift", "p_value", "p_holm", "incremental_people", "count", "median",
           "numerator", "denominator", "p", "lower", "upper", "outside", "rule", "from",
           "to"]  # fmt: skip
_NAMED = {"campaign": Campaign, "journey": Journey}


def experiments(session: Session, now: datetime) -> list[dict[str, Any]]:
    """``[{"kind", "id", "name", **lift}]`` for every holdout, by kind then name."""
    found = []
    for kind, subject_id in session.execute(select(HoldoutRow.kind, HoldoutRow.subject_id)):
        model = _NAMED.get(kind)
        subject = session.get(model, subject_id) if model is not None else None
        result = experiment_lift(session, kind, subject_id, now)
        if result is not None:
            name = str(getattr(subject, "name", None) or subject_id)
            found.append({"kind": kind, "id": subject_id, "name": name, **result})
    return sorted(found, key=lambda e: (e["kind"], e["name"], e["id"]))


def csv_rows(
    found: Iterable[Mapping[str, Any]], global_report: Mapping[str, Any], stages: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The page's figures as rows of :data:`COLUMNS` (blank where not applicable)."""
    rows: list[dict[str, Any]] = []
    for e in found:
        rows += _lift_rows("experiment", f"{e['kind']} {e['name']}", "", e)
    for month in global_report["months"]:
        rows += _lift_rows("global holdout", "all outreach", month["month"], month)
    for name, chart in stages.get("p_charts", {}).items():
        rows += [{"section": "p-chart", "subject": name, **_point(p)} for p in chart["points"]]
    for row in stages["rows"]:
        for stage in ("aware", "use", "produce"):
            rows.append({"section": "run chart", "subject": stages["rules"], "stage": stage,
                         "period": row["period"], "count": row[stage],
                         "median": stages["median"].get(stage)})  # fmt: skip
    for stage, found_signals in stages["signals"].items():
        rows += [{"section": "run chart signal", "subject": stages["rules"], "stage": stage,
                  **s} for s in found_signals]  # fmt: skip
    return [{k: _blank(r.get(k)) for k in COLUMNS} for r in rows]


def _lift_rows(section: str, subject: str, period: str, result: Mapping[str, Any]) -> list[Any]:
    arms = result["arms"]
    rows = []
    for stage in result["stages"]:
        low, high = stage["ci95"] or (None, None)
        rows.append({**stage, "section": section, "subject": subject, "period": period,
                     "people_treatment": arms["treatment"]["people"],
                     "people_control": arms["control"]["people"],
                     "ci95_low": low, "ci95_high": high})  # fmt: skip
    return rows


def _point(point: Mapping[str, Any]) -> dict[str, Any]:
    return {"period": point["period"], **{k: point.get(k) for k in
            ("numerator", "denominator", "p", "lower", "upper", "outside")}}  # fmt: skip


def _blank(value: Any) -> Any:
    return "" if value is None else value
