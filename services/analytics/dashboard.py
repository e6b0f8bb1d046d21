"""The analysts' dashboard (``GET /``), the staff pages (campaigns, template preview),
their login, the live counter stream (``GET /api/v1/live``, server-sent events) and the
panels that the stage metrics and attribution endpoints do not answer
(``GET /api/v1/dashboard/panels``).

Pages are static HTML with their own scripts and styles under ``templates/web/``, served
from here: no CDN, works offline. Every number comes from the public API.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from services import access, audit, auth, sessions, signin
from services.analytics import panels, sharing
from services.analytics.metrics import QueryError
from services.analytics.window_credits import read_window
from services.auth import SESSION_COOKIE, Authorized
from services.bootstrap import AppDep, Container
from services.console.pages import SECURITY_HEADERS, header_html
from services.db.models import StageFact
from services.domain.attribution import DEFAULT_MODEL, Model
from services.domain.periods import PeriodKind, period_bounds, period_of
from services.domain.roles import ActorKind
from services.json_bodies import JSONBodyRoute

if TYPE_CHECKING:
    from services.config import Settings

router = APIRouter(route_class=JSONBodyRoute, include_in_schema=False)
PAGES = Path(__file__).resolve().parents[2] / "templates" / "web"
LIVE_INTERVAL = 1.0
STAFF_PAGES = {"campaigns": "campaigns.html", "preview": "preview.html", "audit": "audit.html"}
ASSETS = {
    "app.css": "text/css",
    "app.js": "text/javascript",
    "dashboard.js": "text/javascript",
    "campaigns.js": "text/javascript",
    "campaign.js": "text/javascript",
    "preview.js": "text/javascript",
    "audit.js": "text/javascript",
}
HEADER_MARK = re.compile(r"<!--header (\S+) (.*?)-->")
FromMonth = Annotated[str | None, Query(alias="from", pattern=r"^\d{4}-\d{2}$")]
ToMonth = Annotated[str | None, Query(alias="to", pattern=r"^\d{4}-\d{2}$")]


def _page(name: str) -> str:
    return (PAGES / name).read_text("utf-8")


def _html(
    name: str, status: int = 200, error: str = "", signed_in: sessions.Current | None = None
) -> HTMLResponse:
    """A page; a signed-in one gets the console's header (its ``<!--header PATH
    SUBTITLE-->`` mark): the nav, and the sign-out form with the session's CSRF token,
    where its scripts read it too."""
    body = _page(name)
    if error:
        body = body.replace("<!--error-->", f'<p class="error" role="alert">{error}</p>')
    if signed_in is not None:
        body = HEADER_MARK.sub(lambda m: header_html(signed_in, m[1], m[2]), body, count=1)
        if not access.may(signed_in.role, "POST", "/api/v1/campaigns"):
            body = CHANGES_MARK.sub("", body)  # a role that may not change sees no controls
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


#: What a static page shows only to roles that may change outreach (forms, buttons).
CHANGES_MARK = re.compile(r"<!--changes-->.*?<!--/changes-->", re.S)


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request) -> Response:
    current = auth.signed_in(request)
    return _html("dashboard.html", signed_in=current) if current else _html("login.html")


@router.get("/campaigns", response_class=HTMLResponse)
@router.get("/preview", response_class=HTMLResponse)
@router.get("/audit", response_class=HTMLResponse)
@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def staff_page(request: Request) -> Response:
    current = auth.signed_in(request)
    if current is None:
        return RedirectResponse("/", status_code=303)
    name = STAFF_PAGES.get(request.url.path.strip("/"), "campaign.html")
    return _html(name, signed_in=current)


@router.get("/ui/{name}")
def asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(404, "no such file")
    return FileResponse(
        PAGES / name, media_type=ASSETS[name], headers={"Cache-Control": "no-cache"}
    )


@router.post("/login")
def login(
    request: Request,
    c: AppDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    token: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Email and password (or the API token). A new session at every sign-in; the one
    the browser held before is revoked. A form posted from another site (its Origin says
    so) is refused: login CSRF. Too many failed attempts: 429 with Retry-After."""
    if auth.foreign_origin(request, required=False):
        return _html("login.html", 403, "Sign in from this site's own page.")
    client = request.client.host if request.client else ""
    outcome = signin.attempt(c, request.app.state.sign_in_limits, client, email, password, token)
    if outcome.actor is None:
        page = _html("login.html", outcome.status, outcome.message)
        if outcome.retry_after:
            page.headers["Retry-After"] = str(outcome.retry_after)
        return page
    account = (
        outcome.actor.id
        if outcome.actor.kind is ActorKind.ACCOUNT
        else auth.token_session_account(c.settings)
    )
    new = sessions.start(
        c, account, outcome.actor.role, replacing=request.cookies.get(SESSION_COOKIE, "")
    )
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(SESSION_COOKIE, new.session_id, max_age=new.max_age, **_cookie(c.settings))
    return response


@router.post("/logout")
def logout(request: Request, c: AppDep, csrf_token: str = Form("")) -> Response:
    """Revokes the session on the server (a copy of the cookie stops working too)."""
    current = auth.signed_in(request, touch=False)
    if current is not None:
        auth.check_same_site(request, current, csrf_token)
        sessions.revoke(c, request.cookies.get(SESSION_COOKIE, ""))
        actor = auth.session_actor(current)
        audit.record(c, actor, "sign_out", "session", actor.id)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, **_cookie(c.settings))
    return response


