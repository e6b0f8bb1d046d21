"""Reading a topic from its beginning to its end with kafka-python (the dead letters;
what tests and tools look back at)."""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, TopicPartition

from services.bus import topics
from services.bus.producer import client_options
from services.config import Settings


def read_topic(settings: Settings, logical: str, timeout: float = 10.0) -> list[Any]:
    """Every message of a topic (its physical name under the prefix), oldest first."""
    name = topics.physical(logical, settings.topic_prefix)
    consumer = KafkaConsumer(
        **client_options(settings),
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=int(timeout * 1000),
    )
    try:
        parts = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or [])]
        if not parts:
            return []
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        out: list[Any] = []
        while any(consumer.position(tp) < end[tp] for tp in parts):
            batch = consumer.poll(timeout_ms=int(timeout * 1000))
            if not batch:
                raise TimeoutError(f"could not read {name} to its end in {timeout}s")
            for messages in batch.values():
                out.extend(
                    m for m in messages if m.offset < end[TopicPartition(m.topic, m.partition)]
                )
        return out
    finally:
        consumer.close()
