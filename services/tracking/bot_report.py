"""The bot report: hits kept but not counted (HEAD requests, link scanners, image
proxies, clicks within seconds of delivery), by reason and event type.

``GET /api/v1/reports/bots?from=YYYY-MM-DD&to=YYYY-MM-DD`` (both optional, inclusive).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import func, select

from services.auth import Authorized
from services.bootstrap import AppDep
from services.db.models import EngagementEvent
from services.json_bodies import JSONBodyRoute

router = APIRouter(route_class=JSONBodyRoute, tags=["reports"])


class BotRow(BaseModel):
    reason: str
    type: str
    events: int
    people: int


class BotReport(BaseModel):
    flagged: int
    counted: int
    rows: list[BotRow]


@router.get("/api/v1/reports/bots", response_model=BotReport)
def bot_report(
    c: AppDep,
    _: Authorized,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> BotReport:
    """Machine hits (flagged, not counted) by reason and type, and the counted total."""
    E = EngagementEvent
    where = []
    if start is not None:
        where.append(E.occurred_at >= datetime.combine(start, time(), UTC))
    if end is not None and end < date.max:
        where.append(E.occurred_at < datetime.combine(end + timedelta(days=1), time(), UTC))
    reason = func.coalesce(E.bot_reason, "unknown")
    stmt = (
        select(reason, E.type, func.count(), func.count(func.distinct(E.person)))
        .where(E.bot.is_(True), *where)
        .group_by(reason, E.type)
        .order_by(reason, E.type)
    )
    with c.sessions() as session:
        rows = [
            BotRow(reason=r, type=t, events=n, people=p) for r, t, n, p in session.execute(stmt)
        ]
        counted = session.scalar(
            select(func.count()).select_from(E).where(E.bot.is_(False), *where)
        )
    return BotReport(flagged=sum(r.events for r in rows), counted=int(counted or 0), rows=rows)
