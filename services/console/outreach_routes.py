"""The console's outreach pages (issue 16, part 3): Audiences, Journeys, the guided
campaign form and the Stage map. Their forms post to the ``/api/v1`` JSON routes with
the session's CSRF token, so the rules live there alone (services/access.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.console.routes import page
from services.json_bodies import JSONBodyRoute

router = APIRouter(route_class=JSONBodyRoute, include_in_schema=False)


@router.get("/audiences")
def audiences_page(request: Request) -> Response:
    return page(request, "audiences.html", "/audiences", reads="/api/v1/audiences")


@router.get("/journeys")
def journeys_page(request: Request) -> Response:
    return page(request, "journeys.html", "/journeys")


@router.get("/new-campaign")
def new_campaign_page(request: Request) -> Response:
    return page(request, "new-campaign.html", "/campaigns")


@router.get("/stage-map")
def stage_map_page(request: Request) -> Response:
    return page(request, "stage-map.html", "/stage-map")
