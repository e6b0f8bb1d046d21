"""``GET /api/v1/dashboard/export.csv``: the dashboard's CSV, meant to be shared.

Whoever asks (an admin too), small counts are withheld as on the analyst's dashboard
(:mod:`services.analytics.sharing`): ``<11`` in the ``value`` column.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from sqlalchemy.orm import Session

from services.analytics import metrics, panels, sharing
from services.analytics.dashboard import FromMonth, ToMonth, month_range, snapshot
from services.analytics.metrics import QueryError
from services.analytics.window_credits import read_window
from services.auth import Authorized
from services.bootstrap import AppDep, Container
from services.domain.attribution import DEFAULT_MODEL, Dimension, Model
from services.domain.disclosure import shown
from services.domain.periods import PeriodKind, period_bounds
from services.json_bodies import JSONBodyRoute
from services.spreadsheet import csv_text

router = APIRouter(route_class=JSONBodyRoute, tags=["analytics"])
STAGES = sharing.STAGES
COLUMNS = ["section", "key", "stage", "measure", "value"]


@router.get(
    "/api/v1/dashboard/export.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def export_csv(
    c: AppDep,
    _: Authorized,
    start: FromMonth = None,
    end: ToMonth = None,
    baseline: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
    model: Model = DEFAULT_MODEL,
    window_days: Annotated[int | None, Query(ge=1, le=3650)] = None,
) -> Response:
    """Counters, monthly counts, medians, growth, credits by campaign, channel and
    messenger: every count of 1 to 10 people (and what gives it away) reads ``<11``."""
    first, last = month_range(start, end, c.now(), c.settings.timezone)
    window = window_days or c.settings.attribution_window_days
    try:
        rows = _rows(c, first, last, baseline or first, Model(model), window)
    except QueryError as exc:
        raise HTTPException(422, [{"field": exc.field, "error": str(exc)}]) from None
    name = f"winwin-{first}-{last}-{Model(model).value}-{window}d-shared.csv"
    return Response(csv_text(COLUMNS, rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


def _rows(c: Container, first: str, last: str, base: str, model: Model, window: int) -> list[Any]:
    """The CSV's rows: every figure as the analyst's dashboard shows it."""
    min_cell, tz = c.settings.min_cell, c.settings.timezone
    live = sharing.counters(snapshot(c, first, last), min_cell)

    def read(session: Session) -> tuple[Any, Any, Any, Any]:
        stages = sharing.stages(metrics.stage_metrics(session, "month", first, last, base),
                                min_cell)  # fmt: skip
        credits = {d.value: sharing.attribution(
                       metrics.attribution(session, model, window, first, last, d)["rows"],
                       "key", min_cell)
                   for d in (Dimension.CAMPAIGN, Dimension.CHANNEL)}  # fmt: skip
        board = sharing.leaderboard(panels.leaderboard(session, model, window, first, last),
                                    min_cell)  # fmt: skip
        bots = panels.bot_report(session, period_bounds(first, PeriodKind.MONTH, tz)[0],
                                 period_bounds(last, PeriodKind.MONTH, tz)[1])  # fmt: skip
        return stages, credits, board, bots

    stages, credits, board, bots = read_window(c.sessions, c.settings, window, c.now(), read)
    view = {"from": first, "to": last, "baseline": base, "model": model.value, "window": window}
    out: list[list[Any]] = [["view", k, "", "", v] for k, v in view.items()]
    out += _count_rows(live, stages, f"{first}..{last}")
    out += _credit_rows(credits, board, bots)
    return [[*row[:4], shown(None, min_cell) if row[4] is None else row[4]] for row in out]


def _count_rows(live: dict[str, Any], stages: dict[str, Any], span: str) -> list[list[Any]]:
    out: list[list[Any]] = []
    for part in sharing.COUNTERS:
        key = span if part == "range" else live[part]["period"]
        out += [[f"counters_{part}", key, s, "people", live[part][s]] for s in STAGES]
    for row in stages["rows"]:
        out += [["monthly", row["period"], s, "people", row[s]] for s in STAGES]
    withheld = stages.get("suppressed", {})
    growth_key = f"{stages['baseline']}..{stages['rows'][-1]['period']}"
    for name, key, measure in (("median", "", "people"), ("growth", growth_key, "factor")):
        out += [[name, key, s, measure, _derived(stages[name][s], s in withheld.get(name, ()))]
                for s in STAGES]  # fmt: skip
    return out


def _credit_rows(credits: dict[str, list[dict[str, Any]]], board: list[dict[str, Any]],
                 bots: dict[str, Any]) -> list[list[Any]]:  # fmt: skip
    out = [[section, r["key"], r["stage"], m, r[m]] for section, rows in credits.items()
           for r in rows for m in sharing.ATTRIBUTION_FIELDS]  # fmt: skip
    for m in board:
        key = f"{m['messenger_id']} {m['name']}"
        out += [["messenger", key, s, "people", m[s]] for s in STAGES]
        out.append(["messenger", key, "", "credited", m["credited"]])
    out += [["bots", "counted", "", "events", bots["counted"]],
            ["bots", "flagged", "", "events", bots["flagged"]],
            *(["bots", r["reason"], "", r["type"], r["events"]] for r in bots["rows"])]  # fmt: skip
    return out


def _derived(value: float | None, withheld: bool) -> float | str:
    """A median or growth factor: "suppressed" when it would give a small count away,
    empty when there is none (growth from a baseline of nobody)."""
    return "suppressed" if withheld else "" if value is None else value
