"""Privacy: contacts seeded with sentinel strings (an email address, a diagnosis word in
the name and the attributes) go through an email campaign, opens, clicks, webhooks and
API events. No sentinel appears in any Kafka topic's bytes (every topic of the stack's
prefix), in any URL WINWIN generated, in SendGrid ``custom_args``/categories, or in the
API's or the worker's logs. Landing and redirect responses send
``Referrer-Policy: no-referrer``."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest

from services.bus import topics
from services.db.models import EngagementEvent
from services.tracking.replay import read_topic
from tests.fakes.sendgrid_server import FakeSendGrid
from tests.stack import BROWSER, Stack, email_campaign, signed_stack, wait_for

pytestmark = pytest.mark.kafka
DIAGNOSIS = "Neuroblastomasentinel"
SENTINELS = ["sentinel.parent", "hospital-sentinel.example", DIAGNOSIS.lower()]


def _leaks(text: str) -> list[str]:
    low = text.lower()
    return [s for s in SENTINELS if s in low]


@pytest.fixture
def stack(kafka_bootstrap, database_url, tmp_path):
    s = signed_stack(kafka_bootstrap, database_url, tmp_path)
    yield s
    s.close()


def test_sentinels_never_leave_the_contacts_table(stack: Stack, caplog):
    from services.campaigns.channels.email import SendGridEmailSender
    from services.campaigns.dispatch import Dispatcher

    caplog.set_level(logging.DEBUG)
    stack.start_relay()
    stack.start_worker()
    later = datetime.now(UTC) + timedelta(
        minutes=5
    )  # clicks well after delivery: people, not scanners
    with FakeSendGrid("SG.test-key") as sendgrid, stack.client() as client:
        contacts = [
            {
                "external_id": f"fam-{i}",
                "email": f"Sentinel.Parent{i}@Hospital-Sentinel.example",
                "name": f"{DIAGNOSIS} Family {i}",
                "role": "parent",
                "attributes": {"diagnosis": DIAGNOSIS, "ward": f"{DIAGNOSIS} ward"},
                "consent": {"email": "confirmed"},
            }
            for i in range(20)
        ]
        assert client.post("/api/v1/contacts", json=contacts).status_code == 200
        assert (
            client.post(
                "/api/v1/resources",
                json={
                    "id": "diet",
                    "title": "Diet tips",
                    "kind": "tips",
                    "url": "https://network.example.org/diet",
                },
            ).status_code
            == 201
        )
        cid = email_campaign(
            client,
            {
                "subject": "Hello {{ contact.first_name }}",
                "html": '<p>Hi {{ contact.name }} ({{ contact.attributes.diagnosis | default("") }})</p>{% for r in resources %}'
                '<a href="{{ r.url }}">{{ r.title }}</a>{% endfor %}<a href="{{ unsubscribe_url }}">u</a>',
                "text": "Hi {{ contact.name }}\n{% for r in resources %}{{ r.url }}\n{% endfor %}{{ unsubscribe_url }}",
            },
            name="Diet",
            resources=["diet"],
        )
        assert client.post(f"/api/v1/campaigns/{cid}/schedule", json={}).status_code == 200
        container = client.app.state.container
        sender = SendGridEmailSender("SG.test-key", "outreach@example.org", sendgrid.host)
        assert Dispatcher(container, sender).dispatch_due(datetime.now(UTC)) == 20
        container.now = lambda: later
        urls = set()
        for mail in sendgrid.delivered:
            assert DIAGNOSIS in (mail.html or "")  # the content itself is personal, as intended
            found = re.findall(
                r"https?://[^\s\"'<>]+", f"{mail.html} {mail.text} {json.dumps(mail.headers)}"
            )
            urls.update(found)
            assert not _leaks(json.dumps(mail.custom_args)), mail.custom_args
        for body in sendgrid.accepted_bodies:
            meta = [body.get("custom_args"), body.get("categories")] + [
                p.get("custom_args") for p in body.get("personalizations", [])
            ]
            assert not _leaks(json.dumps(meta)), meta
        assert urls and not [u for u in urls if _leaks(u)]
        tracked = sorted(u for u in urls if u.startswith("http://testserver/"))
        for url in tracked:
            path = url.removeprefix("http://testserver")
            r = client.get(path, follow_redirects=False, headers={"User-Agent": BROWSER})
            assert r.status_code in (200, 302), (path, r.status_code)
            assert r.headers["referrer-policy"] == "no-referrer", path
            assert not _leaks(r.headers.get("location", "")) and not _leaks(
                r.headers.get("set-cookie", "")
            )
        for pixel in re.findall(
            r"/o/[A-Za-z0-9_.-]+\.gif", " ".join(m.html or "" for m in sendgrid.delivered)
        ):
            assert client.get(pixel).headers["referrer-policy"] == "no-referrer"
        webhook = [
            {
                "email": m.to,
                "event": "delivered",
                "timestamp": int(later.timestamp()),
                "sg_event_id": f"d{i}",
                "sg_message_id": f"m{i}",
                **m.custom_args,
            }
            for i, m in enumerate(sendgrid.delivered)
        ]
        body = json.dumps(webhook).encode()
        assert (
            client.post(
                "/webhooks/sendgrid/events", content=body, headers=stack.signer.sign(body)
            ).status_code
            == 200
        )
        api_events = [
            {
                "event_id": f"v{i}",
                "type": "resource.view",
                "occurred_at": "2017-08-14T10:00:00Z",
                "person_ref": f"fam-{i}",
                "properties": {"page": "diet"},
            }
            for i in range(20)
        ]
        assert client.post("/api/v1/events", json=api_events).status_code == 202
        wait_for(
            lambda: stack.count(EngagementEvent) >= len(tracked) + 40, 60, 0.3, what="events in SQL"
        )
    kafka_bytes = 0
    for name in topics.ALL:
        for msg in read_topic(stack.settings, name):
            raw = (msg.key or b"") + (msg.value or b"")
            kafka_bytes += len(raw)
            assert not _leaks(raw.decode("utf-8", "replace")), (name, raw[:300])
    logs = "\n".join(r.getMessage() for r in caplog.records) + stack.worker_log()
    assert not _leaks(logs), [line for line in logs.splitlines() if _leaks(line)][:5]
    print(
        f"\n[privacy] 20 contacts with sentinels, {len(sendgrid.delivered)} emails, {len(tracked)} tracked URLs, "
        f"{len(webhook)} webhook + {len(api_events)} API events; {kafka_bytes} Kafka bytes in {len(topics.ALL)} "
        f"topics, {len(caplog.records)} log records + worker log: 0 sentinels"
    )
