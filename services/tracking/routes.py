"""Engagement in: ``POST /api/v1/events``, tracked links, and the public endpoints
recipients hit (/r redirect, /o open pixel, /u unsubscribe, SendGrid webhooks)."""

from __future__ import annotations

import base64
import logging
import re
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from services.analytics.prometheus import CLICKS, WEBHOOK_FAILURES
from services.auth import Authorized
from services.bootstrap import AppDep, Container
from services.campaigns.channels.email import verify_event_webhook
from services.domain.consent import Consent
from services.domain.inputs import parse_json
from services.domain.pseudonyms import pseudonymise, visitor_ref
from services.guards import limit_for
from services.ids import new_token
from services.journeys.identity import note_click, resolve_nowait, valid_visitor
from services.json_bodies import JSONBodyRoute
from services.service_layer import handlers
from services.staff_input import StaffInput
from services.tracking import consent, webhooks
from services.tracking import preferences as preference_centre
from services.tracking.bots import bot_reason
from services.tracking.links import (
    LRU,
    MISS,
    LinkError,
    cached,
    create_link,
    lookup_link,
    lookup_send,
)
from services.tracking.tokens import TokenClaims

log = logging.getLogger(__name__)
router = APIRouter(route_class=JSONBodyRoute)
VISITOR_COOKIE = "ww_vid"
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
TOKEN_CACHE_SIZE = 50_000
NO_REFERRER = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


async def read_json(request: Request) -> Any:
    body = await request.body()
    if len(body) > (limit := limit_for(request.scope["path"])):
        raise HTTPException(413, f"request body larger than {limit} bytes")
    try:
        return parse_json(body)
    except ValueError as exc:  # UnicodeDecodeError and too deep too
        raise HTTPException(422, f"body: not valid JSON ({exc})") from None


@router.post("/api/v1/events", status_code=202, tags=["engagement"])
async def post_events(request: Request, c: AppDep, _: Authorized) -> dict[str, Any]:
    """Accept 1-1000 engagement events; duplicates (by ``event_id``) are not counted twice."""
    items = await read_json(request)
    if not isinstance(items, list) or not items:
        raise HTTPException(422, "body: must be a JSON array of 1 to 1000 event objects")
    if len(items) > 1000:
        raise HTTPException(422, f"body: {len(items)} events; at most 1000 per request")
    if not all(isinstance(item, dict) for item in items):
        raise HTTPException(422, "body: every item must be a JSON object")
    result = await _run(request, _accept, c, items)
    return {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
    }


def _accept(c: Container, items: list[dict[str, Any]]) -> handlers.IngestResult:
    """The events use case over SQL, counted in /metrics once committed."""
    now, to_record = c.ingest.now(), c.ingest.to_record
    result = handlers.accept_events(c.unit_of_work(), items, now=now, to_record=to_record)
    c.ingest.observe(result)
    return result


class LinkIn(StaffInput):
    destination: str = Field(max_length=2000)
    campaign_id: str | None = Field(default=None, max_length=40)
    channel: str | None = Field(default=None, pattern="^(email|social|toolkit|web)$")
    messenger_id: str | None = Field(default=None, max_length=100)
    resource_id: str | None = Field(default=None, max_length=100)


@router.post("/api/v1/links", status_code=201, tags=["links"])
def post_link(body: LinkIn, c: AppDep, _: Authorized) -> dict[str, str]:
    try:
        with c.sessions() as session, session.begin():
            link = create_link(session, c.settings, **body.model_dump())
    except LinkError as exc:
        raise HTTPException(422, str(exc)) from None
    token = c.tokens.sign("r", link.id)
    return {"id": link.id, "token": token, "url": f"{c.settings.public_base_url}/r/{token}"}


