"""Our own console pages, rendered with Jinja2 (autoescape) from ``templates/console/``.

One layout (``layout.html``) holds the navigation, the skip link, the sign-out form with
the session's CSRF token and the "not for sharing" marker with the signed-in role. Pages
show a button or a form only when the role may use it (``services.access.may``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services import access, sessions

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "console"
#: Scripts and styles come only from this server; previews render in a sandboxed frame.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' "
    "'unsafe-inline'; script-src 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
#: The navigation: (label, path, admins only).
NAV = (
    ("Dashboard", "/", False),
    ("Campaigns", "/campaigns", False),
    ("Journeys", "/journeys", False),
    ("Audiences", "/audiences", False),
    ("Templates", "/templates", False),
    ("Contacts", "/contacts", False),
    ("Resources", "/resources", False),
    ("Messengers", "/messengers", False),
    ("Audit", "/audit", False),
    ("Accounts", "/accounts", True),
    ("Stage map", "/stage-map", True),
)
ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def nav_links(current: sessions.Current) -> list[tuple[str, str]]:
    """(label, path) of the pages the signed-in role may open."""
    admin = current.role == "admin"
    return [(label, path) for label, path, admins in NAV if admin or not admins]


def context(current: sessions.Current, active: str) -> dict[str, Any]:
    """What the layout needs: who is signed in, the nav, the CSRF token, ``may``."""

    def may(method: str, route: str) -> bool:
        return access.may(current.role, method, route)

    return {
        "account": current.account,
        "role": current.role,
        "csrf_token": current.csrf_token,
        "nav": nav_links(current),
        "active": active,
        "may": may,
    }


def render(
    name: str, current: sessions.Current, active: str, status: int = 200, **values: Any
) -> HTMLResponse:
    """The page ``name`` inside the layout, for the signed-in ``current``."""
    body = ENVIRONMENT.get_template(name).render(context(current, active) | values)
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def header_html(current: sessions.Current, active: str, subtitle: str) -> str:
    """The layout's header (nav, sign-out, role marker) for the static pages in
    ``templates/web`` (their ``<!--header-->`` mark)."""
    values = context(current, active) | {"subtitle": subtitle}
    return ENVIRONMENT.get_template("header.html").render(values)
