"""Experiments over HTTP: the lift of a holdout (``GET /api/v1/campaigns/{id}/lift``,
``GET /api/v1/journeys/{id}/lift``), every experiment (``GET /api/v1/experiments``), the
global holdout's monthly report (``GET /api/v1/experiments/global``), a content test's
decision (``GET /api/v1/campaigns/{id}/decision``), and the "Did it work?" page's CSV and pictures. An analyst gets small counts withheld
(:func:`services.analytics.sharing.lift`); the CSV withholds them for everyone."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response

from services.analytics import sharing
from services.analytics.charts import RuleSet
from services.analytics.dashboard import FromMonth, ToMonth, month_range
from services.analytics.metrics import QueryError
from services.analytics.reports import stages_png
from services.analytics.routes import min_cell_for
from services.auth import Authorized
from services.bootstrap import AppDep, Container
from services.domain.disclosure import shown
from services.domain.stages import Stage
from services.experiments import overview
from services.experiments.board import did_it_work, run_chart_data
from services.experiments.global_lift import global_lift
from services.experiments.lift import experiment_lift
from services.experiments.report import forest_png, p_charts_png
from services.experiments.variants import decision_of
from services.json_bodies import JSONBodyRoute
from services.spreadsheet import csv_text

router = APIRouter(route_class=JSONBodyRoute, tags=["experiments"])
SubjectId = Annotated[str, Path(max_length=40)]
PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}}}
#: Per CSV section, the columns holding counts of people: a blank one was withheld.
COUNTS = {
    "experiment": ("people_treatment", "people_control"),
    "global holdout": ("people_treatment", "people_control"),
    "p-chart": ("numerator", "denominator"),
    "run chart": ("count",),
}


def _lift(request: Request, response: Response, c: Container, kind: str,
          subject_id: str) -> dict[str, Any]:  # fmt: skip
    min_cell = min_cell_for(request, response, c)
    with c.sessions() as session:
        found = experiment_lift(session, kind, subject_id, c.now())
    if found is None:
        raise HTTPException(404, f"{kind} not found or without a holdout")
    return sharing.lift(found, min_cell) if min_cell else found


@router.get("/api/v1/campaigns/{campaign_id}/lift")
def campaign_lift(
    request: Request, response: Response, campaign_id: SubjectId, c: AppDep, _: Authorized
) -> dict[str, Any]:
    """Did the campaign work? Its holdout's lift per stage (intention to treat)."""
    return _lift(request, response, c, "campaign", campaign_id)


@router.get("/api/v1/journeys/{journey_id}/lift")
def journey_lift(
    request: Request, response: Response, journey_id: SubjectId, c: AppDep, _: Authorized
) -> dict[str, Any]:
    """Did the journey work? Its holdout's lift per stage (intention to treat)."""
    return _lift(request, response, c, "journey", journey_id)


@router.get("/api/v1/experiments")
def list_experiments(
    request: Request, response: Response, c: AppDep, _: Authorized
) -> dict[str, Any]:
    """Every campaign and journey with a holdout (``kind``, ``id``, ``name``) with its
    lift per stage, as ``GET /api/v1/campaigns/{id}/lift`` gives it."""
    min_cell = min_cell_for(request, response, c)
    with c.sessions() as session:
        found = overview.experiments(session, c.now())
    if not min_cell:
        return {"experiments": found, "disclosure": sharing.exact_marker()}
    return {"experiments": [sharing.lift(e, min_cell) for e in found],
            "disclosure": {"exact": False, "min_cell": min_cell}}  # fmt: skip


@router.get("/api/v1/experiments/global")
def global_holdout(
    request: Request,
    response: Response,
    c: AppDep,
    _: Authorized,
    start: FromMonth = None,
    end: ToMonth = None,
) -> dict[str, Any]:
    """The lift of outreach as a whole (``WINWIN_GLOBAL_HOLDOUT_SHARE``): per month, the
    held-out against everyone else eligible, cumulative from ``from`` (default: the
    twelve months up to this one)."""
    first, last = month_range(start, end, c.now(), c.settings.timezone)
    min_cell = min_cell_for(request, response, c)
    with c.sessions() as session:
        report = _answer(lambda: global_lift(session, c.settings, first, last))
    if min_cell:
        report["months"] = [sharing.lift(m, min_cell) for m in report["months"]]
    disclosure = {"exact": False, "min_cell": min_cell} if min_cell else sharing.exact_marker()
    return dict(report) | {"disclosure": disclosure}


