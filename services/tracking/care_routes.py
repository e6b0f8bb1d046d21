"""The person's own pages beyond the one-click unsubscribe: the preference centre's
form (``POST /u/{token}/preferences``) and the double opt-in confirmation
(``/c/{token}``). A GET changes nothing (link scanners GET): only the POST does."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from services.bootstrap import AppDep
from services.campaigns.confirmations import confirm
from services.guards import limit_for
from services.json_bodies import JSONBodyRoute
from services.tracking import preferences
from services.tracking.links import lookup_send
from services.tracking.routes import _PAGE, NO_REFERRER, NOT_FOUND_PAGE

router = APIRouter(route_class=JSONBodyRoute, include_in_schema=False)
CONFIRM_PAGE = _PAGE.format(
    title="Confirm your email",
    body='<h1>Confirm your email</h1><form method="post" action="{action}">'
    '<button type="submit">Yes, send me emails from the network</button></form>',
).replace("{{action}}", "{action}")
CONFIRMED_PAGE = _PAGE.format(
    title="Confirmed", body="<h1>Thank you</h1><p>Your email is confirmed.</p>"
)


@router.post("/u/{token}/preferences")
async def save_preferences(token: str, request: Request, c: AppDep) -> Response:
    """Save topics and frequency: the form must carry the token, from our own origin."""
    body = await request.body()
    if len(body) > limit_for(request.scope["path"]):
        return HTMLResponse("request too large", status_code=413, headers=NO_REFERRER)
    claims = c.tokens.verify(token, "u")
    send = await run_in_threadpool(lookup_send, c, claims.ref) if claims else None
    if send is None:
        return HTMLResponse(NOT_FOUND_PAGE, status_code=404, headers=NO_REFERRER)
    choice = preferences.parse_choice(body, token)
    origin_ok = preferences.same_origin(request.headers.get("origin"), c.settings.public_base_url)
    if choice is None or not origin_ok:
        return HTMLResponse("cross-site form refused", status_code=403, headers=NO_REFERRER)
    await run_in_threadpool(preferences.save, c, send, choice)
    page = await run_in_threadpool(preferences.page, c, token, send, True)
    return HTMLResponse(page, headers=NO_REFERRER)


@router.get("/c/{token}")
def confirmation_page(token: str, c: AppDep) -> Response:
    if c.tokens.verify(token, "c") is None:
        return HTMLResponse(NOT_FOUND_PAGE, status_code=404, headers=NO_REFERRER)
    return HTMLResponse(CONFIRM_PAGE.replace("{action}", f"/c/{token}"), headers=NO_REFERRER)


@router.post("/c/{token}")
def confirm_email(token: str, c: AppDep) -> Response:
    """The person confirms their email consent (double opt-in); idempotent."""
    claims = c.tokens.verify(token, "c")
    if claims is None or not claims.ref.isdigit():
        return HTMLResponse(NOT_FOUND_PAGE, status_code=404, headers=NO_REFERRER)
    confirm(c, int(claims.ref))
    return HTMLResponse(CONFIRMED_PAGE, headers=NO_REFERRER)