def _cookie(settings: Settings) -> dict[str, Any]:
    """The session cookie's attributes: out of scripts' reach, never sent cross-site,
    over https only unless this is plain-http dev."""
    secure = settings.public_base_url.startswith("https") or settings.env != "dev"
    return {"httponly": True, "samesite": "strict", "secure": secure, "path": "/"}


def month_range(start: str | None, end: str | None, now: datetime, tz: str) -> tuple[str, str]:
    """The selected months (``YYYY-MM``); default: the twelve months up to this one."""
    last = _month((end or period_of(now, PeriodKind.MONTH, tz))[:7], "to")
    first = _month(start[:7], "from") if start else last
    if not start:
        for _ in range(11):
            first = _previous_month(first)
    if first > last:
        raise HTTPException(
            422, [{"field": "to", "error": f"to: {last!r} is before from {first!r}"}]
        )
    return first, last


def _month(label: str, field: str) -> str:
    """``label`` if it is a month the data can hold (``YYYY-MM``, years 1901–2199); 422."""
    year, month = int(label[:4]), int(label[5:7])
    if not (1901 <= year <= 2199 and 1 <= month <= 12):
        raise HTTPException(
            422,
            [
                {
                    "field": field,
                    "error": f"{field}: {label!r} is not a month from 1901-01 to 2199-12",
                }
            ],
        )
    return label


def _previous_month(label: str) -> str:
    year, month = int(label[:4]), int(label[5:7])
    return f"{year - (month == 1):04d}-{(month - 2) % 12 + 1:02d}"


def snapshot(
    container: Container, start: str | None = None, end: str | None = None
) -> dict[str, Any]:
    """Unique people per stage today, this month, and over the selected months."""
    now = container.now()
    tz = container.settings.timezone
    first, last = month_range(start, end, now, tz)
    out: dict[str, Any] = {"at": now.isoformat()}
    with container.sessions() as session:
        for label, kind in (("today", PeriodKind.DAY), ("month", PeriodKind.MONTH)):
            period = period_of(now, kind, tz)
            rows = session.execute(
                select(StageFact.stage, func.count())
                .where(StageFact.period_kind == kind.value, StageFact.period == period)
                .group_by(StageFact.stage)
            ).all()
            counts = {"aware": 0, "use": 0, "produce": 0} | {stage: n for stage, n in rows}
            out[label] = {"period": period, **counts}
        out["range"] = {"from": first, "to": last, **panels.range_counts(session, first, last)}
    return out


@router.get("/api/v1/live")
async def live(
    request: Request,
    container: AppDep,
    _: Authorized,
    start: FromMonth = None,
    end: ToMonth = None,
) -> StreamingResponse:
    """Counter snapshots as server-sent events, one a second, only when they change.

    ``from``/``to`` (months) select the range counted besides today and this month.
    A stream opened by a dashboard sign-in ends (``event: signed-out``) with its session.
    """
    month_range(start, end, container.now(), container.settings.timezone)  # 422 before streaming
    by_cookie = getattr(request.state, "staff_session", None) is not None
    min_cell = _min_cell(request, container)

    async def stream() -> AsyncIterator[str]:
        last = None
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            if by_cookie and not await run_in_threadpool(auth.signed_in, request, False):
                yield "event: signed-out\ndata: {}\n\n"
                return
            snap = await run_in_threadpool(snapshot, container, start, end)
            snap = sharing.counters(snap, min_cell) if min_cell else snap
            key = json.dumps({k: v for k, v in snap.items() if k != "at"}, sort_keys=True)
            if key != last:
                last = key
                yield f"event: counters\ndata: {json.dumps(snap)}\n\n"
            else:
                yield ": keep-alive\n\n"
            await asyncio.sleep(LIVE_INTERVAL)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


def _min_cell(request: Request, c: Container) -> int:
    return sharing.min_cell(auth.role_of(request), c.settings.min_cell)


@router.get("/api/v1/dashboard/panels")
def get_panels(
    request: Request,
    c: AppDep,
    _: Authorized,
    start: FromMonth = None,
    end: ToMonth = None,
    model: Model = DEFAULT_MODEL,
    window_days: Annotated[int | None, Query(ge=1, le=3650)] = None,
) -> dict[str, Any]:
    """Bot/scanner report, messenger leaderboard, dead letters, stream lag and workers."""
    tz = c.settings.timezone
    first, last = month_range(start, end, c.now(), tz)
    window = window_days or c.settings.attribution_window_days
    since, until = (
        period_bounds(first, PeriodKind.MONTH, tz)[0],
        period_bounds(last, PeriodKind.MONTH, tz)[1],
    )

    def read(session: Session) -> tuple[Any, Any, Any]:
        board = panels.leaderboard(session, model, window, first, last)
        return board, panels.bot_report(session, since, until), panels.workers(session)

    try:
        board, bots, workers = read_window(c.sessions, c.settings, window, c.now(), read)
    except QueryError as exc:
        raise HTTPException(422, [{"field": exc.field, "error": str(exc)}]) from None
    stream = panels.stream_health(c).get() | {"workers": workers}
    if min_cell := _min_cell(request, c):
        board = sharing.leaderboard(board, min_cell)
    return {
        "from": first,
        "to": last,
        "model": Model(model).value,
        "window_days": window,
        "leaderboard": board,
        "bots": bots,
        "stream": stream,
    }
