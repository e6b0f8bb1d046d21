"""Access to ``/api/v1``: a bearer token, or the dashboard's session cookie."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from services.config import Settings

SESSION_COOKIE = "ww_session"


def session_value(settings: Settings) -> str:
    """The cookie value proving a dashboard login: derived from, never equal to, the token."""
    token = settings.api_token.get_secret_value().encode()
    return hmac.new(token, b"winwin-dashboard-session", hashlib.sha256).hexdigest()


def token_ok(settings: Settings, given: str) -> bool:
    """Constant-time: the time taken says nothing about how much of the token matched."""
    return hmac.compare_digest(given.encode(), settings.api_token.get_secret_value().encode())


def session_ok(settings: Settings, cookie: str) -> bool:
    """A dashboard session cookie, compared in constant time."""
    return bool(cookie) and hmac.compare_digest(cookie.encode(), session_value(settings).encode())


def require_token(request: Request) -> None:
    settings: Settings = request.app.state.container.settings
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() == "bearer" and token_ok(settings, given.strip()):
        return
    if session_ok(settings, request.cookies.get(SESSION_COOKIE, "")):
        return
    raise HTTPException(
        status_code=401, detail="missing or wrong API token", headers={"WWW-Authenticate": "Bearer"}
    )


Authorized = Annotated[None, Depends(require_token)]
