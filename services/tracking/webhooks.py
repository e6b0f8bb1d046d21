"""SendGrid's Event Webhook: verified on the raw body, mapped to engagement events.

Events map back to WINWIN through the ``custom_args`` every send carries (``ww_campaign``,
``ww_person``, ``ww_send``: ids and pseudonyms only). Duplicates are dropped by
``sg_event_id`` (the ingest ledger) and by content (message id, event, timestamp, url),
because SendGrid's retries can carry new ids.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from services.config import Settings
from services.domain.events import format_timestamp
from services.domain.pseudonyms import is_pseudonym
from services.tracking.consent import suppress_address

log = logging.getLogger(__name__)
SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"

# SendGrid event -> WINWIN event type (None: kept for delivery state only).
TYPES = {
    "processed": "email.processed", "delivered": "email.delivered", "open": "email.open",
    "click": "link.click", "bounce": "email.bounced", "dropped": "email.dropped",
    "deferred": "email.deferred", "spamreport": "email.spamreport",
    "unsubscribe": "email.unsubscribed", "group_unsubscribe": "email.unsubscribed",
    "group_resubscribe": "email.resubscribed",
}
SUPPRESSING = {"bounce": "bounce", "spamreport": "spamreport", "unsubscribe": "unsubscribe",
               "group_unsubscribe": "group_unsubscribe"}


def signature_ok(settings: Settings, headers: Mapping[str, str], body: bytes) -> bool:
    """True when no key is configured, or the ECDSA signature over timestamp+body holds."""
    if not settings.sendgrid_webhook_public_key:
        return True
    signature, timestamp = headers.get(SIGNATURE), headers.get(TIMESTAMP)
    if not signature or not timestamp:
        return False
    from services.campaigns.channels.email import verify_event_webhook

    return verify_event_webhook(settings.sendgrid_webhook_public_key, body, signature, timestamp)


def ingest_events(container: Any, items: list[Any]) -> dict[str, int]:
    """Record the usable events; suppress addresses SendGrid reports as unreachable."""
    records, ignored = [], 0
    with container.sessions() as session, session.begin():
        for item in items:
            if not isinstance(item, dict) or item.get("event") not in TYPES:
                ignored += 1
                continue
            kind = item["event"]
            if kind in SUPPRESSING and isinstance(item.get("email"), str):
                if kind != "bounce" or item.get("type", "bounce") == "bounce":
                    suppress_address(session, item["email"], SUPPRESSING[kind])
            record = _record(item)
            if record is None:
                ignored += 1
            else:
                records.append(record)
    result = container.ingest.record(records)
    return {"accepted": result.accepted, "duplicates": result.duplicates, "ignored": ignored}


def _record(item: dict[str, Any]) -> dict[str, Any] | None:
    person, campaign = item.get("ww_person"), item.get("ww_campaign")
    if not is_pseudonym(person):
        return None
    try:
        at = datetime.fromtimestamp(int(item.get("timestamp", 0)), UTC)
    except (TypeError, ValueError, OverflowError):
        return None
    content = "|".join(str(item.get(k, "")) for k in ("sg_message_id", "event", "timestamp", "url"))
    event_id = "sg:" + (str(item.get("sg_event_id")) if item.get("sg_event_id") else hashlib.sha256(content.encode()).hexdigest()[:32])
    return {
        "event_id": event_id[:110], "type": TYPES[item["event"]], "occurred_at": format_timestamp(at),
        "person": person, "campaign_id": campaign if isinstance(campaign, str) else None,
        "send_id": item.get("ww_send") if isinstance(item.get("ww_send"), str) else None,
        "channel": "email", "source": "webhook", "properties": {},
        "bot": False,
    }
