"""The analysts' dashboard (``GET /``), its login, and the live counter stream
(``GET /api/v1/live``, server-sent events)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from services.auth import SESSION_COOKIE, Authorized, session_value, token_ok
from services.db.models import StageFact
from services.domain.periods import PeriodKind, period_of

router = APIRouter(include_in_schema=False)
PAGES = Path(__file__).resolve().parents[2] / "templates" / "web"
LIVE_INTERVAL = 1.0


def _page(name: str) -> str:
    return (PAGES / name).read_text("utf-8")


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request) -> Response:
    settings = request.app.state.container.settings
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if cookie != session_value(settings):
        return HTMLResponse(_page("login.html"))
    return HTMLResponse(_page("dashboard.html"))


@router.post("/login")
def login(request: Request, token: str = Form(...)) -> Response:
    settings = request.app.state.container.settings
    if not token_ok(settings, token.strip()):
        return HTMLResponse(_page("login.html").replace("<!--error-->", '<p class="error" role="alert">That token is not right.</p>'), status_code=401)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE, session_value(settings), httponly=True, samesite="strict",
        secure=settings.public_base_url.startswith("https") or settings.env != "dev", max_age=12 * 3600,
    )
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def snapshot(container: Any) -> dict[str, Any]:
    """Unique people per stage today, this month, and overall months seen."""
    now = container.now()
    tz = container.settings.timezone
    out: dict[str, Any] = {"at": now.isoformat()}
    with container.sessions() as session:
        for label, kind in (("today", PeriodKind.DAY), ("month", PeriodKind.MONTH)):
            period = period_of(now, kind, tz)
            rows = session.execute(
                select(StageFact.stage, func.count()).where(StageFact.period_kind == kind.value, StageFact.period == period).group_by(StageFact.stage)
            ).all()
            counts = {"aware": 0, "use": 0, "produce": 0} | {stage: n for stage, n in rows}
            out[label] = {"period": period, **counts}
    return out


@router.get("/api/v1/live")
async def live(request: Request, _: Authorized) -> StreamingResponse:
    """Counter snapshots as server-sent events, one a second, only when they change."""
    container = request.app.state.container

    async def stream() -> AsyncIterator[str]:
        last = None
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            snap = await run_in_threadpool(snapshot, container)
            key = json.dumps({k: v for k, v in snap.items() if k != "at"}, sort_keys=True)
            if key != last:
                last = key
                yield f"event: counters\ndata: {json.dumps(snap)}\n\n"
            else:
                yield ": keep-alive\n\n"
            await asyncio.sleep(LIVE_INTERVAL)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
