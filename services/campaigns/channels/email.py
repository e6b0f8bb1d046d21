"""The email channel: the one place that imports ``sendgrid``.

Why skeletons and substitutions
-------------------------------
SendGrid's v3 ``/mail/send`` takes up to 1000 *personalizations* per request, but one
``content`` for all of them. Our emails are rendered per recipient (Jinja2, sandboxed)
and differ only where a recipient's own values landed: tracked links, the unsubscribe
link, the name. Sending one request per recipient would cost 1000× the requests (and
SendGrid's rate limit); sending one content with SendGrid-side templating would give up
our sandboxed, exactly-rendered bodies.

So each :class:`OutgoingEmail` carries its exact rendered html/text *and* the
per-recipient values that went into it, as ``substitutions`` ``{tag: value}``. The sender
turns the body back into a *skeleton* by replacing each value (html-escaped in the html
part, longest first, values of 4+ characters only) with its tag, then proves that
applying the substitutions to the skeleton gives back the exact body, byte for byte.
Emails with identical skeletons share one request; each personalization carries its own
``to``, ``subject``, ``headers``, ``custom_args`` and ``substitutions``. Whenever the proof
fails (a tag that already occurs in the body, a value whose escaping differs, a value
that appears inside another, substitutions over SendGrid's 10,000-byte limit), that email
goes with its exact body and no substitutions: never a wrong body, only a less packed
request.

``custom_args`` carry pseudonyms and ids only (``ww_campaign``, ``ww_person``,
``ww_send``): SendGrid keeps them as non-PII metadata.

One tracking layer: ours
------------------------
Every request carries :data:`TRACKING_SETTINGS`, which turn off what a SendGrid account
may have switched on for every send: click tracking (html and text: it would rewrite our
signed ``/r/`` links into SendGrid redirects, and each click would arrive twice), open
tracking (a second pixel beside our ``/o/`` one, so each open twice) and subscription
tracking (SendGrid's own unsubscribe footer and List-Unsubscribe header beside ours).
Opens are counted by our pixel alone: it is signed per send, flags machine opens and
scanners like our redirects do, is answered by WINWIN itself, and works with the local
outbox too. A campaign's unsubscribe group goes as ``asm.group_id``.
"""

from __future__ import annotations

import base64
import html as html_lib
import http.client
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, Literal, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.eventwebhook import EventWebhook, EventWebhookHeader

from services.domain.lifecycle import SendStatus

__all__ = [
    "MAX_PERSONALIZATIONS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "EmailSender",
    "LocalOutboxSender",
    "OutboxStore",
    "OutgoingEmail",
    "RateLimited",
    "SendError",
    "TRACKING_SETTINGS",
    "SendGridEmailSender",
    "SendResult",
    "TransientSendError",
    "list_unsubscribe_headers",
    "verify_event_webhook",
]

log = logging.getLogger(__name__)
# The SendGrid client logs whole request bodies (addresses, names) at DEBUG: never that.
logging.getLogger("python_http_client").setLevel(logging.INFO)

MAX_PERSONALIZATIONS = 1000
MAX_SUBSTITUTION_BYTES = 10_000
MIN_VALUE_LENGTH = 4
_NEEDS_ESCAPE = re.compile("[&<>\"']")
SIGNATURE_HEADER = EventWebhookHeader.SIGNATURE
TIMESTAMP_HEADER = EventWebhookHeader.TIMESTAMP
#: Sent with every request: SendGrid's own tracking off, whatever the account says.
TRACKING_SETTINGS = {
    "click_tracking": {"enable": False, "enable_text": False},
    "open_tracking": {"enable": False},
    "subscription_tracking": {"enable": False},
}


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """One recipient's exact message, plus the per-recipient values rendered into it."""

    send_id: str
    to_email: str
    to_name: str | None
    subject: str
    html: str | None
    text: str
    headers: Mapping[str, str] = field(default_factory=dict)
    custom_args: Mapping[str, str] = field(default_factory=dict)
    substitutions: Mapping[str, str] = field(default_factory=dict)
    #: This email's own reply address (``reply+<token>@domain``, replies → Inbound Parse).
    reply_to: str | None = None
    #: The campaign's SendGrid unsubscribe (ASM) group, sent as ``asm.group_id``.
    asm_group_id: int | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    send_id: str
    message_id: str | None
    status: Literal[SendStatus.SENT, SendStatus.FAILED]
    error: str | None = None