async def redirect(request: Request) -> Response:
    """``GET|HEAD /r/{token}``: 302 to the stored destination once the click is in SQL
    (flagged if a bot). Async: links and sends come from the per-process cache (a miss
    is looked up in a thread); the click is committed with the others of its moment by
    the Gatherer (group commit). If SQL fails, the person is redirected all the same and
    the click is durably queued in the click spool first (services/tracking/spool.py)."""
    c: Container = request.app.state.container  # no dependency resolution per click
    claims = _verified(c, request.path_params["token"], "r")
    if claims is None:
        return _not_found()
    link = await _lookup(c, c.links, claims.ref, lookup_link)
    send = await _lookup(c, c.sends, claims.send_id, lookup_send) if link else None
    if link is None or (claims.send_id and send is None):
        return _not_found()
    vid, new_visitor = request.cookies.get(VISITOR_COOKIE), False
    if send is None and not valid_visitor(vid):
        vid, new_visitor = new_token(), True
    person = send.person if send else await _person(c, visitor_ref(vid or ""))
    reason = bot_reason(request, sent_at=send.sent_at if send else None, now=(now := c.now()))
    click = handlers.click(
        link, send_id=send.id if send else None, person=person, now=now, bot_reason=reason
    )
    await c.click_hand_over.store(click)  # committed (or spooled, if SQL fails) before the 302
    CLICKS.inc()
    if send is not None and vid and reason is None:  # their own email, in a known browser
        note_click(c, vid, send)  # never waits: the merge runs in its own thread
    destination = link.destination
    if vid and send is None and urlsplit(destination).hostname in c.settings.allowed_hosts:
        destination = _with_param(destination, VISITOR_COOKIE, vid)
    response = Response(status_code=302, headers=NO_REFERRER | {"location": _location(destination)})
    if new_visitor and vid:  # what set_cookie writes, without http.cookies per click
        secure = "; Secure" if c.settings.public_base_url.startswith("https") else ""
        cookie = f"{VISITOR_COOKIE}={vid}; HttpOnly; Max-Age={365 * 86400}; Path=/; SameSite=lax"
        response.raw_headers.append((b"set-cookie", (cookie + secure).encode("latin-1")))
    return response


async def open_pixel(request: Request) -> Response:
    """``GET /o/{token}.gif``: the open pixel, once the open is stored as a click is
    (flagged if a bot)."""
    c: Container = request.app.state.container  # no dependency resolution per click
    claims = _verified(c, request.path_params["token"], "o")
    send = await _lookup(c, c.sends, claims.ref, lookup_send) if claims else None
    if send is not None:
        reason = bot_reason(request, sent_at=send.sent_at, now=(now := c.now()), pixel=True)
        await c.click_hand_over.store(
            handlers.tracked(
                "email.open",
                send.person,
                now,
                reason,
                campaign_id=send.campaign_id,
                send_id=send.id,
                channel="email",
            ),
        )
    return Response(PIXEL, media_type="image/gif", headers=NO_REFERRER)


# Plain Starlette routes (no FastAPI parameter machinery per click); not in the OpenAPI.
router.add_route("/r/{token}", redirect, methods=["GET", "HEAD"], include_in_schema=False)
router.add_route("/o/{token}.gif", open_pixel, methods=["GET"], include_in_schema=False)
_CLICK_PATHS = (
    (re.compile(r"/r/(?P<token>[^/]+)"), ("GET", "HEAD"), redirect),
    (re.compile(r"/o/(?P<token>[^/]+)\.gif"), ("GET",), open_pixel),
)


