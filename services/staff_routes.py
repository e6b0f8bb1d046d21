"""Service tokens and the audit log over HTTP (issue 16; CONTRACT.md, "Accounts").

``POST /api/v1/tokens`` (admin) creates a named token with a role and answers its
secret, the only time it is shown; ``GET`` lists them without secrets; ``DELETE``
revokes one at once. ``GET /api/v1/audit`` serves the audit log, newest first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import Field

from services import accounts, audit
from services.auth import Authorized
from services.bootstrap import AppDep
from services.domain.roles import Role
from services.staff_input import StaffInput

router = APIRouter(tags=["accounts"])


class TokenIn(StaffInput):
    name: str = Field(min_length=1, max_length=200)
    role: Role


@router.post("/api/v1/tokens", status_code=201)
def post_token(body: TokenIn, request: Request, c: AppDep, _: Authorized) -> dict[str, Any]:
    """A new service token. ``token`` is its secret: keep it, it is never shown again."""
    info, secret = accounts.create_token(c, body.name, body.role, request.state.actor)
    return info.as_json() | {"token": secret}


@router.get("/api/v1/tokens")
def get_tokens(c: AppDep, _: Authorized) -> list[dict[str, Any]]:
    """Every service token, revoked ones included; never a secret."""
    return [t.as_json() for t in accounts.list_tokens(c)]


@router.delete("/api/v1/tokens/{token_id}")
def delete_token(token_id: str, c: AppDep, _: Authorized) -> dict[str, Any]:
    """Revokes the token: requests bearing it get 401 from now on."""
    info = accounts.revoke_token(c, token_id)
    if info is None:
        raise HTTPException(404, "no such token")
    return info.as_json()


@router.get("/api/v1/audit")
def get_audit(
    c: AppDep,
    _: Authorized,
    actor: Annotated[str | None, Query(max_length=320)] = None,
    object_kind: Annotated[str | None, Query(max_length=80)] = None,
    action: Annotated[str | None, Query(max_length=80)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_LIMIT)] = 100,
    cursor: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="next_cursor of the page before")
    ] = None,
) -> dict[str, Any]:
    """Changes, newest first: ``{"entries": [...], "next_cursor"}``; pass ``cursor`` for
    the next page. Each entry: id, at, actor_kind, actor, action, object_kind, object_id."""
    query = audit.AuditQuery(actor, object_kind, action, since, until, limit, cursor)
    return audit.entries(c, query)
