"""A batch sorted into what the sink may write and dead letters (``winwin.deadletter.v1``).

Nothing here may raise for any message or record: what the worker cannot decode,
validate or (``streams.writer``) write becomes a dead letter with its original bytes and
the error, and the records around it go on. A stalled partition or a dead worker over
one record is what this module is for.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

import schemas
from services.analytics.sink import unstorable
from services.bus import envelopes, topics
from services.db.models_deadletters import DeadLetterRow
from services.db.upsert import insert_ignore
from services.domain.events import depth_error
from streams import validation
from streams.writer import ENGAGEMENT, IDENTITY, TOUCHES, Failure, describe

log = logging.getLogger(__name__)
Letter = tuple[bytes, bytes, None]  # key, value, partition (the producer's choice)
# Where a record came from: its message, the message's bytes, its index in the envelope.
Origin = tuple[Any, bytes, int]


@dataclass
class Sorted:
    """A batch's valid records by kind (engagement events, touches, identity changes),
    where each came from, and its dead letters."""

    engagement: list[dict[str, Any]] = field(default_factory=list)
    touches: list[dict[str, Any]] = field(default_factory=list)
    identity: list[dict[str, Any]] = field(default_factory=list)
    origins: dict[str, list[Origin]] = field(
        default_factory=lambda: {ENGAGEMENT: [], TOUCHES: [], IDENTITY: []}
    )
    dead: list[Letter] = field(default_factory=list)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return {ENGAGEMENT: self.engagement, TOUCHES: self.touches, IDENTITY: self.identity}[kind]


def split(batch: Sequence[Any], prefix: str = "") -> Sorted:
    """Sort a batch's records by topic; anything invalid becomes a dead letter."""
    out = Sorted()
    for event in batch:
        msg = event.message
        raw = msg.value if isinstance(msg.value, bytes) else event.value
        try:
            records = envelopes.decode(raw)
            name = topics.logical(msg.topic, prefix)
            topics.RECORD_SCHEMA[name]  # a topic with records, or a dead letter
        except Exception as exc:  # noqa: BLE001 - not an envelope (or too deep to be one)
            out.dead.append(dead_letter(msg, None, raw, _reason(exc)))
            continue
        suspicious = _SUSPICIOUS.search(raw) is not None
        for index, record in enumerate(records):
            kind = _kind(name, record)
            try:
                error = _error_of(topics.schema_of(name, record), record, suspicious)
            except Exception as exc:  # noqa: BLE001 - whatever it is, it is this record's
                error = describe(exc)
            if error is None:
                out.of(kind).append(record)
                out.origins[kind].append((msg, raw, index))
            else:
                out.dead.append(record_letter((msg, raw, index), record, error))
    return out


def _kind(topic: str, record: Any) -> str:
    if topic == topics.TOUCHES:
        return TOUCHES
    return IDENTITY if topics.is_identity(record) else ENGAGEMENT


def sink_letters(batch: Sorted, failures: Sequence[Failure]) -> list[Letter]:
    """Dead letters for the records the sink could not write (``SinkProcess.write_all``)."""
    return [
        record_letter(batch.origins[f.kind][f.index], batch.of(f.kind)[f.index], f"sink: {f.error}")
        for f in failures
    ]


def record_letter(origin: Origin, record: Any, error: str) -> Letter:
    """A dead letter for one record of an envelope: the record's JSON, or, if it cannot
    be encoded again, its whole message (``record_index`` null, as for a bad message)."""
    msg, raw, index = origin
    try:
        original = json.dumps(record, separators=(",", ":")).encode()
    except Exception as exc:  # noqa: BLE001 - too deep even to encode
        return dead_letter(msg, None, raw, f"{error} (record {index}; {describe(exc)})")
    return dead_letter(msg, index, original, error)


def dead_letter(msg: Any, index: int | None, original: bytes, error: str) -> Letter:
    payload = {
        "error": error,
        "source_topic": msg.topic,
        "source_partition": msg.partition,
        "source_offset": msg.offset,
        "record_index": index,
        "original_b64": base64.b64encode(original).decode(),
        "failed_at": datetime.now(UTC).isoformat(),
    }
    log.warning("dead letter from %s[%s]@%s: %s", msg.topic, msg.partition, msg.offset, error)
    return (msg.key or b"", json.dumps(payload).encode(), None)


def keep(session: Session, letters: Sequence[Letter]) -> None:
    """Keep dead letters in SQL too (``dead_letters``): the embedded broker's topic is
    lost when it ends. Keyed by origin, so a redelivered batch adds nothing twice."""
    rows = {}
    for _, value, _ in letters:
        doc = json.loads(value)
        index = doc["record_index"]
        where = f"{doc['source_topic']}[{doc['source_partition']}]@{doc['source_offset']}"
        rows[f"{where}#{'-' if index is None else index}"] = {
            "source_topic": doc["source_topic"],
            "source_partition": doc["source_partition"],
            "source_offset": doc["source_offset"],
            "record_index": index,
            "error": _storable(doc["error"]),
            "original": base64.b64decode(doc["original_b64"]),
            "failed_at": datetime.fromisoformat(doc["failed_at"]),
        }
    insert_ignore(session, DeadLetterRow.__table__, [{"letter_id": k} | r for k, r in rows.items()])


def _storable(text: str) -> str:
    """Text SQL can store (no NUL, no lone surrogate: PostgreSQL refuses both)."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode()


def _error_of(schema: str, record: Any, suspicious: bool) -> str | None:
    """The topic's schema, what SQL cannot store, and a depth limit (deeper records break
    the JSON encoder and pickle). Times the sink cannot compute with (the API's range,
    ``services/domain/events.py``) fail the sink's write: that isolates them."""
    if not suspicious and validation.surely_valid(schema, record):
        return depth_error(record.get("properties"))
    return (
        schemas.errors_of(schema, record)
        or depth_error(record.get("properties"))
        or unstorable(record)
    )


def _reason(exc: Exception) -> str:
    if isinstance(exc, envelopes.EnvelopeError):
        return str(exc)
    return describe(exc)


# NUL or a UTF-16 surrogate escape: valid JSON that SQL (PostgreSQL) cannot store.
_SUSPICIOUS = re.compile(rb"\\u(0000|[dD][89a-fA-F])")
