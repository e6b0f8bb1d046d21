"""Access to ``/api/v1``: a bearer token (``WINWIN_API_TOKEN``, an admin, or a service
token with its role), or a sign-in (session cookie) of the API token or a named account.
The role then decides what may be read or changed (``services.access``).

A request signed in by cookie that changes something (POST, PUT, PATCH, DELETE) must
also come from this site (``Origin``, or else ``Referer``, equal to the origin of
``WINWIN_PUBLIC_BASE_URL`` or of the request's own host) and carry the session's CSRF
token (header ``X-CSRF-Token``; the ``csrf_token`` field of an HTML form): 403 with the
reason otherwise. Bearer-token requests need neither: a browser never adds the token by
itself. A body sent to ``/api/v1`` is JSON (``application/json`` or ``+json``): other
content types, such as the ``text/plain`` of a cross-site "simple request", are 415
(save a file upload named in ``services.access.UPLOADS``, e.g. a contacts CSV).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request

from services import sessions
from services.access import body_types, refusal_for
from services.accounts import Actor, token_actor
from services.config import Settings
from services.domain.roles import ActorKind, Role, parse_role

SESSION_COOKIE = "ww_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Who a login with the API token is (the staff console adds named accounts).
TOKEN_ACCOUNT, TOKEN_ROLE = "api-token", "admin"
DEFAULT_PORTS = {"http": "80", "https": "443"}
API_TOKEN_ACTOR = Actor(ActorKind.TOKEN, TOKEN_ACCOUNT, Role.ADMIN)


def token_ok(settings: Settings, given: str) -> bool:
    """Constant-time: the time taken says nothing about how much of the token matched."""
    return hmac.compare_digest(given.encode(), settings.api_token.get_secret_value().encode())


def signed_in(request: Request, touch: bool = True) -> sessions.Current | None:
    """The live session of the request's cookie, or None (also for a session signed in
    with an API token that has been rotated since)."""
    cookie = request.cookies.get(SESSION_COOKIE, "")
    container = request.app.state.container
    current = sessions.find(container, cookie, touch) if cookie else None
    rotated = (
        current is not None
        and current.account.startswith(TOKEN_ACCOUNT)
        and current.account != token_session_account(container.settings)
    )
    return None if rotated else current


def token_session_account(settings: Settings) -> str:
    """The account a console session signed in with the API token is kept under: the
    token's fingerprint goes with it, so rotating a leaked token ends those sessions."""
    token = settings.api_token.get_secret_value().encode()
    return f"{TOKEN_ACCOUNT}:{hashlib.sha256(token).hexdigest()[:16]}"


def origin_of(url: str) -> str:
    """``scheme://host[:port]``, lower case, without the scheme's default port; "" when
    ``url`` has none (``Origin: null`` included)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ""
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    if not scheme or not host:
        return ""
    host = f"[{host}]" if ":" in host else host
    if port is not None and str(port) != DEFAULT_PORTS.get(scheme):
        host += f":{port}"
    return f"{scheme}://{host}"


def foreign_origin(request: Request, required: bool = True) -> str:
    """Why the request does not come from this site, or "" when it does. Without
    ``required``, a request that names no origin at all passes (non-browser clients)."""
    given = request.headers.get("origin") or request.headers.get("referer") or ""
    if not given:
        return "no Origin or Referer header" if required else ""
    settings: Settings = request.app.state.container.settings
    own = {
        origin_of(settings.public_base_url),
        origin_of(f"{request.url.scheme}://{request.headers.get('host', '')}"),
    }
    found = origin_of(given)
    return "" if found and found in own else f"origin {given[:100]!r} is not this site"


def check_same_site(request: Request, current: sessions.Current, csrf_token: str) -> None:
    """403 unless the request comes from this site with the session's CSRF token."""
    reason = foreign_origin(request)
    if reason:
        raise HTTPException(403, f"cross-site request refused: {reason}")
    if not csrf_token or not hmac.compare_digest(csrf_token.encode(), current.csrf_token.encode()):
        raise HTTPException(
            403, f"missing or wrong CSRF token: send the page's token as {CSRF_HEADER}"
        )


def json_only(request: Request, template: str = "") -> None:
    """415 for a body that is declared and not JSON (nor a file type the route takes:
    ``services.access.UPLOADS``)."""
    if request.method not in UNSAFE_METHODS:
        return
    declared = request.headers.get("content-type")
    has_body = request.headers.get("content-length", "0") != "0" or (
        "transfer-encoding" in request.headers
    )
    if declared is None or not has_body:
        return
    media = declared.split(";", 1)[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    if media in body_types(request.method, template):
        return
    raise HTTPException(415, f"send JSON: Content-Type {media!r} is not application/json")


def require_token(request: Request) -> None:
    """Who is asking (the API token, a service token, a signed-in account) and whether
    their role may use this route (``services.access``): 401, 403 with the reason."""
    actor = bearer_actor(request)
    if actor is None:
        current = signed_in(request)
        if current is None:
            raise HTTPException(
                status_code=401,
                detail="missing or wrong API token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if request.method in UNSAFE_METHODS:
            check_same_site(request, current, request.headers.get(CSRF_HEADER, ""))
        request.state.staff_session = current
        actor = session_actor(current)
    route = request.scope.get("route")
    reason = refusal_for(actor.role, request.method, getattr(route, "path", request.url.path))
    if reason:
        raise HTTPException(403, f"forbidden: {reason}")
    json_only(request, getattr(route, "path", ""))
    request.state.actor = actor


def bearer_actor(request: Request) -> Actor | None:
    """The actor of the request's bearer token: the API token (an admin) or a live
    service token; None without one that works."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    container = request.app.state.container
    if token_ok(container.settings, given.strip()):
        return API_TOKEN_ACTOR
    return token_actor(container, given.strip())


def session_actor(current: sessions.Current) -> Actor:
    if current.account.startswith(TOKEN_ACCOUNT):
        return API_TOKEN_ACTOR
    return Actor(ActorKind.ACCOUNT, current.account, parse_role(current.role))


Authorized = Annotated[None, Depends(require_token)]


def role_of(request: Request) -> str:
    """The role the request acts as: its dashboard session's, a service token's, or
    ``admin`` for the API token (``services.analytics.sharing.exact_for`` tells what
    that role may see)."""
    actor = getattr(request.state, "actor", None)  # a session's account or a token's role
    if actor is not None:
        return str(actor.role)
    current = getattr(request.state, "staff_session", None)
    return str(current.role) if current is not None else TOKEN_ROLE
