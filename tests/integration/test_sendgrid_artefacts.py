"""SendGrid's own artefacts, posted over HTTP to a running API, followed through real
Kafka and the stream worker into SQL (SQLite and PostgreSQL). Where each artefact comes
from: tests/fakes/sendgrid_artefacts.py.

* The Event Webhook Reference's example of each of the 11 event types, plus the
  asynchronous bounce (no ``sg_message_id``) and the ``sg_machine_open`` open, each for
  its own contact, in one batch signed with the private key sendgrid-go publishes: every
  type gets its outcome (stored, counted or flagged, suppression, consent).
* The same batch retried by SendGrid an hour later, same signature: all duplicates.
* The golden vectors as published (signed years ago): refused over HTTP (older than 72 h).
* The ``sendgrid`` wheel's Inbound Parse samples with their bare LF endings, addressed to
  one of our sends: ``reply.received``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import select

from services.db.models import Contact, EngagementEvent, Suppression
from services.domain.pseudonyms import pseudonymise
from services.tracking.inbound import reply_address
from tests.fakes import sendgrid_artefacts as sg
from tests.fakes.sendgrid_server import WebhookSigner
from tests.integration.journeys.helpers import add_sent, person
from tests.stack import Stack, wait_for

pytestmark = pytest.mark.kafka
REPLY_DOMAIN = "replies.example.org"
GO_SIGNER = WebhookSigner(sg.GO_PRIVATE_KEY)
# The outcome of each documented event, on its own contact: the stored type, whether it
# is a machine hit, whether the address ends up suppressed and the consent withdrawn.
OUTCOMES: dict[str, tuple[str, bool, bool, str]] = {
    "processed": ("email.processed", False, False, "confirmed"),
    "dropped": ("email.dropped", False, False, "confirmed"),
    "delivered": ("email.delivered", False, False, "confirmed"),
    "deferred": ("email.deferred", False, False, "confirmed"),
    "bounce": ("email.bounced", False, True, "confirmed"),  # suppressed, not their choice
    "async-bounce": ("email.bounced", False, True, "confirmed"),
    "open": ("email.open", False, False, "confirmed"),  # counted: aware
    "machine-open": ("email.open", True, False, "confirmed"),  # kept, flagged
    "click": ("link.click", False, False, "confirmed"),  # counted: aware
    "spamreport": ("email.spamreport", False, True, "unsubscribed"),
    "unsubscribe": ("email.unsubscribed", False, True, "unsubscribed"),
}
# Group (ASM) un/resubscribes (group_unsubscribe, group_resubscribe) are handled per
# group by another change: here they are only posted in the batch, which must be
# accepted (200) with every other event's outcome intact.


def samples() -> dict[str, dict[str, Any]]:
    """Every documented example, keyed by the contact it is posted for."""
    out = {kind: sg.documented_event(kind) for kind in sg.EVENT_TYPES}
    return out | {"async-bounce": sg.async_bounce(), "machine-open": sg.machine_open()}


@pytest.fixture
def stack(kafka_bootstrap, database_url, tmp_path):
    s = Stack(
        kafka_bootstrap,
        database_url,
        tmp_path,
        sendgrid_webhook_public_key=sg.GO_NODE_PUBLIC_KEY,
        reply_domain=REPLY_DOMAIN,
    )
    yield s
    s.close()


def test_sendgrids_documented_events_and_inbound_samples_get_their_outcomes(stack: Stack):
    secret = stack.settings.secret_key.get_secret_value().encode()
    stack.start_relay()
    stack.start_worker()
    events = samples()
    with stack.client() as client:
        contacts = [
            {"external_id": ref, "email": f"{ref}@example.net", "consent": {"email": "confirmed"}}
            for ref in [*events, "replier"]
        ]
        assert client.post("/api/v1/contacts", json=contacts).status_code == 200
        batch = [
            event | {"email": f"{ref}@example.net", "ww_person": pseudonymise(secret, ref)}
            for ref, event in events.items()
        ]
        body = json.dumps(batch).encode()
        headers = GO_SIGNER.sign(body, timestamp=str(int(time.time()) - 3600))
        first = client.post("/webhooks/sendgrid/events", content=body, headers=headers)
        assert first.status_code == 200, first.text
        assert first.json() == {"accepted": len(batch), "duplicates": 0, "ignored": 0}
        retried = client.post("/webhooks/sendgrid/events", content=body, headers=headers)
        assert retried.json()["duplicates"] == len(batch)  # SendGrid's retry: all duplicates
        as_published = {  # sendgrid-go's golden vector, signed in 2020: older than 72 h
            "X-Twilio-Email-Event-Webhook-Signature": sg.GO_NODE_SIGNATURE,
            "X-Twilio-Email-Event-Webhook-Timestamp": sg.GO_NODE_TIMESTAMP,
        }
        old = client.post(
            "/webhooks/sendgrid/events", content=sg.GO_NODE_PAYLOAD, headers=as_published
        )
        assert old.status_code == 403
        send_ids = _post_inbound_samples(client, secret)

        expected = {pseudonymise(secret, ref) for ref in OUTCOMES}

        def arrived() -> list[EngagementEvent] | None:
            rows = _events(stack)
            people = {e.person for e in rows}
            replies = [e for e in rows if e.type == "reply.received"]
            return rows if expected <= people and len(replies) == len(send_ids) else None

        stored = wait_for(arrived, 90, 0.3, what="the documented events and the replies in SQL")
        _check_outcomes(stack, client, secret, stored)
    replies = [e for e in stored if e.type == "reply.received"]
    assert len(replies) == len(send_ids) == len(sg.INBOUND_SAMPLES)
    assert {e.person for e in replies} == {person("replier")}  # the person the sends went to
    assert all(e.properties == {"matched_by": "address"} for e in replies)


def _post_inbound_samples(client: Any, secret: bytes) -> list[str]:
    """Each sample of the wheel as ``send.py`` posts it (bare LF), to a send's reply address."""
    container = client.app.state.container
    send_ids = []
    for i, name in enumerate(sg.INBOUND_SAMPLES):
        (send_id,) = add_sent(container, f"cmp-inbound-{i}", [("replier", container.now())])
        address = reply_address(secret, send_id, REPLY_DOMAIN).encode()
        sample = sg.inbound_sample(name)
        for to in sg.INBOUND_SAMPLE_TO:
            sample = sample.replace(to, address)
        r = client.post(
            "/webhooks/sendgrid/inbound",
            content=sample,
            headers={"Content-Type": sg.INBOUND_CONTENT_TYPE},
        )
        assert r.status_code == 200 and r.json()["matched"] is True, r.text
        send_ids.append(send_id)
    return send_ids


