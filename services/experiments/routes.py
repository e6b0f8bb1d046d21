"""Lift of holdouts over HTTP: ``GET /api/v1/campaigns/{id}/lift`` and
``GET /api/v1/journeys/{id}/lift`` (the JSON of :func:`experiment_lift`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request

from services.analytics import sharing
from services.auth import Authorized, role_of
from services.bootstrap import AppDep, Container
from services.experiments.lift import experiment_lift

router = APIRouter(tags=["experiments"])
SubjectId = Annotated[str, Path(max_length=40)]


def _lift(request: Request, c: Container, kind: str, subject_id: str) -> dict[str, Any]:
    with c.sessions() as session:
        found = experiment_lift(session, kind, subject_id, c.now())
    if found is None:
        raise HTTPException(404, f"{kind} not found or without a holdout")
    if sharing.exact_for(role_of(request)):
        return found | {"disclosure": sharing.exact_marker()}
    return sharing.lift(found, c.settings.min_cell)


@router.get("/api/v1/campaigns/{campaign_id}/lift")
def campaign_lift(
    request: Request, campaign_id: SubjectId, c: AppDep, _: Authorized
) -> dict[str, Any]:
    """Did the campaign work? Its holdout's lift per stage (intention to treat)."""
    return _lift(request, c, "campaign", campaign_id)


@router.get("/api/v1/journeys/{journey_id}/lift")
def journey_lift(
    request: Request, journey_id: SubjectId, c: AppDep, _: Authorized
) -> dict[str, Any]:
    """Did the journey work? Its holdout's lift per stage (intention to treat)."""
    return _lift(request, c, "journey", journey_id)