class ClickRoutes:
    """ASGI middleware answering ``/r`` and ``/o`` itself, before FastAPI's router and
    exception/exit-stack layers (a few tens of microseconds per click). Installed inside
    the guards (services/api.py), so clicks keep the security headers; any other
    request, method or path shape goes on to the app and its routes above."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"][:3] in ("/r/", "/o/")
            and not scope.get("root_path")
        ):
            for pattern, methods, endpoint in _CLICK_PATHS:
                match = pattern.fullmatch(scope["path"])
                if match and scope["method"] in methods:
                    scope["path_params"] = match.groupdict()
                    response = await endpoint(Request(scope, receive))
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _verified(c: Container, token: str, kind: str) -> TokenClaims | None:
    """``c.tokens.verify``, remembering genuine tokens (a click on a link already seen
    skips the HMAC); forged or malformed ones are checked every time, never stored."""
    cache = c.verified_tokens
    claims = cache.get((token, kind))
    if claims is None:
        claims = c.tokens.verify(token, kind)
        if claims is not None:
            if len(cache) >= TOKEN_CACHE_SIZE:
                cache.clear()
            cache[(token, kind)] = claims
    return claims


async def _lookup(c: Container, cache: LRU[Any], key: str | None, fetch: Any) -> Any:
    """A cached link or send; on a miss, the SQL look-up runs in a thread."""
    if not key:
        return None
    found = cached(cache, key)
    if found is not MISS:
        return found
    return await run_in_threadpool(fetch, c, key)


async def _person(c: Container, person_ref: str) -> str:
    """The pseudonym ``person_ref`` counts as; the alias map is re-read in a thread."""
    pseudonym = pseudonymise(c.ingest.secret, person_ref)
    resolved = resolve_nowait(c.ingest.sessions, pseudonym)
    if resolved is not None:
        return resolved
    return str(await run_in_threadpool(c.ingest.person, person_ref))


@lru_cache(maxsize=4096)
def _location(url: str) -> str:
    """The Location header RedirectResponse would send for ``url`` (quoted once per URL)."""
    return quote(url, safe=":/%#?=@[]!$&'()*+,;")


def _not_found() -> Response:
    return HTMLResponse(NOT_FOUND_PAGE, status_code=404, headers=NO_REFERRER)


@router.get("/u/{token}", include_in_schema=False)
def preferences(token: str, c: AppDep) -> Response:
    """The preference page: shows the choice, changes nothing (link scanners GET it)."""
    claims = c.tokens.verify(token, "u")
    send = lookup_send(c, claims.ref) if claims else None
    if send is None:
        return HTMLResponse(NOT_FOUND_PAGE, status_code=404, headers=NO_REFERRER)
    state = consent.consent_state(c, send)  # issue 4: show the current state
    if state["email"] == Consent.UNSUBSCRIBED or state["suppressed"]:
        return HTMLResponse(PREFERENCES_OFF_PAGE, headers=NO_REFERRER)
    return HTMLResponse(preference_centre.page(c, token, send), headers=NO_REFERRER)


@router.post("/u/{token}", include_in_schema=False)
def unsubscribe(token: str, c: AppDep) -> Response:
    """RFC 8058 one-click unsubscribe: idempotent, 200."""
    claims = c.tokens.verify(token, "u")
    send = lookup_send(c, claims.ref) if claims else None
    if send is None:
        return HTMLResponse(NOT_FOUND_PAGE, status_code=404, headers=NO_REFERRER)
    consent.unsubscribe(c, send)
    return HTMLResponse(UNSUBSCRIBED_PAGE, headers=NO_REFERRER)


@router.post("/webhooks/sendgrid/events", include_in_schema=False)
async def sendgrid_events(request: Request, c: AppDep) -> Response:
    body = await request.body()
    if len(body) > limit_for(request.scope["path"]):
        return JSONResponse({"error": "body too large"}, status_code=413)
    if not webhooks.signature_ok(c.settings, request.headers, body, verify=verify_event_webhook):
        WEBHOOK_FAILURES.inc()
        return JSONResponse({"error": "signature verification failed"}, status_code=403)
    try:
        items = parse_json(body)
        if not isinstance(items, list):
            raise ValueError("not a JSON array")
    except ValueError as exc:  # UnicodeDecodeError and too deep too
        return JSONResponse({"error": f"body: {exc}"}, status_code=400)
    result = await _run(request, webhooks.ingest_events, c, items)
    return JSONResponse(result)


async def _run(request: Request, fn: Any, *args: Any) -> Any:
    return await run_in_threadpool(fn, *args)


def _with_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=query + urlencode({name: value})))


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="referrer" content="no-referrer">
<title>{title}</title><style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1b1b1b}}
button{{font:inherit;padding:.6rem 1.2rem;border-radius:.4rem;border:1px solid #555;background:#0b5;color:#fff;cursor:pointer}}</style>
</head><body>{body}</body></html>"""
NOT_FOUND_PAGE = _PAGE.format(
    title="Link not found",
    body="<h1>This link is not valid</h1><p>It may have been mistyped or changed.</p>",
)
PREFERENCES_PAGE = _PAGE.format(
    title="Email preferences",
    body="<h1>Email preferences</h1><p>You receive outreach emails from the network.</p>"
    '<form method="post" action="{action}"><button type="submit">Unsubscribe from these emails</button></form>',
).replace("{{action}}", "{action}")
PREFERENCES_OFF_PAGE = _PAGE.format(
    title="Email preferences",
    body="<h1>Email preferences</h1><p>You are unsubscribed: you do not receive outreach emails from the network.</p>",
)
UNSUBSCRIBED_PAGE = _PAGE.format(
    title="Unsubscribed",
    body="<h1>You are unsubscribed</h1><p>You will not receive these emails any more.</p>",
)
