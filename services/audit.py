"""The audit log: every change, by whom (an account, a token, the command line), when,
what action on what kind of object and its id. Never a contact's address, name or even
external id: objects are named by their ids, a contact by a keyed digest of its external
id (:func:`contact_ref`), so an erased person's entries cannot be read back to them.

Changes made through ``/api/v1`` are recorded in ONE place, ``AuditTrail``: after a 2xx
answer to POST, PUT, PATCH or DELETE, the route's template says the action and the
object (``POST /api/v1/campaigns/{campaign_id}/schedule`` → ``schedule`` of
``campaigns`` ``{campaign_id}``; a create takes the id from the answer's ``id``).
Sign-in, sign-out and account changes are recorded where they happen.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.db.models_accounts import AuditEntry

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from services.accounts import Actor
    from services.application import Container

API = "/api/v1/"
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
VERBS = {"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}
#: POSTs that change nothing (a render, a dry run) and the event intake (pseudonymous
#: engagement from the network's site, counted by the stream, not staff changes).
NOT_CHANGES = frozenset(
    {
        "/api/v1/templates/preview",
        "/api/v1/journeys/{journey_id}/simulate",
        "/api/v1/events",
        "/api/v1/audiences/count",
    }
)
#: Changes that record themselves where they happen (``services.accounts``), once.
SELF_AUDITED = frozenset({"/api/v1/accounts", "/api/v1/accounts/{email}"})
#: Routes whose object is not the first word of their path: a contacts import is a job
#: (named by its id), not a contact.
KINDS = {"/api/v1/contacts/import": ("import", "contact_imports")}
#: An answer longer than this is not read for its id.
MAX_BODY = 64 * 1024
MAX_LIMIT = 500


def add(
    session: Session, at: datetime, actor: Actor, action: str, kind: str, object_id: str
) -> None:
    """Adds one entry to the transaction of ``session``."""
    session.add(
        AuditEntry(
            at=at,
            actor_kind=actor.kind.value,
            actor_id=actor.id[:320],
            action=action[:80],
            object_kind=kind[:80],
            object_id=object_id[:300],
        )
    )


def record(c: Container, actor: Actor, action: str, kind: str, object_id: str) -> None:
    with c.sessions() as session, session.begin():
        add(session, c.now(), actor, action, kind, object_id)


def contact_ref(secret: bytes, external_id: str) -> str:
    """How the audit log names a contact: a keyed digest of its external id."""
    return "contact:" + hmac.new(secret, external_id.encode(), hashlib.sha256).hexdigest()[:16]


def describe(
    method: str, template: str, params: dict[str, Any], answer: bytes
) -> tuple[str, str, str] | None:
    """(action, object kind, object id) of a change to ``template``; None for a route
    that changes nothing."""
    if template in NOT_CHANGES | SELF_AUDITED or not template.startswith(API):
        return None
    if template in KINDS:
        return (*KINDS[template], _answer_id(answer))
    parts = template[len(API) :].split("/")
    kind, rest = parts[0], parts[1:]
    names = [p for p in rest if not p.startswith("{")]
    ids = [str(params.get(p.strip("{}"), "")) for p in rest if p.startswith("{")]
    object_id = ids[0] if ids else _answer_id(answer)
    if names and method == "POST" and not rest[-1].startswith("{"):
        action = ".".join(names)
    else:
        action = ".".join([*names, VERBS.get(method, method.lower())])
    return action, kind, object_id


def _answer_id(answer: bytes) -> str:
    try:
        found = json.loads(answer) if answer else None
    except ValueError:
        return ""
    if isinstance(found, dict):
        for key in ("id", "merge_id"):
            if isinstance(found.get(key), str | int):
                return str(found[key])
    return ""


class AuditTrail:
    """Records every successful change made through ``/api/v1`` (pure ASGI middleware).
    The route's authentication put the actor in the request's state."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in CHANGES
            or not scope["path"].startswith(API)
        ):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        seen: dict[str, Any] = {"status": 0, "body": b""}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body" and len(seen["body"]) < MAX_BODY:
                seen["body"] += message.get("body", b"")
            await send(message)

        await self.app(scope, receive, watch)
        actor, route = state.get("actor"), scope.get("route")
        if actor is None or route is None or not 200 <= seen["status"] < 300:
            return
        change = describe(
            scope["method"], route.path, scope.get("path_params", {}), seen["body"][:MAX_BODY]
        )
        if change is not None:
            c = scope["app"].state.container
            action, kind, object_id = change
            if kind == "contacts" and object_id:
                object_id = contact_ref(
                    c.settings.secret_key.get_secret_value().encode(), object_id
                )
            await run_in_threadpool(record, c, actor, action, kind, object_id)


@dataclass(frozen=True)
class AuditQuery:
    """Filters of ``GET /api/v1/audit``; ``before`` is the cursor (an entry id)."""

    actor: str | None = None
    object_kind: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    before: int | None = None


def entries(c: Container, q: AuditQuery) -> dict[str, Any]:
    """The newest entries that pass the filters, and the cursor of the next page."""
    stmt = select(AuditEntry).order_by(AuditEntry.entry_id.desc())
    for column, wanted in (
        (AuditEntry.actor_id, q.actor),
        (AuditEntry.object_kind, q.object_kind),
        (AuditEntry.action, q.action),
    ):
        if wanted:
            stmt = stmt.where(column == wanted)
    if q.since is not None:
        stmt = stmt.where(AuditEntry.at >= q.since)
    if q.until is not None:
        stmt = stmt.where(AuditEntry.at < q.until)
    if q.before is not None:
        stmt = stmt.where(AuditEntry.entry_id < q.before)
    limit = max(1, min(q.limit, MAX_LIMIT))
    with c.sessions() as session:
        rows = session.scalars(stmt.limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "entries": [_as_json(r) for r in rows],
        "next_cursor": str(rows[-1].entry_id) if more else None,
    }


def _as_json(row: AuditEntry) -> dict[str, Any]:
    return {
        "id": row.entry_id,
        "at": row.at.isoformat(),
        "actor_kind": row.actor_kind,
        "actor": row.actor_id,
        "action": row.action,
        "object_kind": row.object_kind,
        "object_id": row.object_id,
    }
