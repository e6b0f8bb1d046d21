"""Envelopes: one Kafka message carrying the records of persons that share a partition.

Faust's cost is per Kafka message (MEASUREMENTS.md: ~4k messages/s whatever the tuning,
~74k events/s with 100 events a message), so every producer packs records into
envelopes. A record goes to the partition Kafka's default partitioner would pick for its
person's pseudonym (murmur2), so single-record producers and envelope producers agree and
a person's touches and engagement stay co-partitioned and in order.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from kafka.partitioner.default import murmur2

VERSION = 1
MAX_RECORDS = 500  # per envelope; keeps messages well under the 1 MB default limit


@dataclass(frozen=True)
class Envelope:
    """A Kafka message to be: its partition, key (first record's person) and value."""

    partition: int
    key: bytes
    value: bytes
    count: int


@lru_cache(maxsize=200_000)
def partition_for(person: str, partitions: int) -> int:
    """Kafka's default partitioner (murmur2, positive, modulo) for a pseudonym key."""
    hashed: int = murmur2(person.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def pack(records: Iterable[dict[str, Any]], partitions: int) -> Iterator[Envelope]:
    """Group records by their person's partition into envelopes of at most MAX_RECORDS,
    keeping each person's records in their original order."""
    return pack_encoded(((r["person"], dumps(r)) for r in records), partitions)


def pack_encoded(records: Iterable[tuple[str, bytes]], partitions: int) -> Iterator[Envelope]:
    """:func:`pack` for records already encoded (``(person, JSON object)`` pairs)."""
    groups: dict[int, list[tuple[str, bytes]]] = defaultdict(list)
    for record in records:
        groups[partition_for(record[0], partitions)].append(record)
    for partition, group in sorted(groups.items()):
        for start in range(0, len(group), MAX_RECORDS):
            chunk = group[start : start + MAX_RECORDS]
            yield Envelope(
                partition=partition,
                key=chunk[0][0].encode(),
                value=_envelope(r[1] for r in chunk),
                count=len(chunk),
            )


def encode(records: Iterable[dict[str, Any]]) -> bytes:
    """One envelope of ``records`` (no partitioning, no size limit)."""
    return _envelope([dumps(r) for r in records])


def _envelope(encoded: Iterable[bytes]) -> bytes:
    return b'{"v":%d,"records":[%b]}' % (VERSION, b",".join(encoded))


def dumps(record: dict[str, Any]) -> bytes:
    """Compact JSON, by orjson (5x the standard library here: the worker encodes ~4
    credit records per event); what orjson refuses to encode (a lone surrogate, an
    integer beyond 64 bits) goes through the standard library, as before."""
    try:
        return orjson.dumps(record)
    except TypeError:
        return json.dumps(record, separators=(",", ":")).encode()


class EnvelopeError(ValueError):
    """The message is not an envelope at all (it goes to the dead-letter topic whole)."""


def decode(value: bytes) -> list[Any]:
    """The records of an envelope. Raises EnvelopeError for anything that is not one."""
    try:
        doc = _loads(value)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # too deep: json.loads
        raise EnvelopeError(f"not JSON: {exc}") from None
    version = doc.get("v") if isinstance(doc, dict) else None
    if version != VERSION or isinstance(version, bool):  # true == 1 in Python, not in JSON
        raise EnvelopeError("not a version-1 envelope (object with v=1)")
    records = doc.get("records")
    if not isinstance(records, list) or not records:
        raise EnvelopeError("records: must be a non-empty array")
    return records


def _loads(value: bytes) -> Any:
    """orjson's parse, or the standard library's where orjson is stricter (NaN, a lone
    surrogate escape, a huge integer): what is accepted is what ``json.loads`` accepts."""
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return json.loads(value)
