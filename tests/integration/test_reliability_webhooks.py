"""Signed SendGrid webhooks under retries, duplicates and forgeries, on real Kafka.

10,000 events in shuffled batches, with 5% exact duplicates, 2% same-content-new-id
duplicates (SendGrid retries can carry new ``sg_event_id``s), forged batches (1% of the
events: wrong key, altered body, no signature, a signed timestamp older than the 72 h
accepted), and the first attempt of 10% of the batches answered 500 by a fault injected
before or after the commit (SendGrid retries them): the SQL counts equal the
deduplicated valid set exactly, and Kafka holds no event of a forged batch.
"""

from __future__ import annotations

import json
import random
import time

import pytest

from services.bus import topics
from services.bus.envelopes import decode
from services.db.models import EngagementEvent
from services.tracking.ingest import Ingest
from services.tracking.replay import read_topic
from tests.fakes.sendgrid_server import WebhookSigner
from tests.stack import Stack, signed_stack, wait_for

pytestmark = pytest.mark.kafka
EVENTS = 10_000


#: Where a webhook batch can fail: inside its transaction (after its records are spooled,
#: so the commit never happens) or after the commit (once the result is observed).
POINTS = ("webhook:before-commit", "webhook:after-commit")


class Faults(Ingest):
    """A test double of the application's ingest (``container.ingest``, which the webhook
    spools through): the real one, failing chosen attempts at one of POINTS."""

    def __init__(self, real: Ingest) -> None:
        super().__init__(real.sessions, real.secret, real.now)
        self.fail_next: str | None = None
        self.injected = {p: 0 for p in POINTS}

    def spool(self, session, records):
        result = super().spool(session, records)
        self._fail_at(POINTS[0])
        return result

    def observe(self, result) -> None:
        super().observe(result)
        self._fail_at(POINTS[1])

    def _fail_at(self, point: str) -> None:
        if point == self.fail_next:
            self.fail_next = None
            self.injected[point] += 1
            raise RuntimeError(f"injected fault at {point}")


def _events(rng: random.Random, n: int, tag: str) -> list[dict]:
    kinds = ["processed", "delivered", "open", "click"]
    out = []
    for i in range(n):
        kind = rng.choice(kinds)
        item = {
            "email": f"x{i}@example.net",
            "event": kind,
            "timestamp": 1_700_000_000 + rng.randrange(86400 * 30),
            "sg_event_id": f"{tag}-ev-{i}",
            "sg_message_id": f"{tag}-msg-{i // 3}.filter",
            "ww_campaign": "cmp-1",
            "ww_person": f"p{rng.getrandbits(128):032x}",
            "ww_send": f"send-{i // 3}",
        }
        if kind == "click":
            item["url"] = f"https://network.example.org/r{i % 7}"
        out.append(item)
    return out


def _content(item: dict) -> tuple:
    return (item["sg_message_id"], item["event"], item["timestamp"], item.get("url", ""))


def _batches(rng: random.Random, items: list[dict]) -> list[list[dict]]:
    out, i = [], 0
    while i < len(items):
        size = rng.randint(20, 80)
        out.append(items[i : i + size])
        i += size
    return out


def _forged(
    rng: random.Random, signer: WebhookSigner, n: int, max_age_hours: float
) -> list[tuple[bytes, dict]]:
    other = WebhookSigner()
    kinds = ["wrong-key", "altered", "unsigned", "stale", "bad-base64"]
    out = []
    for k, batch in enumerate(_batches(rng, _events(rng, n, "forged"))):
        body = json.dumps(batch).encode()
        kind = kinds[k % len(kinds)]
        if kind == "wrong-key":
            headers = other.sign(body)
        elif kind == "altered":
            headers = signer.sign(body)
            body = body.replace(b"processed", b"delivered", 1).replace(b"open", b"click", 1) + b" "
        elif kind == "unsigned":
            headers = {}
        elif kind == "stale":
            too_old = int(time.time() - max_age_hours * 3600)
            headers = signer.sign(body, timestamp=str(too_old - 60))
        else:
            headers = signer.sign(body) | {
                "X-Twilio-Email-Event-Webhook-Signature": "!!not base64!!"
            }
        out.append((body, headers))
    return out


