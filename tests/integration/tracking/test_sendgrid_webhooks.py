"""The SendGrid webhooks against SendGrid's own published artefacts (tests/fakes/
sendgrid_artefacts.py says where each comes from), posted over HTTP to the API on SQLite
and PostgreSQL. What the API accepts is read back from the SQL outbox (what goes to
Kafka); tests/integration/test_sendgrid_artefacts.py follows it through Kafka.

* the golden signature vectors of sendgrid-python/-java and sendgrid-go/-nodejs, through
  the verification function (their timestamps are years old);
* retried batches: a validly signed post is accepted up to 72 h old (issue 14, item 1);
* asynchronous bounces (no ``sg_message_id``) of two people in one second (item 2);
* ``sg_machine_open`` opens, flagged (item 3);
* the Inbound Parse samples of the ``sendgrid`` wheel, with their bare LF endings (item 6).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.api import create_app
from services.bootstrap import Container
from services.bus import topics
from services.campaigns.channels.email import verify_event_webhook
from services.config import Settings
from services.db.migrate import upgrade
from services.db.models import OutboxMessage
from services.db.models_consent import Reply
from services.tracking import webhooks
from services.tracking.inbound import reply_address
from tests.fakes import sendgrid_artefacts as sg
from tests.fakes.sendgrid_server import WebhookSigner
from tests.integration.journeys.helpers import (
    SECRET,
    Clock,
    add_contacts,
    add_sent,
    make_container,
    person,
)

EVENTS = "/webhooks/sendgrid/events"
INBOUND = "/webhooks/sendgrid/inbound"
REPLY_DOMAIN = "replies.example.org"
HOUR = 3600
#: Signs like SendGrid, with the private key sendgrid-go publishes for its test pair.
GO_SIGNER = WebhookSigner(sg.GO_PRIVATE_KEY)


@pytest.fixture
def container(database_url: str, tmp_path) -> Iterator[Container]:
    upgrade(database_url)
    c = make_container(
        database_url,
        tmp_path,
        Clock(),
        sendgrid_webhook_public_key=sg.GO_NODE_PUBLIC_KEY,
        reply_domain=REPLY_DOMAIN,
    )
    yield c
    c.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container)) as client:
        yield client


def spooled(c: Container, type_: str | None = None) -> list[dict[str, Any]]:
    """The engagement records waiting in the SQL outbox for Kafka (of ``type_``)."""
    with c.sessions() as s:
        rows = s.scalars(
            select(OutboxMessage.records).where(OutboxMessage.topic == topics.ENGAGEMENT)
        )
        records = [r for batch in rows for r in batch]
    return [r for r in records if type_ is None or r["type"] == type_]


def post(client: TestClient, items: list[dict[str, Any]], age: float = 0, signer=GO_SIGNER):
    """Post ``items`` as SendGrid does, signed ``age`` seconds ago."""
    body = json.dumps(items).encode()
    headers = signer.sign(body, timestamp=str(int(time.time() - age)))
    return client.post(EVENTS, content=body, headers=headers)


def of(kind_event: dict[str, Any], ref: str, **extra: Any) -> dict[str, Any]:
    """A documented event as SendGrid posts it for one of our emails: the recipient's
    address and our ``custom_args`` (SendGrid adds them to the event's top level)."""
    return kind_event | {"email": f"{ref}@example.net", "ww_person": person(ref)} | extra


# --- golden vectors -------------------------------------------------------------------------

VECTORS = {
    "sendgrid-python/java": (
        sg.PY_JAVA_PUBLIC_KEY,
        sg.PY_JAVA_PAYLOAD,
        sg.PY_JAVA_SIGNATURE,
        sg.PY_JAVA_TIMESTAMP,
    ),
    "sendgrid-go/nodejs": (
        sg.GO_NODE_PUBLIC_KEY,
        sg.GO_NODE_PAYLOAD,
        sg.GO_NODE_SIGNATURE,
        sg.GO_NODE_TIMESTAMP,
    ),
}


@pytest.mark.parametrize("vector", VECTORS.values(), ids=list(VECTORS))
def test_sendgrids_golden_vectors_verify_and_their_negative_cases_do_not(vector):
    key, payload, signature, timestamp = vector
    assert verify_event_webhook(key, payload, signature, timestamp)
    # The negative cases of the same library tests.
    assert not verify_event_webhook(sg.OTHER_PUBLIC_KEY, payload, signature, timestamp)
    assert not verify_event_webhook(key, b"payload", signature, timestamp)
    assert not verify_event_webhook(key, payload, sg.BAD_SIGNATURE, timestamp)
    assert not verify_event_webhook(key, payload, signature + "causing failure", timestamp)
    for bad in ("timestamp", "invalid timestamp", ""):
        assert not verify_event_webhook(key, payload, signature, bad)
    assert GO_SIGNER.public_key_b64 == sg.GO_NODE_PUBLIC_KEY  # the published private key's pair


# --- item 1: retried batches ----------------------------------------------------------------


def test_a_validly_signed_post_is_accepted_up_to_the_configured_age():
    """On the Python/Java golden vector: up to 72 h (the default) after its timestamp, and
    at most FUTURE_SKEW before it; WINWIN_SENDGRID_WEBHOOK_MAX_AGE_HOURS changes the bound."""
    settings = Settings(secret_key="x" * 32, sendgrid_webhook_public_key=sg.PY_JAVA_PUBLIC_KEY)
    assert settings.sendgrid_webhook_max_age_hours == 72
    headers = {webhooks.SIGNATURE: sg.PY_JAVA_SIGNATURE, webhooks.TIMESTAMP: sg.PY_JAVA_TIMESTAMP}
    signed_at = float(sg.PY_JAVA_TIMESTAMP)

    def ok(now: float, s: Settings = settings, h: dict[str, str] = headers) -> bool:
        return webhooks.signature_ok(s, h, sg.PY_JAVA_PAYLOAD, now=now, verify=verify_event_webhook)

    assert ok(signed_at + 72 * HOUR) and ok(signed_at + 24 * HOUR + 1) and ok(signed_at)
    assert not ok(signed_at + 72 * HOUR + 1)
    assert ok(signed_at - webhooks.FUTURE_SKEW) and not ok(signed_at - webhooks.FUTURE_SKEW - 1)
    week = settings.model_copy(update={"sendgrid_webhook_max_age_hours": 24 * 7})
    assert ok(signed_at + 100 * HOUR, week) and not ok(signed_at + 24 * 7 * HOUR + 1, week)
    forged = headers | {webhooks.SIGNATURE: sg.BAD_SIGNATURE}
    assert not ok(signed_at, h=forged) and not ok(signed_at, h={})


def test_a_batch_retried_a_day_later_is_kept_and_forgeries_are_still_refused(client, container):
    """SendGrid retries a failed post for up to 24 h with the body and timestamp it signed
    first: that post is accepted (it was 403 with a 10-minute window). Bad signatures,
    posts older than 72 h and timestamps from the future are refused, nothing kept."""
    late = [of(sg.documented_event("open"), "late", sg_event_id="late-1")]
    refused = [
        post(client, [of(sg.documented_event("open"), "old", sg_event_id="old")], age=73 * HOUR),
        post(client, [of(sg.documented_event("open"), "ahead", sg_event_id="ahead")], age=-HOUR),
        post(
            client,
            [of(sg.documented_event("open"), "key", sg_event_id="k")],
            signer=WebhookSigner(),
        ),
    ]
    body = json.dumps(late).encode()
    altered = client.post(EVENTS, content=body + b" ", headers=GO_SIGNER.sign(body))
    assert [r.status_code for r in [*refused, altered]] == [403] * 4
    assert spooled(container) == []

    retried = post(client, late, age=25 * HOUR)
    assert retried.status_code == 200, retried.text
    assert retried.json() == {"accepted": 1, "duplicates": 0, "ignored": 0}
    assert post(client, late, age=26 * HOUR).json()["duplicates"] == 1  # a replay: harmless
    assert [r["person"] for r in spooled(container)] == [person("late")]


# --- item 2: asynchronous bounces -------------------------------------------------------------


def test_asynchronous_bounces_of_two_people_in_the_same_second_are_both_kept(client, container):
    ann = of(sg.async_bounce(), "ann", sg_event_id="bounce-ann")
    bob = of(sg.async_bounce(), "bob", sg_event_id="bounce-bob")
    assert "sg_message_id" not in ann and ann["timestamp"] == bob["timestamp"]

    first = post(client, [ann, bob]).json()
    assert first == {"accepted": 2, "duplicates": 0, "ignored": 0}
    # SendGrid's retries: the same ids, or the same content under a new id, stay duplicates.
    again = post(client, [ann, bob, ann | {"sg_event_id": "bounce-ann-retry"}]).json()
    assert again == {"accepted": 0, "duplicates": 3, "ignored": 0}
    bounces = spooled(container, "email.bounced")
    assert sorted(r["person"] for r in bounces) == sorted([person("ann"), person("bob")])


# --- item 3: machine opens --------------------------------------------------------------------


def test_sendgrid_machine_opens_are_kept_flagged_and_the_human_open_is_not(client, container):
    machine = of(sg.machine_open(), "apple", sg_event_id="open-machine")
    human = of(sg.documented_event("open"), "reader", sg_event_id="open-human")
    proxy = of(sg.documented_event("open"), "gmail", sg_event_id="open-proxy")
    proxy["useragent"] = (
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    )
    assert post(client, [machine, human, proxy]).json()["accepted"] == 3

    flags = {r["person"]: (r["bot"], r.get("bot_reason")) for r in spooled(container, "email.open")}
    assert flags == {
        person("apple"): (True, "machine-open"),
        person("reader"): (False, None),
        person("gmail"): (True, "image-proxy"),  # the rule our own pixel applies
    }


# --- item 6: Inbound Parse samples with bare LF -----------------------------------------------


@pytest.mark.parametrize("name", sg.INBOUND_SAMPLES)
def test_the_wheels_inbound_samples_with_bare_lf_are_read(client, container, name):
    """Each sample exactly as ``send.py`` posts it (bare LF): read (it was 400), kept for
    staff (it is addressed to no send of ours), its contents exactly as sent."""
    sample = sg.inbound_sample(name)
    assert b"\r\n" not in sample
    response = client.post(
        INBOUND, content=sample, headers={"Content-Type": sg.INBOUND_CONTENT_TYPE}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"matched": False, "duplicate": False}
    with container.sessions() as s:
        (text,) = s.scalars(select(Reply.text)).all()
    assert text.startswith("Hello Twilio SendGrid!") and "\r" not in text


@pytest.mark.parametrize("name", sg.INBOUND_SAMPLES)
def test_the_wheels_inbound_samples_with_bare_lf_become_replies(client, container, name):
    """Each sample as ``send.py`` posts it (bare LF), addressed to one of our sends'
    reply addresses instead of the sample's ``inbound@…`` address."""
    add_contacts(container, ["ann"])
    (send_id,) = add_sent(container, "cmp-1", [("ann", container.now())])
    address = reply_address(SECRET.encode(), send_id, REPLY_DOMAIN).encode()
    sample = sg.inbound_sample(name)
    assert any(to in sample for to in sg.INBOUND_SAMPLE_TO)
    for to in sg.INBOUND_SAMPLE_TO:
        sample = sample.replace(to, address)
    response = client.post(
        INBOUND, content=sample, headers={"Content-Type": sg.INBOUND_CONTENT_TYPE}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"matched": True, "duplicate": False}
    (event,) = spooled(container, "reply.received")
    assert (event["person"], event["send_id"]) == (person("ann"), send_id)
