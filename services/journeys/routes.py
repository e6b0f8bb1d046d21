"""Journeys, recommendations and identity over HTTP (CONTRACT.md, "Journeys, needs and
identity")."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.analytics import sharing
from services.analytics.routes import min_cell_for
from services.auth import Authorized
from services.bootstrap import AppDep, Container
from services.db.models import Contact
from services.db.models_journeys import Journey
from services.domain.journeys import JourneyError, parse_cap
from services.experiments.assign import save_holdout
from services.experiments.holdout_input import HoldoutIn, holdout_for, holdout_view
from services.journeys import definitions, identity
from services.journeys.needs import recommended_for
from services.journeys.simulate import range_bounds, simulate
from services.json_bodies import JSONBodyRoute
from services.staff_input import StaffInput

router = APIRouter(route_class=JSONBodyRoute, tags=["journeys"])


class JourneyIn(StaffInput):
    name: str = Field(min_length=1, max_length=200)
    trigger: dict[str, Any]
    delay: str = Field(default="P0D", max_length=40)
    exit: dict[str, Any] | None = None
    action: dict[str, Any]
    enabled: bool = True
    #: a randomized holdout: ``{"share": 0.2, "window_days": 30}``
    holdout: HoldoutIn | None = None


class RangeIn(StaffInput):
    from_: str = Field(alias="from")
    to: str


class IdentifyIn(StaffInput):
    visitor: str = Field(min_length=1, max_length=64)
    external_id: str = Field(min_length=1, max_length=200)


@router.post("/api/v1/journeys", status_code=201)
def post_journey(body: JourneyIn, c: AppDep, _: Authorized) -> dict[str, Any]:
    """Create a journey: trigger → delay → exit check → action."""
    try:
        holdout = holdout_for("email", body.holdout)  # every journey action is per person
        with c.sessions() as session, session.begin():
            journey = definitions.create_journey(session, body.model_dump(), c.now())
            if holdout is not None:
                save_holdout(session, "journey", journey.id, holdout)
            counts = definitions.stats(session, [journey.id])
            return definitions.view(journey, counts[journey.id]) | {
                "holdout": holdout_view(holdout)
            }
    except (JourneyError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/api/v1/journeys")
def list_journeys(
    request: Request, response: Response, c: AppDep, _: Authorized
) -> list[dict[str, Any]]:
    """Every journey with its statistics (small counts withheld from analysts)."""
    min_cell = min_cell_for(request, response, c)
    with c.sessions() as session:
        journeys = session.scalars(select(Journey).order_by(Journey.created_at, Journey.id)).all()
        counts = definitions.stats(session, [j.id for j in journeys])
        return [sharing.journey(definitions.view(j, counts[j.id]), min_cell) for j in journeys]


@router.get("/api/v1/journeys/{journey_id}")
def get_journey(
    request: Request, response: Response, journey_id: str, c: AppDep, _: Authorized
) -> dict[str, Any]:
    min_cell = min_cell_for(request, response, c)
    with c.sessions() as session:
        journey = session.get(Journey, journey_id)
        if journey is None:
            raise HTTPException(404, "journey not found")
        view = definitions.view(journey, definitions.stats(session, [journey_id])[journey_id])
        return sharing.journey(view, min_cell)


@router.put("/api/v1/journeys/{journey_id}")
def put_journey(journey_id: str, body: JourneyIn, c: AppDep, _: Authorized) -> dict[str, Any]:
    """Replace a journey's name, trigger, delay, exit, action and switch."""
    try:
        with c.sessions() as session, session.begin():
            journey = _journey(session, journey_id)
            definitions.update_journey(session, journey, body.model_dump())
            return definitions.view(journey, definitions.stats(session, [journey_id])[journey_id])
    except JourneyError as exc:
        raise HTTPException(422, str(exc)) from None


@router.post("/api/v1/journeys/{journey_id}/on")
def switch_on(journey_id: str, c: AppDep, _: Authorized) -> dict[str, Any]:
    """Switch a journey on: new trigger events start runs, due runs act."""
    return _switch(c, journey_id, enabled=True)


@router.post("/api/v1/journeys/{journey_id}/off")
def switch_off(journey_id: str, c: AppDep, _: Authorized) -> dict[str, Any]:
    """Switch a journey off: nothing starts and nothing acts until it is on again."""
    return _switch(c, journey_id, enabled=False)


def _switch(c: Container, journey_id: str, *, enabled: bool) -> dict[str, Any]:
    with c.sessions() as session, session.begin():
        journey = _journey(session, journey_id)
        journey.enabled = enabled
        session.flush()
        return definitions.view(journey, definitions.stats(session, [journey_id])[journey_id])


def _journey(session: Session, journey_id: str) -> Journey:
    journey = session.get(Journey, journey_id)
    if journey is None:
        raise HTTPException(404, "journey not found")
    return journey


@router.post("/api/v1/journeys/{journey_id}/simulate")
def simulate_journey(journey_id: str, body: RangeIn, c: AppDep, _: Authorized) -> dict[str, int]:
    """What the journey would have done over the stored events of ``[from, to]``."""
    try:
        start, end = range_bounds(body.from_, body.to, c.settings.timezone)
        cap = parse_cap(c.settings.frequency_cap)
    except JourneyError as exc:
        raise HTTPException(422, str(exc)) from None
    with c.sessions() as session:
        journey = session.get(Journey, journey_id)
        if journey is None:
            raise HTTPException(404, "journey not found")
        return simulate(session, journey, start, end, c.now(), cap, c.settings.timezone)


@router.get("/api/v1/contacts/{external_id}/recommendations")
def recommendations(
    external_id: str, c: AppDep, _: Authorized, limit: int = Query(3, ge=1, le=50)
) -> list[dict[str, Any]]:
    """The best-matched resources the contact has not used yet, with the reason."""
    with c.sessions() as session:
        person = session.scalar(select(Contact.pseudonym).where(Contact.external_id == external_id))
        if person is None:
            raise HTTPException(404, "contact not found")
        found = recommended_for(session, [person], limit)[person]
    return [
        {"resource_id": r.resource_id, "title": r.title, "score": r.score, "reason": r.reason}
        for r in found
    ]


@router.post("/api/v1/identify", status_code=201)
def identify(body: IdentifyIn, c: AppDep, _: Authorized) -> Any:
    """Merge a visitor (``ww_vid``) into a contact: their events count for one person."""
    from fastapi.responses import JSONResponse

    try:
        merge, created = identity.merge_visitor(c, body.visitor, body.external_id)
    except identity.IdentityError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return JSONResponse(merge.public(), status_code=201 if created else 200)


@router.delete("/api/v1/identify/{merge_id}")
def undo_identify(merge_id: str, c: AppDep, _: Authorized) -> dict[str, Any]:
    """Undo a merge: the visitor's events count for the visitor again."""
    try:
        return identity.undo_merge(c, merge_id).public()
    except identity.IdentityError as exc:
        raise HTTPException(exc.status, str(exc)) from None
