"""A fake SendGrid v3 API: a real HTTP server on loopback that enforces mail/send's rules.

A dev/bench tool, never used by a serving role: the integration tests (through
``tests/fakes/sendgrid_server.py``) and ``winwin bench dispatch`` drive it with the real
``sendgrid`` library (point its host at ``FakeSendGrid().host``). It records every
delivered message *after* applying each personalization's substitutions, i.e. what the
recipient would see.

It also answers the Email Activity API's ``GET /v3/messages?query=...&limit=N`` over
what it accepted (the query forms WINWIN uses: ``unique_args['k']="v"``, ``to_email="a"``,
``msg_id="m"``, joined by ``AND``), and takes a message-level ``reply_to`` whose
substitution tags are applied per personalization, as SendGrid does.

It applies SendGrid's rules for ``tracking_settings`` and ``asm``
(services/devtools/sendgrid_rules.py): ``account_tracking`` models the account's own
tracking settings, which change what recipients get unless a send's ``tracking_settings``
turn them off.

``on_accept`` (a callable given the accepted request's delivered emails) runs *after*
the request is accepted and *before* the 202 goes back: the moment a crash test kills
the sender in.

Also :class:`WebhookSigner`, which signs Event Webhook bodies the way SendGrid does.
"""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.devtools.sendgrid_rules import (
    AccountTracking,
    SettingError,
    apply_tracking,
    check_asm,
    check_tracking_settings,
    effective,
)

HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
RESERVED_HEADERS = {
    "x-sg-id",
    "x-sg-eid",
    "received",
    "dkim-signature",
    "content-type",
    "content-transfer-encoding",
    "to",
    "from",
    "subject",
    "reply-to",
    "cc",
    "bcc",
}
EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
LIMIT_BYTES = 10_000


@dataclass(frozen=True)
class DeliveredEmail:
    """What one recipient receives."""

    to: str
    to_name: str | None
    subject: str
    html: str | None
    text: str | None
    headers: dict[str, str]
    custom_args: dict[str, str]
    message_id: str
    reply_to: str | None = None
    asm_group_id: int | None = None


class _Invalid(Exception):
    def __init__(self, message: str, field: str | None) -> None:
        super().__init__(message)
        self.message, self.field = message, field


