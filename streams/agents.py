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
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import faust
from sqlalchemy.orm import Session, sessionmaker

from services.analytics.recompute import MODEL_NAMES, NO_TOUCH, models_of
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
) -> None:
    """Register the agent and the heartbeat timer on ``app``."""

    def topic(*names: str) -> Any:
        physical = [topics.physical(n, prefix) for n in names]
        return app.topic(*physical, key_serializer="raw", value_serializer="raw")

    source = topic(topics.ENGAGEMENT, topics.TOUCHES)
    deadletter = topic(topics.DEADLETTER)
    credits_topic = topic(topics.CREDITS)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heartbeat")
    worker_id = f"{socket.gethostname()}:{os.getpid()}"
    stats: dict[str, float] = {"events": 0, "duplicates": 0, "dead": 0, "batches": 0, "credited": 0}

    async def dead_letter(letters: list[Letter]) -> None:
        """To the dead-letter topic and to SQL (``streams.deadletters.keep``)."""

        def kept() -> None:
            with sessions() as session, session.begin():
                keep(session, letters)

        await _send_all(deadletter, letters)
        await asyncio.get_running_loop().run_in_executor(executor, kept)
        stats["dead"] += len(letters)

    async def finish(
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
                letters = sink_letters(sorted_, failures)
                await dead_letter(letters)
            if before is not None:
                await before
            if result.credits:
                await _send_all(
                    credits_topic, _credit_envelopes(result.credits, partitions[topics.CREDITS])
                )
        except Exception:
            # Never go on past a batch that was not written and published (the database
            # or Kafka failed, not a record): its messages stay uncommitted, and the
            # restarted worker reads from them again.
            log.critical("a batch could not be written; the worker stops", exc_info=True)
            logging.shutdown()
            os._exit(1)
        stats["events"] += result.new_events
        stats["duplicates"] += result.duplicates
        stats["batches"] += 1
        stats["credited"] += len(
            {c["event_id"] for c in result.credits if c["touch_id"] != NO_TOUCH}
        )
        for event in batch:
            event.ack()

    @app.agent(source, name="attribute")
    async def attribute(stream: faust.StreamT) -> None:
        in_flight: deque[asyncio.Task[None]] = deque()
        async for batch in stream.take_events(BATCH_MESSAGES, within=0.05):
            if "first_batch_at" not in stats:
                stats["first_batch_at"] = time.time()  # wall clock: `winwin bench` reads it
            # take_events acks a batch when the next one is taken; one more reference
            # per message keeps it uncommitted until finish() has written it.
            for event in batch:
                event.message.incref()
            sorted_ = split(batch, prefix)
            if sorted_.dead:
                await dead_letter(sorted_.dead)
            written = asyncio.ensure_future(
                sink.write_all(sorted_.engagement, sorted_.touches, sorted_.identity)
            )
            before = in_flight[-1] if in_flight else None
            in_flight.append(asyncio.ensure_future(finish(written, batch, sorted_, before)))
            # Decode the next batch while this one is written; never more than two. Shielded:
            # when Faust stops the agent (SIGTERM, rebalance), the batch still finishes and
            # releases its messages, which Faust waits for before it commits and leaves.
            while in_flight and (len(in_flight) >= IN_FLIGHT or in_flight[0].done()):
                await asyncio.shield(in_flight.popleft())

    @app.timer(interval=2.0)
    async def heartbeat() -> None:
        assigned = len(app.consumer.assignment()) if app.consumer else 0
        info = stats | {"assigned_partitions": assigned}
        row = {"worker_id": worker_id, "seen_at": datetime.now(UTC), "info": info}

        def beat() -> None:
            with sessions() as session, session.begin():
                upsert(session, WorkerHeartbeat.__table__, [row], ["worker_id"])

        await asyncio.get_running_loop().run_in_executor(executor, beat)


def _credit_envelopes(
    credits: list[dict[str, Any]], partitions: int
) -> list[tuple[bytes, bytes, int]]:
    """Credit records (schemas/credit.v1.json), one per model, in envelopes.

    The worker publishes ~4 of them per event, so each stored credit row is encoded
    once, without its model, and that JSON is reused for each model it stands for.
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
        body = envelopes.dumps(
            {name: credit[name] for name in _TOPIC_FIELDS} | {"occurred_at": text}
        )
        person = credit["person"]
        encoded += (
            (person, _MODEL_PREFIX[model] + body[1:]) for model in models_of(credit["model"])
        )
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
    "weight",
)
_MODEL_PREFIX = {m: b'{"model":%b,' % json.dumps(m).encode() for m in MODEL_NAMES}


async def _send_all(topic: Any, messages: list[tuple[bytes, bytes, int | None]]) -> None:
    """Send and wait for the broker's acknowledgement of every message."""
    pending = [await topic.send(key=k, value=v, partition=p) for k, v, p in messages]
    await asyncio.gather(*pending)
