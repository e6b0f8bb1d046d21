"""A relay whose broker is gone with records still unsent ends its producer's network
thread when it resets (kafka-python's ``close()`` raised on the flush timeout and left
the thread retrying the dead broker: one busy thread per outage, in `winwin relay` and in
the test process, where it slowed every later test)."""

from __future__ import annotations

import threading
from pathlib import Path

from services.bus import topics
from services.bus.embedded import EmbeddedBroker
from services.bus.relay import Relay
from tests.stack import Stack


def _producer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "producer" in t.name and t.is_alive()]


def test_a_reset_relay_leaves_no_producer_thread_when_its_broker_is_gone(tmp_path: Path):
    before = set(_producer_threads())
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log").start()
    try:
        stack = Stack(broker.bootstrap, f"sqlite:///{tmp_path}/r.db", tmp_path, partitions=1)
        relay = Relay(stack.settings, stack.sessions)
        producer = relay._ensure_producer()
        name = topics.physical(topics.ENGAGEMENT, stack.settings.topic_prefix)
        producer.send(name, value=b"sent", partition=0).get(30)
        broker.proc.kill()  # type: ignore[union-attr]
        broker.proc.wait()  # type: ignore[union-attr]
        producer.send(name, value=b"never sent", partition=0)
        assert set(_producer_threads()) - before  # the thread this relay's producer runs
        relay._reset()
        assert not set(_producer_threads()) - before
    finally:
        broker.stop()
