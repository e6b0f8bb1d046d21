"""Analytics API: stage metrics, attribution, and the stage map (CONTRACT.md, HTTP).

Endpoints are plain ``def``: FastAPI runs them in its thread pool, so SQL work never
blocks the event loop. Bad parameters answer 422 with ``{"detail": [{"field", "error"}]}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request, Response

from services.analytics import metrics, sharing
from services.analytics.metrics import QueryError
from services.analytics.recompute import apply_stage_map, people_per_stage, stage_map_changes
from services.analytics.stage_map import load_stage_map
from services.analytics.window_credits import read_window
from services.auth import Authorized, role_of
from services.bootstrap import AppDep, Container
from services.domain.attribution import DEFAULT_MODEL, Dimension, Model
from services.domain.periods import PeriodKind
from services.domain.stages import StageMap, StageMapError
from services.json_bodies import JSONBodyRoute

router = APIRouter(route_class=JSONBodyRoute, tags=["analytics"])
T = TypeVar("T")

From = Annotated[str | None, Query(alias="from", description="YYYY-MM or YYYY-MM-DD")]
To = Annotated[str | None, Query(alias="to", description="inclusive; YYYY-MM or YYYY-MM-DD")]
WindowDays = Annotated[int | None, Query(ge=1, le=3650, description="default: the stream's")]


def _answer(compute: Callable[[], T]) -> T:
    try:
        return compute()
    except QueryError as exc:
        raise HTTPException(422, [{"field": exc.field, "error": str(exc)}]) from None


def min_cell_for(request: Request, response: Response, c: Container) -> int:
    """0 (exact counts, headed "not for sharing") for admins and staff; the smallest
    count shown (``WINWIN_MIN_CELL``) for every other role."""
    cell = sharing.min_cell(role_of(request), c.settings.min_cell)
    disclosure = f"suppressed; min-cell={cell}" if cell else f"exact; {sharing.NOT_FOR_SHARING}"
    response.headers["X-WinWin-Disclosure"] = disclosure
    return cell


#: For the other routers that answer with counts (experiments).


@router.get("/api/v1/metrics/stages")
def get_stage_metrics(
    request: Request,
    response: Response,
    c: AppDep,
    _: Authorized,
    start: Annotated[str, Query(alias="from", description="YYYY-MM for months, else a date")],
    end: Annotated[str, Query(alias="to", description="inclusive")],
    period: PeriodKind = PeriodKind.MONTH,
    baseline: str | None = None,
    campaign_id: str | None = None,
    channel: str | None = None,
    messenger_id: str | None = None,
    rules: str = "ihi",
) -> dict[str, Any]:
    """Unique people aware / using / producing per period, growth, median and signals.

    ``rules``: ``ihi`` (shift, trend, too few / too many runs) or ``anhoej`` (longest
    run, few crossings). ``p_charts``: use ÷ aware and produce ÷ use, 3-sigma limits.
    """
    min_cell = min_cell_for(request, response, c)
    with c.sessions() as session:
        result = _answer(
            lambda: metrics.stage_metrics(
                session,
                period,
                start,
                end,
                baseline,
                campaign_id=campaign_id,
                channel=channel,
                messenger_id=messenger_id,
                window_days=c.settings.attribution_window_days,
                rules=rules,
            )
        )
    return (
        sharing.stages(result, min_cell)
        if min_cell
        else result | {"disclosure": sharing.exact_marker()}
    )


@router.get("/api/v1/attribution")
def get_attribution(
    request: Request,
    response: Response,
    c: AppDep,
    _: Authorized,
    start: From = None,
    end: To = None,
    model: Model = DEFAULT_MODEL,
    window_days: WindowDays = None,
    group_by: Dimension = Dimension.CAMPAIGN,
) -> dict[str, Any]:
    """Credits per campaign, channel or messenger and stage (``unattributed`` included)."""
    _answer(lambda: metrics.day_bounds(start, end))  # 422 before any recomputation
    window = window_days or c.settings.attribution_window_days
    min_cell = min_cell_for(request, response, c)
    result = _answer(
        lambda: read_window(c.sessions, c.settings, window, c.now(),
                            lambda s: metrics.attribution(s, model, window, start, end, group_by))
    )  # fmt: skip
    return result | {"rows": sharing.attribution(result["rows"], "key", min_cell)}


@router.get("/api/v1/campaigns/{campaign_id}/attribution")
def get_campaign_attribution(
    request: Request,
    response: Response,
    c: AppDep,
    _: Authorized,
    campaign_id: Annotated[str, Path(max_length=40)],
    model: Model = DEFAULT_MODEL,
    window_days: WindowDays = None,
    period: PeriodKind = PeriodKind.MONTH,
) -> list[dict[str, Any]]:
    """One campaign's credits per period and stage."""
    window = window_days or c.settings.attribution_window_days
    min_cell = min_cell_for(request, response, c)
    rows = _answer(
        lambda: read_window(c.sessions, c.settings, window, c.now(),
                            lambda s: metrics.campaign_attribution(s, campaign_id, model,
                                                                   window, period))
    )  # fmt: skip
    return sharing.attribution(rows, "period", min_cell)


@router.get("/api/v1/stage-map")
def get_stage_map(c: AppDep, _: Authorized) -> dict[str, list[str]]:
    """The event types that count for each stage."""
    with c.sessions() as session:
        return load_stage_map(session).to_dict()


@router.put("/api/v1/stage-map")
def put_stage_map(
    c: AppDep, _: Authorized, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Replace the stage map and recompute stages, facts and credits before answering."""
    try:
        stage_map = StageMap.from_dict(body)
    except StageMapError as exc:
        raise HTTPException(422, [{"field": "body", "error": str(exc)}]) from None
    with c.sessions() as session, session.begin():
        old, before = load_stage_map(session), people_per_stage(session)
        counts = apply_stage_map(
            session, stage_map, c.settings.timezone, c.settings.attribution_window_days
        )
        changes = stage_map_changes(old, stage_map, before, people_per_stage(session))
    return {**stage_map.to_dict(), "recomputed": counts, "changes": changes, "done": True}
