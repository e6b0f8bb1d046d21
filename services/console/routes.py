"""The console's pages (issue 16): Contacts, Resources, Messengers, Templates, Accounts.

Each page needs a signed-in session (the sign-in page otherwise); its forms post to the
``/api/v1`` JSON routes with the session's CSRF token, so the rules live there alone.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from services import access, auth
from services.analytics import sharing
from services.analytics.charts import RuleSet
from services.analytics.dashboard import FromMonth, ToMonth
from services.bootstrap import AppDep
from services.console import pages
from services.domain.roles import Role
from services.experiments.routes import board_for
from services.json_bodies import JSONBodyRoute

router = APIRouter(route_class=JSONBodyRoute, include_in_schema=False)
ASSET_NAME = re.compile(r"^[a-z][a-z0-9-]*\.(js|css)$")
MEDIA = {"js": "text/javascript", "css": "text/css"}


def page(request: Request, name: str, active: str, **values: Any) -> Response:
    """The console page ``name`` for the signed-in staff member; the sign-in page
    otherwise. A page of a route the role may not read answers 403, saying why."""
    current = auth.signed_in(request)
    if current is None:
        return RedirectResponse("/", status_code=303)
    reads = values.pop("reads", "")
    reason = access.refusal_for(Role(current.role), "GET", reads) if reads else ""
    if reason:
        return pages.render("forbidden.html", current, active, status=403, reason=reason)
    return pages.render(name, current, active, **values)


@router.get("/ui/console/{name}")
def asset(name: str) -> Response:
    """The console's own scripts and styles (no CDN, no build step)."""
    path = pages.TEMPLATES / name
    if not ASSET_NAME.match(name) or not path.is_file():
        raise HTTPException(404, "no such file")
    media = MEDIA[name.rsplit(".", 1)[1]]
    return FileResponse(path, media_type=media, headers={"Cache-Control": "no-cache"})


@router.get("/contacts")
def contacts_page(request: Request) -> Response:
    return page(request, "contacts.html", "/contacts", reads="/api/v1/contacts")


@router.get("/contacts/{external_id}")
def contact_page(request: Request, external_id: str) -> Response:
    return page(
        request,
        "contact.html",
        "/contacts",
        external_id=external_id,
        reads="/api/v1/contacts/{external_id}",
    )


@router.get("/resources")
def resources_page(request: Request) -> Response:
    return page(request, "resources.html", "/resources")


@router.get("/messengers")
def messengers_page(request: Request) -> Response:
    return page(request, "messengers.html", "/messengers")


@router.get("/templates")
def templates_page(request: Request) -> Response:
    return page(request, "templates.html", "/templates")


@router.get("/accounts")
def accounts_page(request: Request) -> Response:
    return page(request, "accounts.html", "/accounts", reads="/api/v1/accounts")


@router.get("/did-it-work")
def did_it_work_page(
    request: Request,
    c: AppDep,
    start: FromMonth = None,
    end: ToMonth = None,
    rules: RuleSet = RuleSet.IHI,
) -> Response:
    """Experiments' lift, the global holdout, p-charts and the run chart (issue 17)."""
    current = auth.signed_in(request)
    if current is None:
        return RedirectResponse("/", status_code=303)
    min_cell = 0 if sharing.exact_for(current.role) else c.settings.min_cell
    board = board_for(c, start, end, rules, min_cell)
    return page(request, "did-it-work.html", "/", reads="/api/v1/experiments", board=board)
