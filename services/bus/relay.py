"""The outbox relay: publishes committed outbox rows to Kafka as envelopes.

At least once: rows are deleted only after the broker acknowledged every envelope
(acks=all). A crash between publish and delete publishes them again; every consumer is
idempotent (event ids, touch ids are unique keys in the sinks). While Kafka is down the
rows simply wait in SQL — that is the durable spool.

On a broker that keeps nothing across restarts (``WINWIN_KAFKA_EPHEMERAL``, the embedded
default) the rows are marked published instead, kept until the sinks have stored their
records (pruned every second), and sent again when the relay starts: `winwin up`
restarts the relay with the broker, so what a lost broker held is published again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from services.bus import outbox, topics
from services.bus.envelopes import pack
from services.bus.producer import close_producer, ensure_topics, make_producer
from services.config import Settings
from services.db.models import OutboxMessage

log = logging.getLogger(__name__)
#: Seconds between two passes of pruning the kept rows (ephemeral broker only).
PRUNE_EVERY = 1.0


class Relay:
    """Moves outbox rows to Kafka. ``run()`` loops until ``stop()``."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], batch_rows: int = 500):
        self.settings = settings
        self.sessions = sessions
        self.batch_rows = batch_rows
        self._stop = threading.Event()
        self._producer: Any = None
        self._partitions: dict[str, int] = {}
        self.published_records = 0
        self.keep = settings.kafka_ephemeral
        self._replayed = not self.keep
        self._pruned_at, self._prune_after = 0.0, 0

    def stop(self) -> None:
        self._stop.set()

    def run(self, idle_poll: float = 0.01, beat: Callable[[], None] = lambda: None) -> None:
        """Publish until ``stop()``. An empty outbox is polled every ``idle_poll`` seconds
        (one indexed SELECT; a longer backoff was most of the relay's share of the
        POST-to-visible latency, `winwin bench latency`). ``beat`` is called on each
        round (the heartbeat `winwin up` watches: services/supervisor.py)."""
        idle = idle_poll
        while not self._stop.is_set():
            beat()
            try:
                self._replay_and_prune()
                moved = self.publish_once()
            except Exception as exc:  # noqa: BLE001 - Kafka or DB down: keep rows, retry
                log.warning("relay: publish failed, will retry: %s", exc)
                self._reset()
                self._stop.wait(1.0)
                continue
            if moved == 0:
                self._stop.wait(idle)
                idle = min(idle * 2, 0.05)
            else:
                idle = idle_poll
        self._reset()

    def publish_once(self) -> int:
        """Publish one batch of outbox rows; return the number of records published."""
        with self.sessions() as session, session.begin():
            stmt = (
                select(OutboxMessage)
                .where(OutboxMessage.published_at.is_(None))
                .order_by(OutboxMessage.id)
                .limit(self.batch_rows)
            )
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            rows = session.scalars(stmt).all()
            if not rows:
                return 0
            by_topic: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for row in rows:
                by_topic[row.topic].extend(row.records)
            count = self._send(by_topic)
            sent = OutboxMessage.id.in_([r.id for r in rows])
            if self.keep:  # until the sinks have stored the records (prune_stored)
                session.execute(
                    update(OutboxMessage).where(sent).values(published_at=datetime.now(UTC))
                )
            else:
                session.execute(delete(OutboxMessage).where(sent))
        self.published_records += count
        return count

    def _replay_and_prune(self) -> None:
        """Ephemeral broker: once at start, send every kept row again (the broker may
        have lost it); then every :data:`PRUNE_EVERY` s drop the rows the sinks stored."""
        if not self._replayed:
            with self.sessions() as session, session.begin():
                rows = outbox.replay(session)
            self._replayed = True
            if rows:
                log.warning("relay: sending again %d outbox rows not yet stored by the sinks", rows)
        if self.keep and time.monotonic() - self._pruned_at >= PRUNE_EVERY:
            with self.sessions() as session, session.begin():
                _, self._prune_after = outbox.prune_stored(session, self._prune_after)
            self._pruned_at = time.monotonic()

    def _send(self, by_topic: dict[str, list[dict[str, Any]]]) -> int:
        producer = self._ensure_producer()
        futures = []
        count = 0
        for topic, records in by_topic.items():
            for env in pack(records, self._partitions[topic]):
                name = topics.physical(topic, self.settings.topic_prefix)
                futures.append(
                    producer.send(name, value=env.value, key=env.key, partition=env.partition)
                )
                count += env.count
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)  # raises if any envelope was not acknowledged
        return count

    def _ensure_producer(self) -> Any:
        if self._producer is None:
            self._partitions = ensure_topics(self.settings)
            self._producer = make_producer(self.settings)
        return self._producer

    def _reset(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):  # closing a broken producer may fail too
                close_producer(self._producer, timeout=5)
            self._producer = None


def drain(relay: Relay, timeout: float = 30.0) -> int:
    """Publish until the outbox is empty (tests, CLI one-shots). Returns records moved."""
    total, deadline = 0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        moved = relay.publish_once()
        total += moved
        if moved == 0:
            return total
    raise TimeoutError("outbox not drained in time")
