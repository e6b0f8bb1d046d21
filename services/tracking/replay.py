"""``winwin deadletters list|replay [--dry-run]``: dead letters, read and replayed.

They are read from the dead-letter topic on a persistent Kafka, and from SQL (the
``dead_letters`` table, kept by the worker too) when the broker keeps nothing across
restarts (the embedded one, ``WINWIN_KAFKA_EPHEMERAL``) or no Kafka is configured;
replayed records then go through the outbox (the relay publishes them).

A dead letter (``winwin.deadletter.v1``) holds the original bytes of what the stream
could not process, the error, and where it came from (topic, partition, offset, the
record's index in its envelope). ``replay`` re-validates each one with the code of
today: what is valid now (a fix was deployed) goes back to its source topic as ordinary
envelopes, the normal path, and the worker processes it like any other record. Replay
is idempotent: records keep their event and touch ids, so a record replayed twice, or
one that had got through after all, is counted once by the sink. What is still invalid
is listed with today's error and left where it is.
"""

from __future__ import annotations

import base64
import json
from argparse import Namespace
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

import schemas
from services.analytics.sink import unstorable
from services.bus import topics
from services.bus.envelopes import EnvelopeError, decode, pack
from services.bus.outbox import enqueue
from services.bus.producer import ensure_topics, make_producer
from services.bus.reader import read_topic
from services.config import Settings
from services.db.models_deadletters import DeadLetterRow
from services.db.session import make_engine, make_sessionmaker
from services.domain.events import record_hazard


@dataclass
class DeadLetter:
    """One message of the dead-letter topic, decoded."""

    offset: str  # "partition@offset" in the dead-letter topic
    source: str  # "topic[partition]@offset" it came from
    record_index: int | None
    error: str
    original: bytes
    source_topic: str  # the logical topic name

    def records(self) -> tuple[list[dict[str, Any]], list[str]]:
        """The records it carries that are valid today, and today's errors for the rest."""
        schema = topics.RECORD_SCHEMA.get(self.source_topic)
        if schema is None:
            return [], [f"unknown source topic {self.source_topic!r}"]
        try:
            items = (
                decode(self.original) if self.record_index is None else [json.loads(self.original)]
            )
        except (EnvelopeError, ValueError) as exc:
            return [], [str(exc)]
        valid, errors = [], []
        for item in items:
            error = (
                schemas.errors_of(topics.schema_of(self.source_topic, item), item)
                or record_hazard(item)
                or unstorable(item)
            )
            if error is None:
                valid.append(item)
            else:
                errors.append(error)
        return valid, errors


@dataclass
class ReplayResult:
    letters: int = 0
    records: int = 0
    still_invalid: list[tuple[DeadLetter, str]] = field(default_factory=list)


def dead_letters(settings: Settings) -> list[DeadLetter]:
    """The dead-letter topic, decoded (malformed dead letters are reported, not skipped)."""
    letters = []
    for msg in read_topic(settings, topics.DEADLETTER):
        where = f"{msg.partition}@{msg.offset}"
        try:
            doc = json.loads(msg.value)
            source = f"{doc['source_topic']}[{doc['source_partition']}]@{doc['source_offset']}"
            letters.append(
                DeadLetter(
                    where,
                    source,
                    doc.get("record_index"),
                    str(doc.get("error")),
                    base64.b64decode(doc["original_b64"]),
                    topics.logical(doc["source_topic"], settings.topic_prefix),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            letters.append(
                DeadLetter(
                    where, "?", None, f"unreadable dead letter: {exc}", msg.value or b"", "?"
                )
            )
    return letters


def in_sql(settings: Settings) -> bool:
    """Dead letters are read from SQL (``dead_letters``) when the broker keeps nothing
    across restarts (the embedded one) or no Kafka is configured; else from the topic."""
    return settings.kafka_ephemeral or not settings.kafka_bootstrap


def kept_letters(settings: Settings) -> list[DeadLetter]:
    """The dead letters the worker kept in SQL, oldest first."""
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            rows = session.scalars(
                select(DeadLetterRow).order_by(DeadLetterRow.failed_at, DeadLetterRow.letter_id)
            ).all()
    finally:
        engine.dispose()
    return [
        DeadLetter(
            row.letter_id,
            f"{row.source_topic}[{row.source_partition}]@{row.source_offset}",
            row.record_index,
            row.error,
            row.original,
            topics.logical(row.source_topic, settings.topic_prefix),
        )
        for row in rows
    ]


def replay(settings: Settings, dry_run: bool = False) -> ReplayResult:
    """Send the records of every dead letter that is valid today back to its source topic
    (from SQL: through the outbox, which the relay publishes, also after a broker restart)."""
    result = ReplayResult()
    by_topic: dict[str, list[dict[str, Any]]] = {}
    sql = in_sql(settings)
    for letter in kept_letters(settings) if sql else dead_letters(settings):
        valid, errors = letter.records()
        if errors:
            result.still_invalid.append((letter, errors[0]))
        if valid:
            result.letters += 1
            result.records += len(valid)
            by_topic.setdefault(letter.source_topic, []).extend(valid)
    if by_topic and not dry_run:
        (_enqueue if sql else _publish)(settings, by_topic)
    return result


def _enqueue(settings: Settings, by_topic: dict[str, list[dict[str, Any]]]) -> None:
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session, session.begin():
            for topic, records in by_topic.items():
                enqueue(session, topic, records)
    finally:
        engine.dispose()


def _publish(settings: Settings, by_topic: dict[str, list[dict[str, Any]]]) -> None:
    partitions = ensure_topics(settings)
    producer = make_producer(settings)
    try:
        futures = [
            producer.send(
                topics.physical(topic, settings.topic_prefix),
                value=env.value,
                key=env.key,
                partition=env.partition,
            )
            for topic, records in by_topic.items()
            for env in pack(records, partitions[topic])
        ]
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)
    finally:
        producer.close(timeout=5)


def deadletters_command(settings: Settings, args: Namespace) -> int:
    """The CLI: ``list`` prints one line per dead letter; ``replay`` re-processes them."""
    if args.deadletters_command == "list":
        letters = kept_letters(settings) if in_sql(settings) else dead_letters(settings)
        for letter in letters:
            index = "-" if letter.record_index is None else letter.record_index
            print(f"{letter.offset}\tfrom {letter.source}\trecord {index}\t{letter.error[:200]}")
        print(f"{len(letters)} dead letters")
        return 0
    result = replay(settings, dry_run=args.dry_run)
    verb = "would replay" if args.dry_run else "replayed"
    print(f"{verb} {result.records} records from {result.letters} dead letters")
    for letter, error in result.still_invalid:
        print(f"still invalid: {letter.offset} from {letter.source}: {error[:200]}")
    return 0