def board_for(c: Container, start: str | None, end: str | None, rules: RuleSet,
           min_cell: int) -> dict[str, Any]:  # fmt: skip
    """The page's figures for the selected months (:func:`did_it_work`); 422 if bad."""
    months = month_range(start, end, c.now(), c.settings.timezone)
    with c.sessions() as session:
        board: dict[str, Any] = _answer(
            lambda: did_it_work(session, c.settings, c.now(), months, rules, min_cell)
        )
    return board


def _answer(compute: Any) -> Any:
    try:
        return compute()
    except QueryError as exc:
        raise HTTPException(422, [{"field": exc.field, "error": str(exc)}]) from None


@router.get("/api/v1/experiments/export.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}})  # fmt: skip
def export_csv(
    c: AppDep, _: Authorized, start: FromMonth = None, end: ToMonth = None,
    rules: RuleSet = RuleSet.IHI,
) -> Response:  # fmt: skip
    """All of "Did it work?" as one CSV, meant to be shared: every count of 1 to 10
    people (and what gives it away) withheld for whoever asks, reading ``<11``."""
    min_cell = c.settings.min_cell
    board = board_for(c, start, end, rules, min_cell)
    rows = overview.csv_rows(board["experiments"], board["global"], board["stages"])
    for row in rows:
        for k in COUNTS.get(row["section"], ()):
            if row[k] == "":
                row[k] = shown(None, min_cell)
    name = f"winwin-did-it-work-{board['from']}-{board['to']}-{rules.value}-shared.csv"
    return Response(csv_text(overview.COLUMNS, rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


@router.get("/api/v1/experiments/forest.png", response_class=Response, responses=PNG)
def forest(request: Request, response: Response, c: AppDep, _: Authorized) -> Response:
    """Every experiment's difference and 95% interval per stage: a forest plot."""
    found = list_experiments(request, response, c, _)["experiments"]
    labelled = [{**row, "label": f"{e['name']}: {row['stage']}"}
                for e in found for row in e["stages"]]  # fmt: skip
    png = forest_png(labelled, "every experiment")
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


def _png(png: bytes) -> Response:
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/api/v1/experiments/p-charts.png", response_class=Response, responses=PNG)
def p_charts_picture(
    request: Request, response: Response, c: AppDep, _: Authorized,
    start: FromMonth = None, end: ToMonth = None,
) -> Response:  # fmt: skip
    """The p-charts of the "Did it work?" page: use ÷ aware and produce ÷ use per month,
    centre line, 3-sigma limits; withheld points (for a role without exact counts) are
    gaps and the limits of a withheld denominator are not drawn."""
    board = board_for(c, start, end, RuleSet.IHI, min_cell_for(request, response, c))
    return _png(p_charts_png(board["stages"]["p_charts"], f"{board['from']} to {board['to']}"))


@router.get("/api/v1/experiments/run-chart.png", response_class=Response, responses=PNG)
def run_chart_picture(
    request: Request, response: Response, c: AppDep, _: Authorized,
    start: FromMonth = None, end: ToMonth = None, rules: RuleSet = RuleSet.IHI,
    stage: Stage = Stage.AWARE,
) -> Response:  # fmt: skip
    """The run chart of one stage: monthly counts, median, each signal's span with its
    rule in the legend; withheld counts (for a role without exact counts) are gaps."""
    board = board_for(c, start, end, rules, min_cell_for(request, response, c))
    return _png(stages_png(run_chart_data(board["stages"], stage.value)))


@router.get("/api/v1/campaigns/{campaign_id}/decision")
def campaign_decision(
    request: Request, response: Response, campaign_id: SubjectId, c: AppDep, _: Authorized
) -> dict[str, Any]:
    """Which variant won the campaign's content test, with its figures (404 until then)."""
    with c.sessions() as session:
        found = decision_of(session, campaign_id)
    if found is None:
        raise HTTPException(404, "campaign not found, without a content test, or not decided yet")
    min_cell = min_cell_for(request, response, c)
    return (sharing.decision(found, min_cell) or {}) if min_cell else found
