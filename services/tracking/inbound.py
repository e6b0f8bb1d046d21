"""Replies: SendGrid Inbound Parse → ``reply.received`` (the reply text stays in SQL).

A reply finds its send in one of two ways:

* the per-send reply address ``reply+<send id hex>.<mac>@<WINWIN_REPLY_DOMAIN>`` that the
  dispatcher sets as ``reply_to`` (lower-case only, because mail systems may fold the
  case of addresses; the MAC stops anyone from forging a reply for another person);
* the ``In-Reply-To`` / ``References`` headers: they carry the Message-ID of the email
  replied to, which starts with SendGrid's ``X-Message-Id`` (one per request, stored on
  each send); the sender's address then picks the one send of that request.

The Kafka record carries ids and the pseudonym only (``reply.received``, source
``inbound``); subject, text and html are kept in the ``replies`` table.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import logging
import re
from dataclasses import dataclass, replace
from email.message import MIMEPart
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from services.bootstrap import AppDep, Container
from services.config import Settings
from services.db.models import Contact, Send
from services.db.models_consent import Reply
from services.db.upsert import insert_new
from services.domain.events import format_timestamp
from services.domain.inputs import parse_json, storable
from services.json_bodies import JSONBodyRoute
from services.tracking.reply_addresses import reply_address, send_of_address

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["InboundReply", "receive", "reply_address", "router", "send_of_address"]

log = logging.getLogger(__name__)
router = APIRouter(route_class=JSONBodyRoute)
MAX_BODY = 30 * 1024 * 1024  # Inbound Parse posts up to 30 MB (attachments)
_MSG_ID = re.compile(r"<([^<>\s]+)>")
_BOUNDARY = re.compile(r"^\s*multipart/form-data\s*;.*?\bboundary=\"?([^\";]+)\"?", re.I)


@dataclass(frozen=True)
class InboundReply:
    """The fields of an Inbound Parse post that WINWIN uses."""

    to: str
    sender: str
    subject: str
    text: str
    html: str | None
    headers: str
    envelope_to: list[str]

    @classmethod
    def from_form(cls, form: dict[str, str]) -> InboundReply:
        """From the parsed fields (``to, from, subject, text, html, headers, envelope``),
        or from the raw MIME message in ``email`` ("POST the raw, full MIME message")."""
        if form.get("email") and not form.get("text"):
            return cls._from_mime(form["email"], form)
        try:
            envelope = parse_json(form.get("envelope") or "{}")
        except ValueError:  # nested too deep too: the envelope is only a hint
            envelope = {}
        to = envelope.get("to") if isinstance(envelope, dict) else None
        return cls(
            to=form.get("to", ""),
            sender=form.get("from", ""),
            subject=form.get("subject", ""),
            text=form.get("text", ""),
            html=form.get("html") or None,
            headers=form.get("headers", ""),
            envelope_to=[str(t) for t in to] if isinstance(to, list) else [],
        )

    @classmethod
    def _from_mime(cls, raw: str, form: dict[str, str]) -> InboundReply:
        message = email.message_from_string(raw, policy=email.policy.default)
        text_part = message.get_body(("plain",))
        html_part = message.get_body(("html",))
        header_block = "".join(f"{k}: {v}\n" for k, v in message.items())
        base = cls.from_form({k: v for k, v in form.items() if k != "email"} | {"text": "-"})
        return cls(
            to=str(message.get("To", "")),
            sender=str(message.get("From", "")),
            subject=str(message.get("Subject", "")),
            text=_content(text_part) if text_part else "",
            html=_content(html_part) if html_part else None,
            headers=header_block,
            envelope_to=base.envelope_to,
        )

    def storable(self) -> InboundReply:
        """The reply with the NUL characters PostgreSQL cannot store taken out (anyone
        can write to a reply address: its text is kept, not refused)."""
        clean = _without_nul
        return replace(
            self,
            to=clean(self.to),
            sender=clean(self.sender),
            subject=clean(self.subject),
            text=clean(self.text),
            html=None if self.html is None else clean(self.html),
            headers=clean(self.headers),
        )

    def header(self, name: str) -> str:
        """A header of the reply (from the raw header block), or ''."""
        parsed = email.message_from_string(self.headers + "\n", policy=email.policy.compat32)
        return " ".join(str(v) for v in parsed.get_all(name) or [])

    @property
    def from_address(self) -> str:
        return parseaddr(self.sender)[1].strip().lower()


def _content(part: MIMEPart) -> str:
    """A MIME part's text; one in a charset Python does not know (``unknown-8bit``,
    ``x-user-defined``) is read as UTF-8 with replacement characters."""
    try:
        return str(part.get_content())
    except LookupError:
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def _without_nul(text: str) -> str:
    """``text`` without NUL characters and lone surrogates (both unstorable)."""
    if storable(text):
        return text
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def receive(container: Container, reply: InboundReply) -> dict[str, Any]:
    """Store the reply; when it maps to a send, record ``reply.received``."""
    secret = container.settings.secret_key.get_secret_value().encode()
    received_at = container.now()
    with container.sessions() as session, session.begin():
        send, matched_by = _match(session, secret, reply)
        key = _dedupe_key(reply)
        row = {
            "dedupe_key": key,
            "send_id": send.id if send else None,
            "campaign_id": send.campaign_id if send else None,
            "person": send.person if send else None,
            "matched_by": matched_by,
            "from_email": reply.from_address[:320] or None,
            "subject": reply.subject,
            "text": reply.text,
            "html": reply.html,
            "received_at": received_at,
        }
        new = insert_new(session, Reply.__table__, [row], "dedupe_key")
    if send is None:
        log.info("inbound reply matched no send (kept for staff)")
        return {"matched": False, "duplicate": not new}
    result = container.ingest.record(
        [
            {
                "event_id": f"reply:{key}"[:110],
                "type": "reply.received",
                "occurred_at": format_timestamp(received_at),
                "person": send.person,
                "campaign_id": send.campaign_id,
                "send_id": send.id,
                "channel": "email",
                "source": "inbound",
                "properties": {"matched_by": matched_by},
            }
        ]
    )
    return {"matched": True, "duplicate": not new or result.accepted == 0}


def _match(session: Session, secret: bytes, reply: InboundReply) -> tuple[Any, str | None]:
    addresses = " ".join([reply.to, reply.header("Cc"), *reply.envelope_to])
    send_id = send_of_address(secret, addresses)
    if send_id is not None:
        send = session.get(Send, send_id)
        if send is not None:
            return send, "address"
    ids = _MSG_ID.findall(reply.header("In-Reply-To") + " " + reply.header("References"))
    candidates = {i.split("@")[0].split(".")[0] for i in ids} - {""}
    if candidates and reply.from_address:
        send = session.scalars(
            select(Send)
            .join(Contact, Contact.id == Send.contact_id)
            .where(Send.message_id.in_(sorted(candidates)))
            .where(Contact.email_normalized == reply.from_address)
            .order_by(Send.sent_at.desc())
            .limit(1)
        ).first()
        if send is not None:
            return send, "headers"
    return None, None


def _dedupe_key(reply: InboundReply) -> str:
    """Inbound Parse retries a post that failed: the reply's Message-ID names it."""
    message_id = reply.header("Message-ID").strip()
    basis = message_id or "|".join((reply.from_address, reply.subject, reply.text))
    return hashlib.sha256(basis.encode("utf-8", "replace")).hexdigest()[:40]


