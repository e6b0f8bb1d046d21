"""Toolkit endpoints: the staff list ``GET /api/v1/campaigns/{id}/toolkits`` and the
messenger's public page ``GET /t/{token}`` with its flyer, QR codes and share button.

The page is the messenger's own, so a page view records ``toolkit.opened`` and a share
``toolkit.shared`` as the messenger's own engagement: the person is the messenger
(pseudonym of ``messenger:<id>``, whatever the browser), credited to the campaign (channel
``toolkit``) and never to the messenger, who did not reach themselves. Only people who
follow the messenger's links or QR codes (``/r/``) count for the messenger. Automated hits
are recorded flagged, and count for nothing.
"""

from __future__ import annotations

import re
import secrets
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from services.auth import Authorized
from services.bootstrap import AppDep, Container
from services.campaigns import toolkit_pages as pages
from services.campaigns.toolkits import ToolkitError, ToolkitView, ensure_toolkits, load_toolkit
from services.domain.events import format_timestamp
from services.domain.inputs import parse_json
from services.domain.lifecycle import CampaignStatus
from services.domain.pseudonyms import messenger_ref
from services.ids import new_id
from services.json_bodies import JSONBodyRoute
from services.tracking.bots import bot_reason
from services.tracking.routes import NOT_FOUND_PAGE

router = APIRouter(route_class=JSONBodyRoute)
PRIVATE = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}
QR_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, max-age=86400",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}
MAX_SHARE_BODY = 2048
VIA = {"sms", "whatsapp", "email", "social", "print", "other"}


@router.get("/api/v1/campaigns/{campaign_id}/toolkits", tags=["staff"])
def get_toolkits(campaign_id: str, c: AppDep, _: Authorized) -> list[dict[str, Any]]:
    """Each messenger's toolkit: page URL and tracked links with their QR codes (built on first ask)."""
    try:
        views = ensure_toolkits(c, campaign_id)
    except ToolkitError as exc:
        status = 404 if str(exc).startswith("unknown campaign") else 409
        raise HTTPException(status, str(exc)) from None
    base = c.settings.public_base_url
    return [
        {
            "messenger_id": v.messenger["id"],
            "token": v.token,
            "url": f"{base}/t/{v.token}",
            "links": [
                {
                    "resource_id": x.resource_id,
                    "url": x.url,
                    "qr_svg_url": f"{base}/t/{v.token}/qr/{x.resource_id}.svg",
                    "qr_png_url": f"{base}/t/{v.token}/qr/{x.resource_id}.png",
                }
                for x in v.links
            ],
        }
        for v in views
    ]


@router.get("/api/v1/campaigns/{campaign_id}/toolkits/{messenger_id}/zip", tags=["staff"])
def get_toolkit_zip(campaign_id: str, messenger_id: str, c: AppDep, _: Authorized) -> Response:
    """One messenger's toolkit as a ZIP (page, flyer, messages, QR codes), as
    ``winwin toolkit build`` writes it."""
    try:
        views = ensure_toolkits(c, campaign_id, [messenger_id])
    except ToolkitError as exc:
        raise HTTPException(404, str(exc)) from None
    if not views:
        raise HTTPException(404, "no toolkit for this messenger in this campaign")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "toolkit.zip"
        pages.write_zip(c.renderer.trusted, views[0], path, c.settings.public_base_url)
        data = path.read_bytes()
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"toolkit-{campaign_id}-{messenger_id}")[:120]
    disposition = {"Content-Disposition": f'attachment; filename="{name}.zip"'}
    return Response(data, media_type="application/zip", headers=PRIVATE | disposition)


def _toolkit(c: Container, token: str) -> ToolkitView | None:
    claims = c.tokens.verify(token, "t")
    view = load_toolkit(c, claims.ref) if claims else None
    return view if view is not None and view.campaign_status != CampaignStatus.CANCELLED else None


def _not_found() -> HTMLResponse:
    return HTMLResponse(NOT_FOUND_PAGE, status_code=404, headers=PRIVATE)