@dataclass
class _State:
    delivered: list[DeliveredEmail] = field(default_factory=list)
    request_count: int = 0
    accepted_bodies: list[dict[str, Any]] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    budget: tuple[int, float] | None = None
    window_start: float = 0.0
    window_used: int = 0
    activity_queries: int = 0


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client killed mid-request (crash tests) is expected: no traceback."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeSendGrid:
    """``with FakeSendGrid(api_key="SG.test") as sg: ... sg.host ... sg.delivered``."""

    def __init__(
        self, api_key: str = "SG.test-key", account_tracking: AccountTracking | None = None
    ) -> None:
        self.api_key = api_key
        #: The account's tracking settings (Settings > Tracking): all off unless given.
        self.account_tracking = account_tracking or AccountTracking()
        #: The account's unsubscribe groups; None: any integer id is one.
        self.asm_groups: set[int] | None = None
        self._state = _State()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: Called with the accepted request's emails before its 202 is sent.
        self.on_accept: Callable[[list[DeliveredEmail]], None] | None = None
        #: False: the Email Activity API answers 403 (an account without the add-on).
        self.activity_available = True

    # -- lifecycle --------------------------------------------------------------------
    def __enter__(self) -> FakeSendGrid:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, headers, body = fake._handle(self.path, dict(self.headers), raw)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                status, body = fake._activity(self.path, dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def host(self) -> str:
        assert self._server is not None, "use FakeSendGrid as a context manager"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- inspection and control -------------------------------------------------------
    @property
    def delivered(self) -> list[DeliveredEmail]:
        with self._lock:
            return list(self._state.delivered)

    @property
    def request_count(self) -> int:
        with self._lock:
            return self._state.request_count

    @property
    def accepted_bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._state.accepted_bodies)

    def rate_limit(self, n_per_window: int, window_seconds: float) -> None:
        """Accept ``n_per_window`` authenticated requests per window; 429 beyond."""
        with self._lock:
            self._state.budget = (n_per_window, window_seconds)
            self._state.window_start, self._state.window_used = time.time(), 0

    def fail_next(self, n: int, status: int = 500) -> None:
        with self._lock:
            self._state.failures.extend([status] * n)

    def reset(self) -> None:
        with self._lock:
            self._state = _State()

    # -- the endpoint -----------------------------------------------------------------
    def _handle(
        self, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self._state.request_count += 1
            if self._state.failures:
                status = self._state.failures.pop(0)
                return status, {}, _errors(f"injected failure {status}", None)
        if path.rstrip("/") != "/v3/mail/send":
            return 404, {}, _errors("not found", None)
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            message = "The provided authorization grant is invalid, expired, or revoked"
            return 401, {}, _errors(message, None)
        limited = self._spend_budget()
        if limited is not None:
            return 429, limited, _errors("too many requests", None)
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {}, _errors("Bad Request", None)
        try:
            messages = _validate_and_render(body)
            check_tracking_settings(body)
            group = check_asm(body, self.asm_groups)
        except (_Invalid, SettingError) as exc:
            return 400, {}, _errors(exc.message, exc.field)
        tracking = effective(body, self.account_tracking)
        messages = [
            apply_tracking(m, tracking, m["to"]) | {"asm_group_id": group} for m in messages
        ]
        message_id = secrets.token_urlsafe(16)
        emails = [DeliveredEmail(message_id=message_id, **m) for m in messages]
        with self._lock:
            self._state.accepted_bodies.append(body)
            self._state.delivered.extend(emails)
        if self.on_accept is not None:
            self.on_accept(emails)
        return 202, {"X-Message-Id": message_id}, b""

    # -- Email Activity ----------------------------------------------------------------
    @property
    def activity_queries(self) -> int:
        with self._lock:
            return self._state.activity_queries

    def _activity(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        url = urllib.parse.urlsplit(path)
        if url.path.rstrip("/") != "/v3/messages":
            return 404, _errors("not found", None)
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, _errors("authorization required", None)
        if not self.activity_available:
            return 403, _errors(
                "access forbidden: purchase additional email activity history", None
            )
        params = urllib.parse.parse_qs(url.query)
        try:
            limit = int(params.get("limit", ["10"])[0])
            clauses = _parse_query(params.get("query", [""])[0])
        except ValueError as exc:
            return 400, _errors(str(exc), "query")
        if not 1 <= limit <= 1000:
            return 400, _errors("limit must be between 1 and 1000", "limit")
        with self._lock:
            self._state.activity_queries += 1
            found = [d for d in self._state.delivered if all(c(d) for c in clauses)]
        messages = [
            {
                "from_email": "outreach@example.org",
                "msg_id": f"{d.message_id}.filter0001.{i}.0",
                "subject": d.subject,
                "to_email": d.to,
                "status": "delivered",
                "opens_count": 0,
                "clicks_count": 0,
                "last_event_time": "2024-03-01T12:00:00Z",
            }
            for i, d in enumerate(found[:limit])
        ]
        return 200, json.dumps({"messages": messages}).encode()

    def _spend_budget(self) -> dict[str, str] | None:
        with self._lock:
            state = self._state
            if state.budget is None:
                return None
            limit, window = state.budget
            now = time.time()
            if now >= state.window_start + window:
                state.window_start, state.window_used = now, 0
            if state.window_used < limit:
                state.window_used += 1
                return None
            return {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(math.ceil(state.window_start + window)),
            }


_CLAUSE = re.compile(r"""^\s*(unique_args\['([^']+)'\]|to_email|msg_id)\s*=\s*"([^"]*)"\s*$""")


def _parse_query(query: str) -> list[Callable[[DeliveredEmail], bool]]:
    """The subset of the Email Activity query language WINWIN uses."""
    clauses: list[Callable[[DeliveredEmail], bool]] = []
    for part in re.split(r"\s+AND\s+", query.strip()) if query.strip() else []:
        m = _CLAUSE.match(part)
        if not m:
            raise ValueError(f"unsupported query: {part!r}")
        clauses.append(_clause(m.group(1), m.group(2), m.group(3)))
    return clauses


def _clause(field_name: str, arg: str | None, value: str) -> Callable[[DeliveredEmail], bool]:
    if arg is not None:
        return lambda d: d.custom_args.get(arg) == value
    if field_name == "to_email":
        return lambda d: d.to.lower() == value.lower()
    return lambda d: value.startswith(d.message_id)


def _errors(message: str, field_name: str | None) -> bytes:
    help_url = f"{HELP}#message.{field_name}" if field_name else None
    error = {"message": message, "field": field_name, "help": help_url}
    return json.dumps({"errors": [error]}).encode()


def _check_headers(headers: Any, where: str) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise _Invalid("Invalid type. Expected: object of strings.", where)
    reserved = sorted(h for h in headers if h.lower() in RESERVED_HEADERS)
    if reserved:
        raise _Invalid(f"The following header(s) are reserved: {', '.join(reserved)}", where)
    return headers


def _check_strings(obj: Any, where: str) -> dict[str, str]:
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise _Invalid("Invalid type. Expected: object.", where)
    for value in obj.values():
        if not isinstance(value, str):
            raise _Invalid(f"Invalid type. Expected: string, given: {type(value).__name__}.", where)
    return obj


def _size(obj: dict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in obj.items())


def _check_content(body: dict[str, Any]) -> tuple[str | None, str | None]:
    content = body.get("content")
    if not isinstance(content, list) or not content:
        raise _Invalid(
            "Unless a valid template_id is provided, the content parameter is required.", "content"
        )
    types = []
    for item in content:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise _Invalid("Content types require a type and a value.", "content")
        if not isinstance(item.get("value"), str) or not item["value"]:
            raise _Invalid(
                "The content value must be a string at least one character in length.",
                "content.value",
            )
        types.append(item["type"])
    if "text/plain" in types and types.index("text/plain") != 0:
        raise _Invalid("If present, text/plain must be first, followed by text/html.", "content")
    if "text/html" in types and types.index("text/html") != ("text/plain" in types):
        raise _Invalid("If present, text/plain must be first, followed by text/html.", "content")
    parts = {item["type"]: item["value"] for item in content}
    return parts.get("text/html"), parts.get("text/plain")


def _validate_and_render(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        raise _Invalid("Bad Request", None)
    sender = body.get("from")
    if not isinstance(sender, dict) or not EMAIL_RE.match(str(sender.get("email", ""))):
        raise _Invalid("The from object must be provided for every email send.", "from")
    html, text = _check_content(body)
    global_headers = _check_headers(body.get("headers"), "headers")
    global_args = _check_strings(body.get("custom_args"), "custom_args")
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        raise _Invalid("You must have at least one personalization.", "personalizations")
    if len(personalizations) > 1000:
        raise _Invalid(
            "The personalization block is limited to 1000 personalizations per API request. "
            f"You have provided {len(personalizations)} personalizations.",
            "personalizations",
        )
    seen: set[str] = set()
    out = []
    for i, p in enumerate(personalizations):
        where = f"personalizations.{i}"
        out.append(_render_one(p, where, body, html, text, global_headers, global_args, seen))
    if len(seen) > 1000:
        raise _Invalid(
            "There is a limit of 1000 total recipients (to + cc + bcc) per request.",
            "personalizations",
        )
    return out


def _render_one(
    p: Any,
    where: str,
    body: dict[str, Any],
    html: str | None,
    text: str | None,
    global_headers: dict[str, str],
    global_args: dict[str, str],
    seen: set[str],
) -> dict[str, Any]:
    if not isinstance(p, dict) or not isinstance(p.get("to"), list) or not p["to"]:
        raise _Invalid(
            "The to parameter is required for all personalization objects.", f"{where}.to"
        )
    for kind in ("to", "cc", "bcc"):
        for r in p.get(kind) or []:
            address = str(r.get("email", "")) if isinstance(r, dict) else ""
            if not EMAIL_RE.match(address):
                raise _Invalid(
                    f"Each {kind} object must at least have an email address.", f"{where}.{kind}"
                )
            if address.lower() in seen:
                raise _Invalid(
                    "Each unique email address in the personalizations array should only be "
                    f"included once. You have included {address} more than once.",
                    f"{where}.{kind}",
                )
            seen.add(address.lower())
    subject = p.get("subject", body.get("subject"))
    if not isinstance(subject, str) or not subject:
        raise _Invalid("The subject is required. Every personalization must have one.", "subject")
    headers = {**global_headers, **_check_headers(p.get("headers"), f"{where}.headers")}
    args = {**global_args, **_check_strings(p.get("custom_args"), f"{where}.custom_args")}
    if _size(args) > LIMIT_BYTES:
        raise _Invalid("The custom arguments exceed the 10,000 byte limit.", f"{where}.custom_args")
    subs = _check_strings(p.get("substitutions"), f"{where}.substitutions")
    if _size(subs) > LIMIT_BYTES:
        raise _Invalid("The substitutions exceed the 10,000 byte limit.", f"{where}.substitutions")

    def apply(s: str | None) -> str | None:
        if s is None:
            return None
        for tag, value in subs.items():
            s = s.replace(tag, value)
        return s

    first = p["to"][0]
    reply_to = body.get("reply_to")
    if reply_to is not None and (
        not isinstance(reply_to, dict) or not EMAIL_RE.match(str(apply(reply_to.get("email"))))
    ):
        raise _Invalid("The reply_to email does not contain a valid address.", "reply_to")
    return {
        "reply_to": apply(reply_to["email"]) if reply_to else None,
        "to": first["email"],
        "to_name": first.get("name"),
        "subject": apply(subject),
        "html": apply(html),
        "text": apply(text),
        "headers": headers,
        "custom_args": args,
    }


class WebhookSigner:
    """Signs Event Webhook bodies like SendGrid: ECDSA P-256 over timestamp + body."""

    def __init__(self, private_key_b64: str | None = None) -> None:
        """A fresh P-256 key pair, or the one whose base64 DER private key is given
        (sendgrid-go publishes the private key of its test pair)."""
        if private_key_b64 is None:
            self._key = ec.generate_private_key(ec.SECP256R1())
        else:
            key = serialization.load_der_private_key(base64.b64decode(private_key_b64), None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            self._key = key
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        #: What SendGrid's settings page shows, and what WINWIN_SENDGRID_WEBHOOK_PUBLIC_KEY takes.
        self.public_key_b64 = base64.b64encode(der).decode()

    def sign(self, body: bytes, timestamp: str | None = None) -> dict[str, str]:
        timestamp = timestamp if timestamp is not None else str(int(time.time()))
        signature = self._key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        }
