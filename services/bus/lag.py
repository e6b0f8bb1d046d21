"""How far behind the stream worker is, and how many dead letters wait (kafka-python admin).

Read-only questions for the dashboard and ``/metrics``: each call opens one admin client,
asks, and closes it. Lag of a partition = its end offset − the group's committed offset
(the whole partition when the group has committed nothing yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec

from services.bus import topics
from services.bus.producer import client_options
from services.config import Settings

__all__ = ["StreamPosition", "WORKER_GROUP", "stream_position"]

#: The stream worker's consumer group (the Faust app id), before the topic prefix.
WORKER_GROUP = "winwin-attribution"
CONSUMED = (topics.ENGAGEMENT, topics.TOUCHES)


@dataclass
class StreamPosition:
    """Consumer lag per consumed topic, and the number of messages in the dead-letter topic."""

    lag: dict[str, int] = field(default_factory=dict)
    deadletters: int = 0

    @property
    def total_lag(self) -> int:
        return sum(self.lag.values())


def stream_position(settings: Settings, timeout_ms: int = 5000) -> StreamPosition:
    """Ask the cluster for the worker group's lag and the dead-letter topic's size."""
    prefix = settings.topic_prefix
    admin = KafkaAdminClient(**client_options(settings), request_timeout_ms=timeout_ms)
    try:
        names = [topics.physical(t, prefix) for t in (*CONSUMED, topics.DEADLETTER)]
        parts = [
            TopicPartition(
                meta.get("name", meta.get("topic")), p.get("partition_index", p.get("partition"))
            )
            for meta in admin.describe_topics(names)
            if not meta.get("error_code")  # a topic not created yet has nothing to count
            for p in meta["partitions"]
        ]
        end = _offsets(admin, parts, OffsetSpec.LATEST, timeout_ms)
        dead_name = topics.physical(topics.DEADLETTER, prefix)
        start = _offsets(admin, parts, OffsetSpec.EARLIEST, timeout_ms)
        group = f"{prefix}{WORKER_GROUP}"
        committed = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    position = StreamPosition()
    for tp in parts:
        if tp.topic == dead_name:
            position.deadletters += end[tp] - start[tp]
            continue
        done = committed.get(tp)
        offset = done.offset if done is not None and done.offset >= 0 else start[tp]
        name = topics.logical(tp.topic, prefix)
        position.lag[name] = position.lag.get(name, 0) + max(0, end[tp] - offset)
    return position


def _offsets(
    admin: KafkaAdminClient, parts: list[TopicPartition], spec: OffsetSpec, timeout_ms: int
) -> dict[TopicPartition, int]:
    if not parts:
        return {}
    found = admin.list_partition_offsets(dict.fromkeys(parts, spec), timeout_ms=timeout_ms)
    return {tp: max(0, answer.offset) for tp, answer in found.items()}
