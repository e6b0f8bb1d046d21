"""The attribution agent: decode envelopes → validate → sink → emit credits.

A record that fails anywhere (decoding, validation, the sink) becomes a dead letter
(``streams/deadletters.py``) and its batch goes on.

Thin on purpose (STYLE.md): validation rules live in ``schemas/``, attribution in
``services/domain``, persistence in ``services/analytics/sink.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import faust
from sqlalchemy.orm import Session, sessionmaker

from services.analytics.credit_rows import MODEL_NAMES, NO_TOUCH, model_weights
from services.analytics.sink import BatchResult
from services.bus import envelopes, topics
from services.db.models import WorkerHeartbeat
from services.db.upsert import upsert
from streams.deadletters import Letter, Sorted, keep, sink_letters, split
from streams.writer import Failure, SinkProcess

log = logging.getLogger(__name__)
# Envelopes per SQL transaction (each carries up to 500 records): one batch is the main
# term of the worker's memory (`winwin bench memory`: 200 envelopes peaked at 1.2 GiB,
# 40 at 515 MiB, and ran faster), so keep it to ~20k records.
BATCH_MESSAGES = 40
# Batches between take and commit: one written in the sink process while the next is
# decoded here (streams/writer.py).
IN_FLIGHT = 2


def install(
    app: faust.App,
    sink: SinkProcess,
    sessions: sessionmaker[Session],
    partitions: dict[str, int],
    prefix: str = "",
) -> Attribution:
    """Register the agent and the heartbeat timer on ``app``."""
    attribution = Attribution(app, sink, sessions, partitions, prefix)
    app.agent(attribution.source, name="attribute")(attribution.attribute)
    app.timer(interval=2.0, name="heartbeat")(attribution.heartbeat)
    return attribution


class Attribution:
    """The attribution agent of one worker, its heartbeat, and what they share: the
    topics, the statistics the heartbeat reports and a thread for their SQL."""

    def __init__(
        self,
        app: faust.App,
        sink: SinkProcess,
        sessions: sessionmaker[Session],
        partitions: dict[str, int],
        prefix: str = "",
    ) -> None:
        self.app, self.sink, self.sessions = app, sink, sessions
        self.partitions, self.prefix = partitions, prefix
        self.source = self._topic(topics.ENGAGEMENT, topics.TOUCHES)
        self.deadletter = self._topic(topics.DEADLETTER)
        self.credits_topic = self._topic(topics.CREDITS)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heartbeat")
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.stats: dict[str, float] = dict.fromkeys(
            ("events", "duplicates", "dead", "batches", "credited"), 0
        )

    def _topic(self, *names: str) -> Any:
        physical = [topics.physical(n, self.prefix) for n in names]
        return self.app.topic(*physical, key_serializer="raw", value_serializer="raw")

    async def attribute(self, stream: faust.StreamT[Any]) -> None:
        """The agent: batches of envelopes, each written while the next is decoded."""
        in_flight: deque[asyncio.Task[None]] = deque()
        async for batch in stream.take_events(BATCH_MESSAGES, within=0.05):  # type: ignore[attr-defined]
            if "first_batch_at" not in self.stats:
                self.stats["first_batch_at"] = time.time()  # wall clock: `winwin bench` reads it
            # take_events acks a batch when the next one is taken; one more reference
            # per message keeps it uncommitted until finish() has written it.
            for event in batch:
                event.message.incref()
            sorted_ = split(batch, self.prefix)
            if sorted_.dead:
                await self.dead_letter(sorted_.dead)
            written = asyncio.ensure_future(
                self.sink.write_all(sorted_.engagement, sorted_.touches, sorted_.identity)
            )
            before = in_flight[-1] if in_flight else None
            in_flight.append(asyncio.ensure_future(self.finish(written, batch, sorted_, before)))
            # Decode the next batch while this one is written; never more than two. Shielded:
            # when Faust stops the agent (SIGTERM, rebalance), the batch still finishes and
            # releases its messages, which Faust waits for before it commits and leaves.
            while in_flight and (len(in_flight) >= IN_FLIGHT or in_flight[0].done()):
                await asyncio.shield(in_flight.popleft())

    async def finish(
        self,
        written: Awaitable[tuple[BatchResult, list[Failure]]],
        batch: list[Any],
        sorted_: Sorted,
        before: asyncio.Task[None] | None,
    ) -> None:
        """Wait for a batch's write, dead-letter the records the sink refused, publish
        its credits after the batch before it, and only then release its messages for
        the offset commit."""
        try:
            result, failures = await written
            if failures:
                await self.dead_letter(sink_letters(sorted_, failures))
            if before is not None:
                await before
            if result.credits:
                envelopes_ = _credit_envelopes(result.credits, self.partitions[topics.CREDITS])
                await _send_all(self.credits_topic, envelopes_)
        except Exception:
            # Never go on past a batch that was not written and published (the database
            # or Kafka failed, not a record): its messages stay uncommitted, and the
            # restarted worker reads from them again.
            log.critical("a batch could not be written; the worker stops", exc_info=True)
            logging.shutdown()
            os._exit(1)
        self._count(result)
        for event in batch:
            event.ack()

    def _count(self, result: BatchResult) -> None:
        self.stats["events"] += result.new_events
        self.stats["duplicates"] += result.duplicates
        self.stats["batches"] += 1
        self.stats["credited"] += len(
            {c["event_id"] for c in result.credits if c["touch_id"] != NO_TOUCH}
        )

    async def dead_letter(self, letters: list[Letter]) -> None:
        """To the dead-letter topic and to SQL (``streams.deadletters.keep``)."""

        def kept() -> None:
            with self.sessions() as session, session.begin():
                keep(session, letters)

        await _send_all(self.deadletter, letters)
        await asyncio.get_running_loop().run_in_executor(self.executor, kept)
        self.stats["dead"] += len(letters)

    async def heartbeat(self) -> None:
        """The timer: this worker's statistics into ``worker_heartbeats`` (the dashboard).
        None while a batch's write is overdue (streams/writer.py): the supervisor's stall
        check and /readyz then see the worker as the stalled one it is."""
        if self.sink.stalled():
            log.warning(
                "no heartbeat: the sink has written nothing for %.0f s", self.sink.stall_seconds
            )
            return
        consumer = self.app.consumer
        assigned = len(consumer.assignment()) if consumer else 0
        info = self.stats | {"assigned_partitions": assigned, "sink_stalls": self.sink.stalls}
        row = {"worker_id": self.worker_id, "seen_at": datetime.now(UTC), "info": info}

        def beat() -> None:
            with self.sessions() as session, session.begin():
                upsert(session, WorkerHeartbeat.__table__, [row], ["worker_id"])

        await asyncio.get_running_loop().run_in_executor(self.executor, beat)


def _credit_envelopes(
    credits: list[dict[str, Any]], partitions: int
) -> list[tuple[bytes, bytes, int]]:
    """Credit records (schemas/credit.v1.json), one per model, in envelopes.

    The worker publishes ~4 of them per event, so each stored credit row (one per
    touch, a weight per model) is encoded once per distinct weight, without its model,
    and that JSON is reused for each model giving that weight.
    """
    # An event's credits share its time: format it once (keyed with the offset, as equal
    # instants in different offsets are equal datetimes but not equal text).
    stamps: dict[tuple[datetime, Any], str] = {}
    encoded: list[tuple[str, bytes]] = []
    for credit in credits:
        at = credit["occurred_at"]
        key = (at, at.utcoffset())
        text = stamps.get(key)
        if text is None:
            text = stamps[key] = at.isoformat()
        fields = {name: credit[name] for name in _TOPIC_FIELDS}
        bodies: dict[float, bytes] = {}
        person = credit["person"]
        for model, weight in model_weights(credit):
            body = bodies.get(weight)
            if body is None:
                body = bodies[weight] = envelopes.dumps(
                    fields | {"weight": weight, "occurred_at": text}
                )
            encoded.append((person, _MODEL_PREFIX[model] + body[1:]))
    return [(e.key, e.value, e.partition) for e in envelopes.pack_encoded(encoded, partitions)]


# A credit record's fields but its model (prefixed as JSON) and its time (formatted).
_TOPIC_FIELDS = (
    "event_id",
    "person",
    "stage",
    "window_days",
    "campaign_id",
    "touch_id",
    "channel",
    "messenger_id",
)
_MODEL_PREFIX = {m: b'{"model":%b,' % json.dumps(m).encode() for m in MODEL_NAMES}


async def _send_all(topic: Any, messages: Sequence[tuple[bytes, bytes, int | None]]) -> None:
    """Send and wait for the broker's acknowledgement of every message."""
    pending = [await topic.send(key=k, value=v, partition=p) for k, v, p in messages]
    await asyncio.gather(*pending)
