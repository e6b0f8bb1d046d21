"""A broker that keeps nothing across restarts (``WINWIN_KAFKA_EPHEMERAL``: the embedded
default, memory storage): the outbox keeps every published record until the sinks have
stored it, a relay that starts sends the kept records again (what a lost broker held),
and the rows the sinks stored are pruned, so the outbox does not grow."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from services.bus import outbox, topics
from services.bus.envelopes import decode
from services.bus.relay import Relay, drain
from services.db.models import EngagementEvent, OutboxMessage
from services.tracking.replay import read_topic
from tests.integration.test_reliability_crash import _workload
from tests.stack import Stack, wait_for

pytestmark = pytest.mark.kafka


@pytest.fixture
def stack(kafka_bootstrap, database_url, tmp_path):
    s = Stack(kafka_bootstrap, database_url, tmp_path, partitions=2, kafka_ephemeral=True)
    yield s
    s.close()


def _in_kafka(stack: Stack) -> Counter[str]:
    messages = read_topic(stack.settings, topics.ENGAGEMENT)
    return Counter(r["event_id"] for m in messages for r in decode(m.value))


def _prune(stack: Stack) -> int:
    with stack.sessions() as session, session.begin():
        return outbox.prune_stored(session)[0]


def test_kept_until_stored_sent_again_by_a_starting_relay_then_pruned(stack: Stack):
    events, _ = _workload(random.Random(3), 2000)
    with stack.client() as client:
        for start in range(0, len(events), 1000):
            assert (
                client.post("/api/v1/events", json=events[start : start + 1000]).status_code == 202
            )
    assert drain(Relay(stack.settings, stack.sessions)) == 2000
    published = OutboxMessage.published_at.is_not(None)
    assert stack.count(OutboxMessage) == stack.count(OutboxMessage, published) == 2  # kept
    assert _prune(stack) == 0  # no sink has stored them yet

    stack.start_relay()  # a relay starting (as after a broker restart) sends them again
    sent = wait_for(lambda: (c := _in_kafka(stack)) and min(c.values()) == 2 and c, 60, 0.3)
    assert set(sent) == {e["event_id"] for e in events} and set(sent.values()) == {2}

    stack.start_worker()
    wait_for(lambda: stack.count(EngagementEvent) == 2000, 120, 0.3, what="all events stored")
    wait_for(lambda: stack.count(OutboxMessage) == 0, 30, 0.2, what="stored rows pruned")
    assert stack.count(EngagementEvent) == 2000  # sent twice, stored once


def test_a_row_never_stored_is_kept_until_its_retention_ends(stack: Stack):
    now = datetime.now(UTC)
    record = {"event_id": "never-stored", "type": "page.view"}
    with stack.sessions() as session, session.begin():
        for age in (timedelta(0), outbox.KEEP_UNSTORED + timedelta(hours=1)):
            session.add(
                OutboxMessage(topic=topics.ENGAGEMENT, records=[record], published_at=now - age)
            )
        session.add(OutboxMessage(topic=topics.ENGAGEMENT, records=[record]))  # unpublished
    assert _prune(stack) == 1  # the expired one only
    assert stack.count(OutboxMessage) == 2