class SendError(Exception):
    """Base of send errors; ``results`` holds what was settled before the error.

    Emails whose ``send_id`` is not in ``results`` were not accepted and may be retried.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.results: list[SendResult] = []


class RateLimited(SendError):
    """SendGrid answered 429: wait ``retry_after_seconds`` before the next request."""

    def __init__(self, retry_after_seconds: float) -> None:
        super().__init__(f"rate limited; retry after {retry_after_seconds:.1f}s")
        self.retry_after_seconds = retry_after_seconds


class TransientSendError(SendError):
    """5xx, timeout or connection failure: the request may be retried later."""


class EmailSender(Protocol):
    """Port: deliver emails; 4xx rejections come back as ``failed`` results."""

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]: ...


class OutboxStore(Protocol):
    def add(self, emails: list[OutgoingEmail]) -> None: ...


def list_unsubscribe_headers(unsubscribe_url: str) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe headers."""
    return {
        "List-Unsubscribe": f"<{unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


class LocalOutboxSender:
    """Used when no SendGrid key is set: keeps exactly the per-recipient message."""

    def __init__(self, store: OutboxStore) -> None:
        self._store = store

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        self._store.add(list(emails))
        return [SendResult(e.send_id, f"local-{e.send_id}", SendStatus.SENT) for e in emails]


# --- skeletons -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Prepared:
    email: OutgoingEmail
    key: tuple[str | None, str, str | None]  # (html skeleton, text skeleton, reply_to)
    substitutions: dict[str, str]


def _html_tag(tag: str) -> str:
    """The tag used for the html-escaped variant of a value (``-ww_x-`` → ``-hww_x-``)."""
    return f"{tag[0]}h{tag[1:]}" if len(tag) >= 2 and tag[0] == tag[-1] else f"{tag}~h"


def _escaped_in(value: str, html: str | None) -> str | None:
    """How ``value`` was escaped in ``html``: Jinja/markupsafe style, or the stdlib's."""
    if html is None:
        return None
    if not _NEEDS_ESCAPE.search(value):  # every escaping leaves it as it is
        return value if value in html else None
    markup = html_lib.escape(value, quote=False).replace('"', "&#34;").replace("'", "&#39;")
    for candidate in (markup, html_lib.escape(value), html_lib.escape(value, quote=False)):
        if candidate in html:
            return candidate
    return None


def _apply_all_at_once(text: str, subs: Mapping[str, str]) -> str:
    if not subs or text is None:
        return text
    return _tags_pattern(tuple(subs)).sub(lambda m: subs[m.group(0)], text)


@lru_cache(maxsize=256)
def _tags_pattern(tags: tuple[str, ...]) -> re.Pattern[str]:
    """One alternation of ``tags``, longest first (the same tags recur in every email)."""
    return re.compile("|".join(re.escape(t) for t in sorted(tags, key=len, reverse=True)))


def _apply_in_order(text: str, subs: Mapping[str, str]) -> str:
    for tag, value in subs.items():
        text = text.replace(tag, value)
    return text


def _skeletonise(email: OutgoingEmail) -> _Prepared:
    """Prove a skeleton for ``email`` or fall back to its exact body with no substitutions."""
    exact = _Prepared(email, (email.html, email.text, email.reply_to), {})
    reply_skel, reply_subs = _reply_skeleton(email.reply_to)
    values = {t: v for t, v in email.substitutions.items() if len(v) >= MIN_VALUE_LENGTH}
    if not values:
        return exact
    subs: dict[str, str] = {}
    html_pairs: list[tuple[str, str]] = []
    text_pairs: list[tuple[str, str]] = []
    for tag, value in values.items():
        subs[tag] = value
        text_pairs.append((value, tag))
        escaped = _escaped_in(value, email.html)
        if escaped == value:
            html_pairs.append((value, tag))
        elif escaped is not None:
            subs[_html_tag(tag)] = escaped
            html_pairs.append((escaped, _html_tag(tag)))
    tags = list(subs)
    # Any order of application, or all at once, must give the same result: no tag inside
    # another tag or a value, and no tag already present in what the recipient sees.
    seen = [email.subject, email.text, email.html or "", *email.custom_args.values()]
    if any(a != b and a in b for a in tags for b in tags) or _any_in(tags, (*subs.values(), *seen)):
        return exact
    html_skel = _replace_longest_first(email.html, html_pairs)
    text_skel = _replace_longest_first(email.text, text_pairs)
    used = {t: v for t, v in subs.items() if t in text_skel or (html_skel and t in html_skel)}
    # SendGrid does not document its order of application: prove all at once, and one
    # by one in both orders (every pair of tags tried both ways round).
    backwards = dict(reversed(list(used.items())))
    for skel, original in ((html_skel, email.html), (text_skel, email.text)):
        if skel is not None and not (
            _apply_all_at_once(skel, used) == original
            and _apply_in_order(skel, used) == original
            and _apply_in_order(skel, backwards) == original
        ):
            return exact
    if _json_bound(used) > MAX_SUBSTITUTION_BYTES and _json_size(used) > MAX_SUBSTITUTION_BYTES:
        return exact
    if reply_subs and _any_in(list(reply_subs), (*seen, *used, *used.values())):
        return exact
    return _Prepared(email, (html_skel, text_skel, reply_skel), used | reply_subs)


def _any_in(needles: Sequence[str], haystacks: Sequence[str]) -> bool:
    """Whether any needle occurs in any haystack. Searched in one NUL-joined string: a
    needle without NUL cannot match across two haystacks, so this is exact."""
    if any("\0" in n for n in needles):
        return any(n in h for n in needles for h in haystacks)
    joined = "\0".join(haystacks)
    return any(n in joined for n in needles)


def _reply_skeleton(reply_to: str | None) -> tuple[str | None, dict[str, str]]:
    """``reply+TOKEN@d`` → (``reply+-ww_reply-@d``, {tag: TOKEN}): SendGrid applies a
    personalization's substitutions to the message-level reply-to as well."""
    local, at, domain = (reply_to or "").partition("@")
    base, plus, token = local.partition("+")
    if not (at and plus and len(token) >= MIN_VALUE_LENGTH):
        return reply_to, {}
    return f"{base}+-ww_reply-@{domain}", {"-ww_reply-": token}


def _replace_longest_first(text: str | None, pairs: list[tuple[str, str]]) -> Any:
    if text is None:
        return None
    for value, tag in sorted(pairs, key=lambda p: len(p[0]), reverse=True):
        text = text.replace(value, tag)
    return text


def _json_bound(subs: Mapping[str, str]) -> int:
    """An upper bound of ``_json_size(subs)``: a character takes at most 6 bytes in JSON
    (``\\u00XX``), plus quotes and separators (8) per item and the braces."""
    return 2 + sum(6 * (len(k) + len(v)) + 8 for k, v in subs.items())


def _json_size(obj: Any) -> int:
    return len(json.dumps(obj, ensure_ascii=False).encode("utf-8"))


def _pack(prepared: list[_Prepared]) -> list[list[_Prepared]]:
    """Group by skeleton (and unsubscribe group) into requests of ≤1000, never one
    address twice in a request."""
    groups: dict[tuple[Any, ...], list[list[_Prepared]]] = {}
    addresses: dict[int, set[str]] = {}
    for item in prepared:
        chunks = groups.setdefault((*item.key, item.email.asm_group_id), [])
        address = item.email.to_email.strip().lower()
        for chunk in chunks:
            seen = addresses[id(chunk)]
            if len(chunk) < MAX_PERSONALIZATIONS and address not in seen:
                break
        else:
            chunk = []
            chunks.append(chunk)
            addresses[id(chunk)] = seen = set()
        chunk.append(item)
        seen.add(address)
    return [chunk for chunks in groups.values() for chunk in chunks]


# --- SendGrid --------------------------------------------------------------------------


class _Rejected(Exception):
    def __init__(self, reason: str, per_recipient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.per_recipient = per_recipient


class SendGridEmailSender:
    """Sends through SendGrid v3 ``/mail/send`` with the official ``sendgrid`` client."""

    def __init__(
        self,
        api_key: str,
        from_email: str,
        host: str = "https://api.sendgrid.com",
        *,
        from_name: str | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = SendGridAPIClient(api_key=api_key, host=host.rstrip("/"))
        self._client.client.timeout = timeout
        self._from = {"email": from_email, **({"name": from_name} if from_name else {})}
        self._clock = clock

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        """Send all; raise RateLimited/TransientSendError with ``results`` settled so far."""
        results: list[SendResult] = []
        try:
            for chunk in _pack([_skeletonise(e) for e in emails]):
                self._send_chunk(chunk, results)
        except SendError as exc:
            exc.results = results
            raise
        order = {e.send_id: i for i, e in enumerate(emails)}
        return sorted(results, key=lambda r: order.get(r.send_id, 0))

    def _send_chunk(self, chunk: list[_Prepared], results: list[SendResult]) -> None:
        try:
            message_id = self._post(self._request_body(chunk))
        except _Rejected as rejected:
            if rejected.per_recipient and len(chunk) > 1:
                # One bad personalization fails the whole request: bisect to isolate it.
                half = len(chunk) // 2
                self._send_chunk(chunk[:half], results)
                self._send_chunk(chunk[half:], results)
                return
            log.warning("SendGrid refused %d email(s): %s", len(chunk), rejected.reason)
            results.extend(
                SendResult(p.email.send_id, None, SendStatus.FAILED, rejected.reason) for p in chunk
            )
            return
        results.extend(SendResult(p.email.send_id, message_id, SendStatus.SENT) for p in chunk)

    def _request_body(self, chunk: list[_Prepared]) -> dict[str, Any]:
        (html, text, reply_to), group = chunk[0].key, chunk[0].email.asm_group_id
        # SendGrid refuses empty parts and wants text/plain before text/html.
        parts = (("text/plain", text), ("text/html", html))
        content = [{"type": kind, "value": value} for kind, value in parts if value]
        body = {
            "from": self._from,
            "content": content,
            "personalizations": [_personalization(p) for p in chunk],
            "tracking_settings": TRACKING_SETTINGS,
        }
        if reply_to:
            body["reply_to"] = {"email": reply_to}
        if group is not None:
            body["asm"] = {"group_id": group}
        return body

    def _post(self, body: dict[str, Any]) -> str | None:
        try:
            response = self._client.send(body)
        except HTTPError as exc:
            raise self._http_error(exc) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets
            raise TransientSendError(f"SendGrid unreachable: {exc}") from exc
        message_id: str | None = response.headers.get("X-Message-Id")
        return message_id

    def _http_error(self, exc: HTTPError) -> Exception:
        status = int(exc.status_code)
        if status == 429:
            return RateLimited(self._retry_after(exc.headers))
        reason, fields = _error_reason(status, exc.body)
        if status >= 500:
            return TransientSendError(reason)
        per_recipient = status == 413 or (
            status == 400 and any(f.startswith("personalizations") for f in fields)
        )
        return _Rejected(reason, per_recipient)

    def _retry_after(self, headers: Any) -> float:
        headers = headers or {}
        try:
            reset = float(headers.get("X-RateLimit-Reset"))
            return max(0.1, reset - self._clock())
        except (TypeError, ValueError):
            pass
        value = headers.get("Retry-After")
        if value:
            try:
                return max(0.1, float(value))
            except ValueError:
                pass
            try:
                return max(0.1, parsedate_to_datetime(value).timestamp() - self._clock())
            except (TypeError, ValueError):
                pass
        return 1.0


def _personalization(p: _Prepared) -> dict[str, Any]:
    e = p.email
    to = {"email": e.to_email, **({"name": e.to_name} if e.to_name else {})}
    out: dict[str, Any] = {"to": [to], "subject": e.subject}
    if e.headers:
        out["headers"] = {str(k): str(v) for k, v in e.headers.items()}
    if e.custom_args:
        out["custom_args"] = {str(k): str(v) for k, v in e.custom_args.items()}
    if p.substitutions:
        out["substitutions"] = p.substitutions
    return out


def _error_reason(status: int, body: bytes | None) -> tuple[str, list[str]]:
    try:
        errors = json.loads(body or b"{}").get("errors") or []
        messages = [str(e.get("message")) for e in errors if isinstance(e, dict)]
        fields = [str(e.get("field") or "") for e in errors if isinstance(e, dict)]
    except (ValueError, AttributeError):
        messages, fields = [], []
    text = "; ".join(messages) or (body or b"").decode("utf-8", "replace")[:200]
    return f"SendGrid {status}: {text}".rstrip(": "), fields


# --- event webhook ---------------------------------------------------------------------


@lru_cache(maxsize=8)
def _public_key(public_key_b64: str) -> ec.EllipticCurvePublicKey:
    # The library wraps the base64 DER from SendGrid's settings page in PEM armour.
    key = EventWebhook(public_key_b64.strip()).public_key
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("the SendGrid webhook public key is not an EC key")
    return key


def verify_event_webhook(
    public_key_b64: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    max_age_seconds: float | None = None,
    max_ahead_seconds: float = 300.0,
    now: float | None = None,
) -> bool:
    """True when ``signature`` is SendGrid's ECDSA (SHA-256) over ``timestamp + body``.

    Verified on the raw request bytes (a re-serialised JSON body would not match). A
    malformed key raises ValueError (configuration error); a malformed or wrong
    signature returns False. With ``max_age_seconds``, timestamps older than that, or
    more than ``max_ahead_seconds`` ahead of ``now`` (clock skew), are refused too.
    """
    key = _public_key(public_key_b64)
    if not signature or not timestamp:
        return False
    if max_age_seconds is not None:
        try:
            age = (time.time() if now is None else now) - float(timestamp)
        except ValueError:
            return False
        if not -max_ahead_seconds <= age <= max_age_seconds:  # also refuses NaN
            return False
    try:
        der = base64.b64decode(signature, validate=True)
        key.verify(der, timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True
