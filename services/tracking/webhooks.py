"""SendGrid's Event Webhook: verified on the raw body, mapped to engagement events.

Events map back to WINWIN through the ``custom_args`` every send carries (``ww_campaign``,
``ww_person``, ``ww_send``: ids and pseudonyms only). Duplicates are dropped by
``sg_event_id`` (the ingest ledger) and by content (person, message id, event,
timestamp, url), because SendGrid's retries can carry new ids. The person is in the
content key because asynchronous bounces carry no ``sg_message_id``: two people's
bounces in the same second must stay two events. Both keys live in the ingest ledger,
in the same transaction as the outbox rows, so a batch answered 500 (and retried by
SendGrid) is either wholly kept or wholly not.

Age of a signed post: SendGrid retries a post that was not answered 2xx for up to 24
hours, re-sending the *same* signed body and timestamp. So a validly signed post is
accepted up to ``WINWIN_SENDGRID_WEBHOOK_MAX_AGE_HOURS`` old (default 72), and at most
FUTURE_SKEW ahead of the server's clock. Replaying a captured post is harmless: every
event in it is a duplicate. Outside dev mode a webhook without a configured public key
is refused.

Opens SendGrid marks ``sg_machine_open`` (Apple Mail Privacy Protection prefetches) and
opens or clicks whose user agent is a scanner's or an image proxy's are kept, flagged
as machine hits (``bot``, with the reason) and not counted, like our own pixel's.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from services.config import Settings
from services.db.models import AcceptedEvent
from services.db.upsert import insert_new
from services.domain.events import EARLIEST, FUTURE_TOLERANCE, LATEST, format_timestamp
from services.domain.inputs import storable, unstorable
from services.domain.pseudonyms import is_pseudonym
from services.domain.unsubscribe_groups import GroupChoice, group_choice
from services.tracking.bots import sendgrid_bot_reason
from services.tracking.consent import choose_group, suppress_address

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from services.application import Container

log = logging.getLogger(__name__)
SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"

# SendGrid event -> WINWIN event type (None: kept for delivery state only).
TYPES = {
    "processed": "email.processed",
    "delivered": "email.delivered",
    "open": "email.open",
    "click": "link.click",
    "bounce": "email.bounced",
    "dropped": "email.dropped",
    "deferred": "email.deferred",
    "spamreport": "email.spamreport",
    "unsubscribe": "email.unsubscribed",
    "group_unsubscribe": "email.unsubscribed",
    "group_resubscribe": "email.resubscribed",
}
# A group (un)subscribe naming its group (``asm_group_id``) changes that group only
# (consent.choose_group); without one, a group unsubscribe suppresses as below.
SUPPRESSING = {
    "bounce": "bounce",
    "spamreport": "spamreport",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "group_unsubscribe",
}


MAX_ADDRESS = 320  # the address columns (suppressions, contacts): RFC 5321's limit
FUTURE_SKEW = 300  # seconds a signed timestamp may be ahead of the server's clock


def signature_ok(
    settings: Settings,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
    *,
    verify: Callable[..., bool],
) -> bool:
    """True when the ECDSA signature over timestamp+body holds and the timestamp is at
    most the configured age old (and not ahead of the clock by more than FUTURE_SKEW).
    Without a configured key: True in dev mode only. ``verify`` is the SendGrid adapter's
    ``verify_event_webhook`` (services/campaigns/channels/email.py), passed in by the router."""
    if not settings.sendgrid_webhook_public_key:
        if settings.env != "dev":
            log.warning("SendGrid webhook refused: WINWIN_SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
        return settings.env == "dev"
    signature, timestamp = headers.get(SIGNATURE), headers.get(TIMESTAMP)
    if not signature or not timestamp:
        return False
    return verify(
        settings.sendgrid_webhook_public_key,
        body,
        signature,
        timestamp,
        max_age_seconds=settings.sendgrid_webhook_max_age_hours * 3600,
        max_ahead_seconds=FUTURE_SKEW,
        now=time.time() if now is None else now,
    )


def ingest_events(container: Container, items: list[Any]) -> dict[str, int]:
    """Record the usable events; suppress addresses SendGrid reports as unreachable.
    One transaction: suppressions, both dedup keys and the outbox rows."""
    records, ignored = [], 0
    with container.sessions() as session, session.begin():
        for index, item in enumerate(items):
            problem = _unusable(item)
            if problem is not None:
                if problem:  # an unknown event type is no fault: SendGrid adds types
                    log.warning("SendGrid event %d skipped: %s", index, problem)
                ignored += 1
                continue
            kind = item["event"]
            choice = _group_choice(item)
            if choice is not None:  # about one unsubscribe group only (asm_group_id)
                choose_group(session, item["email"], choice)
            elif (
                kind in SUPPRESSING
                and isinstance(item.get("email"), str)
                and (kind != "bounce" or item.get("type", "bounce") == "bounce")
            ):
                suppress_address(session, item["email"], SUPPRESSING[kind])
            keyed = _record(item)
            if keyed is None:
                ignored += 1
            else:
                records.append(keyed)
        fresh = _new_by_sendgrid_id(session, records)
        result = container.ingest.spool(session, fresh)
        result.duplicates += len(records) - len(fresh)
    container.ingest.observe(result)
    return {"accepted": result.accepted, "duplicates": result.duplicates, "ignored": ignored}


def _unusable(item: Any) -> str | None:
    """Why an event cannot be kept ('' for a type WINWIN does not use), or None. Only
    field names go into the reason, never values (addresses are personal data)."""
    if not isinstance(item, dict):
        return "not a JSON object"
    if not isinstance(item.get("event"), str):
        return "event: not a string"
    if item["event"] not in TYPES:
        return ""
    address = item.get("email")
    if isinstance(address, str) and len(address) > MAX_ADDRESS:
        return f"email: longer than {MAX_ADDRESS} characters"
    for name in ("email", "sg_event_id"):
        problem = unstorable(item.get(name))
        if problem is not None:
            return f"{name}: {problem}"
    return None


def _group_choice(item: dict[str, Any]) -> GroupChoice | None:
    """The choice of a group (un)subscribe that names its group and an address, made at
    the event's time (its arrival when the timestamp is unusable)."""
    if not isinstance(item.get("email"), str):
        return None
    try:
        at = datetime.fromtimestamp(int(item.get("timestamp", "")), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        at = datetime.now(UTC)
    return group_choice(item, at)


def _new_by_sendgrid_id(
    session: Session, keyed: list[tuple[str | None, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The records whose ``sg_event_id`` was never seen (their event id is the content key)."""
    keys = [{"event_id": k} for k in {k for k, _ in keyed if k}]
    new = insert_new(session, AcceptedEvent.__table__, keys, "event_id")
    kept = []
    for key, record in keyed:
        if key is None or key in new:
            kept.append(record)
            new.discard(key)  # a second copy within this batch is a duplicate
    return kept


def _record(item: dict[str, Any]) -> tuple[str | None, dict[str, Any]] | None:
    """(the ``sg_event_id`` ledger key, the engagement record keyed by content), or None."""
    person = item.get("ww_person")
    if not is_pseudonym(person):
        return None
    try:
        at = datetime.fromtimestamp(int(item.get("timestamp", 0)), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    if not EARLIEST <= at < LATEST:  # the stream's time range (services/domain/events.py)
        return None
    if at > datetime.now(UTC) + FUTURE_TOLERANCE:  # ignored, like the API's events
        return None
    fields = ("sg_message_id", "event", "timestamp", "url")
    content = "|".join([str(person), *(str(item.get(k, "")) for k in fields)])
    sg_id = item.get("sg_event_id")
    reason = sendgrid_bot_reason(item)
    record: dict[str, Any] = {
        "event_id": "sg:" + hashlib.sha256(content.encode()).hexdigest()[:32],
        "type": TYPES[item["event"]],
        "occurred_at": format_timestamp(at),
        "person": person,
        "campaign_id": _short(item.get("ww_campaign")),
        "send_id": _short(item.get("ww_send")),
        "channel": "email",
        "source": "webhook",
        "properties": {},
        "bot": reason is not None,
        "bot_reason": reason,
    }
    return (f"sgid:{str(sg_id)[:100]}" if sg_id else None), record


def _short(value: Any) -> str | None:
    """An id from ``custom_args`` (ours are short); anything else is dropped."""
    return value if isinstance(value, str) and 0 < len(value) <= 40 and storable(value) else None