def _events(stack: Stack) -> list[EngagementEvent]:
    with stack.sessions() as s:
        return list(s.scalars(select(EngagementEvent)))


def _check_outcomes(stack: Stack, client: Any, secret: bytes, stored: list[Any]) -> None:
    by_person = {e.person: e for e in stored if e.type != "reply.received"}
    with stack.sessions() as s:
        suppressed = set(s.scalars(select(Suppression.email_normalized)))
        consent = dict(s.execute(select(Contact.external_id, Contact.email_consent)).all())
    for ref, (type_, bot, is_suppressed, email_consent) in OUTCOMES.items():
        event = by_person[pseudonymise(secret, ref)]
        assert (event.type, event.bot) == (type_, bot), ref
        assert (f"{ref}@example.net" in suppressed, consent[ref]) == (
            is_suppressed,
            email_consent,
        ), ref
    assert by_person[pseudonymise(secret, "machine-open")].bot_reason == "machine-open"
    # The machine open is in the bot report and not among the people who became aware.
    bots = client.get("/api/v1/reports/bots", params={"from": "2017-12-15", "to": "2017-12-15"})
    assert [(r["reason"], r["type"], r["people"]) for r in bots.json()["rows"]] == [
        ("machine-open", "email.open", 1)
    ]
    stages = client.get(
        "/api/v1/metrics/stages", params={"period": "month", "from": "2017-12", "to": "2017-12"}
    ).json()
    assert stages["rows"][0]["aware"] == 2  # the human open and the click
    assert {
        e.person for e in stored if e.bot is False and e.type in ("email.open", "link.click")
    } == {pseudonymise(secret, "open"), pseudonymise(secret, "click")}