@router.post("/webhooks/sendgrid/inbound", include_in_schema=False)
async def sendgrid_inbound(request: Request, container: AppDep) -> JSONResponse:
    """Inbound Parse (multipart/form-data). Always 200 once stored, so SendGrid stops
    retrying; 401 without the secret (when one is set), 413 for oversize posts, 400 for a
    body that is not a form."""
    if not _authorised(request, container.settings):
        return JSONResponse(
            {"error": "not authorised: Inbound Parse URL without WINWIN_INBOUND_PARSE_SECRET"},
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="inbound-parse"'},
        )
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        return JSONResponse({"error": "body too large"}, status_code=413)
    try:
        form = await _form(request)
    except Exception as exc:  # noqa: BLE001 - malformed multipart: say so, keep nothing
        return JSONResponse({"error": f"body: not a form ({exc})"}, status_code=400)
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    reply = InboundReply.from_form(fields).storable()
    result = await run_in_threadpool(receive, container, reply)
    return JSONResponse(result)


async def _form(request: Request) -> Any:
    """The posted form. SendGrid's own test tool (``sendgrid/helpers/inbound/send.py``)
    posts its samples with bare LF line endings, which the multipart parser refuses:
    such a body gets CRLF in its structure (delimiters, part headers) first; the parts'
    contents are left exactly as they came."""
    match = _BOUNDARY.search(request.headers.get("content-type", ""))
    if match is None:
        return await request.form(max_part_size=MAX_BODY)
    body = _crlf_structure(await request.body(), match.group(1).encode("latin-1"))

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return await Request(request.scope, receive).form(max_part_size=MAX_BODY)


def _crlf_structure(body: bytes, boundary: bytes) -> bytes:
    """``body`` with CRLF delimiters and part headers when it has bare LF ones."""
    delimiter = b"--" + boundary
    first = body.find(delimiter)
    after = first + len(delimiter)
    if first < 0 or body[after : after + 2] == b"\r\n":
        return body  # not multipart, or CRLF already
    out = [body[:first]]
    for piece in body[after:].split(b"\n" + delimiter):
        if piece.startswith(b"--"):  # the close delimiter (and any epilogue)
            out.append(delimiter + piece)
            break
        head, _, content = piece.removeprefix(b"\n").partition(b"\n\n")
        crlf_head = head.replace(b"\n", b"\r\n")
        out.append(delimiter + b"\r\n" + crlf_head + b"\r\n\r\n" + content + b"\r\n")
    return b"".join(out)


def _authorised(request: Request, settings: Settings) -> bool:
    """Inbound Parse does not sign its posts: the secret rides in the URL it posts to,
    as basic auth (``https://parse:SECRET@host/...``) or ``?key=SECRET``. With no secret
    set, posts are read in dev mode only (as unsigned Event Webhook posts are)."""
    secret = settings.inbound_parse_secret.get_secret_value()
    if not secret:
        if settings.env != "dev":
            log.warning("Inbound Parse post refused: WINWIN_INBOUND_PARSE_SECRET is not set")
        return settings.env == "dev"
    offered = request.query_params.get("key", "")
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            offered = base64.b64decode(value, validate=True).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            offered = ""
    return hmac.compare_digest(offered.encode(), secret.encode())