def _csp(nonce: str) -> str:
    return (
        f"default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; "
        "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


def _record(c: Container, request: Request, view: ToolkitView, kind: str, **props: Any) -> None:
    """Store a toolkit event of the messenger themselves, credited to the campaign only
    (committed before the page answers)."""
    reason = bot_reason(request, sent_at=None, now=c.now())
    event = {
        "event_id": f"toolkit:{new_id()}",
        "type": kind,
        "occurred_at": format_timestamp(c.now()),
        "person": c.ingest.person(messenger_ref(view.messenger["id"])),
        "campaign_id": view.campaign_id,
        "channel": "toolkit",
        "messenger_id": None,  # the messenger's own engagement: not one they reached
        "resource_id": None,
        "link_id": None,
        "send_id": None,
        "bot": reason is not None,
        "bot_reason": reason,
        "source": "toolkit",
        "properties": props,
    }
    c.ingest.record([event])


@router.get("/t/{token}", include_in_schema=False)
def toolkit_page(token: str, request: Request, c: AppDep) -> Response:
    """The messenger's private page; records ``toolkit.opened``."""
    view = _toolkit(c, token)
    if view is None:
        return _not_found()
    nonce = secrets.token_urlsafe(12)
    html = pages.page_html(
        c.renderer.trusted,
        view,
        qr_prefix=f"/t/{token}/qr/",
        flyer_href=f"/t/{token}/flyer",
        shared_url=f"/t/{token}/shared",
        nonce=nonce,
    )
    _record(c, request, view, "toolkit.opened")
    return HTMLResponse(html, headers=PRIVATE | {"Content-Security-Policy": _csp(nonce)})


@router.get("/t/{token}/flyer", include_in_schema=False)
def toolkit_flyer(token: str, c: AppDep) -> Response:
    """The printable one-page flyer (print stylesheet; the browser saves it as PDF too)."""
    view = _toolkit(c, token)
    if view is None:
        return _not_found()
    nonce = secrets.token_urlsafe(12)
    html = pages.flyer_html(c.renderer.trusted, view, qr_prefix=f"/t/{token}/qr/", nonce=nonce)
    return HTMLResponse(html, headers=PRIVATE | {"Content-Security-Policy": _csp(nonce)})


@router.post("/t/{token}/shared", include_in_schema=False)
async def toolkit_shared(token: str, request: Request, c: AppDep) -> Response:
    """The messenger shared a message (copy or share button): records ``toolkit.shared``.

    Body (optional, JSON, any content type, as ``navigator.sendBeacon`` sends it):
    ``{"via": "sms|whatsapp|email|social|print|other"}``.
    """
    view = await run_in_threadpool(_toolkit, c, token)
    if view is None:
        return _not_found()
    body = await request.body()
    via = "other"
    if body and len(body) <= MAX_SHARE_BODY:
        try:
            given = parse_json(body).get("via")
            via = given if isinstance(given, str) and given in VIA else "other"
        except (ValueError, AttributeError):  # not JSON, too deep, not an object
            pass
    await run_in_threadpool(_record, c, request, view, "toolkit.shared", via=via)
    return Response(status_code=204, headers=PRIVATE)


@router.get("/t/{token}/qr/{name}", include_in_schema=False)
def toolkit_qr(token: str, name: str, c: AppDep) -> Response:
    """A QR code of one of the messenger's tracked links: ``{resource_id}.svg`` or ``.png``."""
    resource_id, dot, ext = name.rpartition(".")
    if not dot or ext not in ("svg", "png"):
        raise HTTPException(404, "QR codes are .svg or .png")
    view = _toolkit(c, token)
    link = next((x for x in view.links if x.resource_id == resource_id), None) if view else None
    if link is None:
        return _not_found()
    if ext == "svg":
        return Response(pages.qr_svg(link.url), media_type="image/svg+xml", headers=QR_HEADERS)
    return Response(pages.qr_png(link.url), media_type="image/png", headers=QR_HEADERS)
