"""Audiences over HTTP: stored segments and the live count of who they reach (issue 16)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import Field
from sqlalchemy import select

from services.auth import Authorized
from services.bootstrap import AppDep, Container
from services.db.audiences import count_segment
from services.db.models_audiences import SavedAudience
from services.domain.periods import PeriodKind, period_of
from services.domain.segments import Segment, SegmentError, parse_segment
from services.ids import new_id
from services.json_bodies import JSONBodyRoute
from services.staff_input import StaffInput

router = APIRouter(route_class=JSONBodyRoute, tags=["audiences"])


class RuleIn(StaffInput):
    rule: dict[str, Any] = Field(default_factory=dict)


class AudienceIn(RuleIn):
    name: str = Field(min_length=1, max_length=200)


def checked(rule: dict[str, Any]) -> Segment:
    """The parsed rule, or 422 naming the part that is wrong."""
    try:
        return parse_segment(rule)
    except SegmentError as exc:
        raise HTTPException(422, str(exc)) from None


def today(c: Container) -> date:
    """Today in the network's time zone (the day of the newest stage facts)."""
    return date.fromisoformat(period_of(c.now(), PeriodKind.DAY, c.settings.timezone))


def _view(audience: SavedAudience) -> dict[str, Any]:
    created = audience.created_at.isoformat() if audience.created_at else None
    return {"id": audience.id, "name": audience.name, "rule": audience.rule, "created_at": created}


@router.post("/api/v1/audiences", status_code=201)
def post_audience(body: AudienceIn, c: AppDep, _: Authorized) -> dict[str, Any]:
    """Store a segment under a name; campaigns may then target it by id."""
    segment = checked(body.rule)
    audience = SavedAudience(id=new_id(), name=body.name, rule=segment.to_dict())
    audience.created_at = c.now()
    with c.sessions() as session, session.begin():
        session.add(audience)
    return _view(audience)


@router.get("/api/v1/audiences")
def list_audiences(c: AppDep, _: Authorized) -> list[dict[str, Any]]:
    with c.sessions() as session:
        found = session.scalars(select(SavedAudience).order_by(SavedAudience.name))
        return [_view(a) for a in found]


@router.get("/api/v1/audiences/{audience_id}")
def get_audience(audience_id: str, c: AppDep, _: Authorized) -> dict[str, Any]:
    """The audience with its live count and a sample of ten external ids."""
    with c.sessions() as session:
        audience = session.get(SavedAudience, audience_id)
        if audience is None:
            raise HTTPException(404, "audience not found")
        counted = count_segment(session, parse_segment(audience.rule), today(c))
        return _view(audience) | counted._asdict()


@router.post("/api/v1/audiences/count")
def count_audience(body: RuleIn, c: AppDep, _: Authorized) -> dict[str, Any]:
    """How many people with consent a rule reaches now, and ten of their external ids."""
    segment = checked(body.rule)
    with c.sessions() as session:
        return count_segment(session, segment, today(c))._asdict()
