"""Accounts, service tokens and the audit log over HTTP (issue 16; CONTRACT.md, "Accounts").

``POST /api/v1/tokens`` (admin) creates a named token with a role and answers its
secret, the only time it is shown; ``GET`` lists them without secrets; ``DELETE``
revokes one at once. ``/api/v1/accounts`` (admin) lists, creates (a generated password
is answered once when none is given) and disables named accounts. ``GET /api/v1/audit`` serves the audit log, newest first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import Field

from services import accounts, audit, passwords
from services.auth import Authorized
from services.bootstrap import AppDep
from services.domain.roles import Role
from services.errors import UsageError
from services.json_bodies import JSONBodyRoute
from services.staff_input import StaffInput

router = APIRouter(route_class=JSONBodyRoute, tags=["accounts"])


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


class AccountIn(StaffInput):
    email: str = Field(min_length=3, max_length=320)
    role: Role
    #: None: a password is generated and answered once.
    password: str | None = Field(default=None, max_length=1000)


def _account_json(a: accounts.Account) -> dict[str, Any]:
    disabled = a.disabled_at.isoformat() if a.disabled_at else None
    return {"email": a.email, "role": a.role.value, "created_at": a.created_at.isoformat()} | {
        "disabled_at": disabled
    }


@router.get("/api/v1/accounts")
def get_accounts(c: AppDep, _: Authorized) -> list[dict[str, Any]]:
    """Every named account, disabled ones included; never a password hash."""
    return [_account_json(a) for a in accounts.list_accounts(c)]


@router.post("/api/v1/accounts", status_code=201)
def post_account(body: AccountIn, request: Request, c: AppDep, _: Authorized) -> dict[str, Any]:
    """A new account. ``password`` is answered only when it was generated: shown once."""
    password = body.password or passwords.generated()
    try:
        made = accounts.create_account(c, body.email, body.role, password, request.state.actor)
    except UsageError as exc:
        raise HTTPException(422, str(exc)) from None
    shown = {"password": password} if body.password is None else {}
    return _account_json(made) | shown


@router.delete("/api/v1/accounts/{email}")
def delete_account(email: str, request: Request, c: AppDep, _: Authorized) -> dict[str, Any]:
    """Disables the account and ends its sessions (it stays listed, for the audit log)."""
    try:
        found = accounts.disable_account(c, email, request.state.actor)
    except UsageError as exc:
        raise HTTPException(422, str(exc)) from None
    if not found:
        raise HTTPException(404, "no such account")
    return next(
        _account_json(a)
        for a in accounts.list_accounts(c)
        if a.email == accounts.normal_email(email)
    )


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