def _client(stack: Stack):
    """The stack's API, answering 500 (not raising) when a fault is injected."""
    from fastapi.testclient import TestClient

    from services.api import create_app
    from services.bootstrap import bootstrap

    return TestClient(create_app(bootstrap(stack.settings)), raise_server_exceptions=False)


@pytest.fixture
def stack(kafka_bootstrap, database_url, tmp_path):
    s = signed_stack(kafka_bootstrap, database_url, tmp_path)
    yield s
    s.close()


def test_webhooks_count_exactly_the_deduplicated_valid_set(stack: Stack):
    rng = random.Random(11)
    originals = _events(rng, EVENTS, "sg")
    exact = rng.sample(originals, EVENTS * 5 // 100)
    new_id = [
        dict(e, sg_event_id=f"retry-{i}-{e['sg_event_id']}")
        for i, e in enumerate(rng.sample(originals, EVENTS * 2 // 100))
    ]
    items = originals + exact + new_id
    rng.shuffle(items)
    batches = _batches(rng, items)
    forged = _forged(
        rng, stack.signer, EVENTS // 100, stack.settings.sendgrid_webhook_max_age_hours
    )
    failing_first = set(rng.sample(range(len(batches)), len(batches) // 10))
    stack.start_relay()
    stack.start_worker()
    accepted = duplicates = attempts = 0
    with _client(stack) as client:
        container = client.app.state.container
        container.ingest = faults = Faults(container.ingest)
        order = [("ok", i) for i in range(len(batches))] + [
            ("forged", i) for i in range(len(forged))
        ]
        rng.shuffle(order)
        for kind, i in order:
            if kind == "forged":
                body, headers = forged[i]
                r = client.post("/webhooks/sendgrid/events", content=body, headers=headers)
                assert r.status_code == 403, r.text
                continue
            body = json.dumps(batches[i]).encode()
            if i in failing_first:
                faults.fail_next = POINTS[i % 2]
            while True:  # SendGrid: retry (re-signed) until a 2xx
                attempts += 1
                with_client_errors = client.post(
                    "/webhooks/sendgrid/events", content=body, headers=stack.signer.sign(body)
                )
                if with_client_errors.status_code == 200:
                    break
                assert with_client_errors.status_code == 500
            out = with_client_errors.json()
            accepted += out["accepted"]
            duplicates += out["duplicates"]
    unique = len({_content(e) for e in originals})
    assert unique == EVENTS
    # 200 answers accept at most the unique set (batches failed after commit come back as dups)
    assert accepted <= EVENTS and accepted + duplicates == len(items)
    wait_for(
        lambda: stack.count(EngagementEvent) >= EVENTS, 120, 0.5, what="all webhook events in SQL"
    )
    engagement = [r for m in read_topic(stack.settings, topics.ENGAGEMENT) for r in decode(m.value)]
    in_kafka = {r["event_id"] for r in engagement}
    assert stack.count(EngagementEvent) == EVENTS
    injected = sum(faults.injected.values())
    assert injected == len(failing_first) and all(faults.injected.values())
    # after-commit faults mean some batches were published, then retried as duplicates
    assert len(in_kafka) == EVENTS
    forged_people = {item["ww_person"] for body, _ in forged for item in json.loads(body)}
    assert not forged_people & {r["person"] for r in engagement}
    print(
        f"\n[webhooks] {len(items)} events in {len(batches)} batches ({len(exact)} exact dups, "
        f"{len(new_id)} same-content-new-id dups); {len(forged)} forged batches "
        f"({sum(len(json.loads(b)) for b, _ in forged)} events) -> 403; {injected} first attempts "
        f"answered 500 ({faults.injected}); {attempts} POSTs; SQL {EVENTS} = expected {EVENTS}; "
        f"lost 0, doubled 0, forged in Kafka 0"
    )
