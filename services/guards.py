"""HTTP guards for every response and request: body size limits and security headers.

Pure ASGI middlewares (no dependence on a FastAPI version): a body over its limit is
answered 413 before the route reads it (``Content-Length``) or as soon as the streamed
bytes pass the limit; every response carries headers that keep pages out of frames,
stop MIME sniffing and send no ``Referer`` onwards (recipients' clicks must not leak
which message or page they came from).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MiB = 1024 * 1024
#: Default limit of a request body, and the larger ones of batches: SendGrid's webhooks,
#: and 1000 engagement events with 4 KB of properties each (the contract), even written
#: with \u escapes (up to 12 KB of JSON each) and long ids: ~13.3 MB.
DEFAULT_LIMIT = 4 * MiB
#: A contacts CSV uploaded in the console: ~100,000 contacts (services/campaigns/import_jobs).
IMPORT_LIMIT = 32 * MiB
LIMITS = (
    ("/webhooks/sendgrid/", 16 * MiB),
    ("/api/v1/events", 16 * MiB),
    ("/api/v1/contacts/import", IMPORT_LIMIT),
)

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    "cross-origin-opener-policy": "same-origin",
}


def limit_for(path: str) -> int:
    """The body size limit, in bytes, of requests to ``path``."""
    for prefix, limit in LIMITS:
        if path.startswith(prefix):
            return limit
    return DEFAULT_LIMIT


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Answers 413 to a request whose body is larger than ``limit_for(path)``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope.get("path", ""))
        declared, chunked = _framing(scope)
        if declared is not None and declared > limit:
            await _too_large(send, limit)
            return
        if declared is None and not chunked:
            # Neither Content-Length nor Transfer-Encoding: HTTP/1.1 says there is no
            # body (RFC 9112, 6.3), so there is nothing to count (every GET click).
            await self.app(scope, receive, send)
            return
        seen, started = 0, False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if started:
                raise
            await _too_large(send, limit)


class SecurityHeaders:
    """Adds SECURITY_HEADERS (and HSTS behind https) to responses that lack them."""

    def __init__(self, app: ASGIApp, https: bool = False) -> None:
        self.app = app
        self.headers = dict(SECURITY_HEADERS)
        if https:
            self.headers["strict-transport-security"] = "max-age=31536000"
        self._encoded = [(k.encode(), v.encode()) for k, v in self.headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [pair for pair in self._encoded if pair[0] not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _framing(scope: Scope) -> tuple[int | None, bool]:
    """(Content-Length or None, whether a Transfer-Encoding header is present)."""
    declared, chunked = None, False
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                chunked = True  # unreadable length: count what arrives
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body larger than {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


#: What a 422 really holds: a reason naming the field, or one per invalid field.
ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "anyOf": [
                {"type": "string"},
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "error": {"type": "string"}},
                    },
                },
            ]
        }
    },
}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Makes an OpenAPI document say what errors look like: 422 bodies as WINWIN sends
    them (ERROR_SCHEMA), and 413 on every operation that takes a body."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if "HTTPValidationError" in components:
        components["HTTPValidationError"] = ERROR_SCHEMA
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault(
                    "413",
                    {
                        "description": "Request body too large (limit: see README, Reliability and security)"
                    },
                )
    return schema
