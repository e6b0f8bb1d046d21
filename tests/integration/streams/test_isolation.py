"""A record that fails anywhere in the worker becomes a dead letter; the others go on.

``split`` (decode and validate) never raises, whatever the message; the sink process's
``write_all`` writes a batch around the records it cannot write (a time the worker's
zone cannot hold, a record too deep to pickle), on a real SQLite database through the
real sink process."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select

from services.bus import envelopes, topics
from services.db.migrate import upgrade
from services.db.models import EngagementEvent
from services.db.session import make_engine, make_sessionmaker
from streams.deadletters import split
from streams.writer import ENGAGEMENT, IDENTITY, SinkProcess

P = "p" + "2" * 32


def record(i: int, **changes: Any) -> dict[str, Any]:
    base = {"event_id": f"e{i}", "type": "page.view", "occurred_at": "2017-08-14T10:00:00Z"}
    return base | {"person": P} | changes


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def message(value: bytes, offset: int) -> SimpleNamespace:
    """What a Faust stream event carries (split reads only these attributes)."""
    msg = SimpleNamespace(
        topic=topics.ENGAGEMENT, partition=0, offset=offset, key=P.encode(), value=value
    )
    return SimpleNamespace(message=msg, value=value)


def test_split_turns_anything_into_dead_letters_and_keeps_the_rest() -> None:
    too_deep_to_parse = b'{"v":1,"records":[' + b"[" * 5000 + b"]" * 5000 + b"]}"
    batch = [
        message(envelopes.encode([record(1), record(2, properties=nested(500))]), 1),
        message(too_deep_to_parse, 2),  # orjson refuses it; json.loads: RecursionError
        message(envelopes.encode([record(3, properties=nested(900))]), 3),
        message(envelopes.encode([record(4)]), 4),
    ]
    out = split(batch)
    assert [r["event_id"] for r in out.engagement] == ["e1", "e4"]
    assert [(m.offset, i) for m, _, i in out.origins[ENGAGEMENT]] == [(1, 0), (4, 0)]
    letters = [json.loads(value) for _, value, _ in out.dead]
    assert [(x["source_offset"], x["record_index"]) for x in letters] == [(1, 1), (2, None), (3, 0)]
    assert "nested deeper than 32" in letters[0]["error"]
    assert json.loads(base64.b64decode(letters[0]["original_b64"]))["event_id"] == "e2"
    assert base64.b64decode(letters[1]["original_b64"]) == too_deep_to_parse


def test_split_sorts_identity_changes_apart_and_dead_letters_bad_ones() -> None:
    change = {"kind": "identity.merged", "merge_id": "m1", "person": P, "visitor": "p" + "3" * 32}
    change["occurred_at"] = "2024-03-04T09:00:00Z"
    bad_visitor, bad_kind = change | {"visitor": "v:abc"}, change | {"kind": "identity.other"}
    out = split([message(envelopes.encode([record(1), change, bad_visitor, bad_kind]), 1)])
    assert [r["event_id"] for r in out.engagement] == ["e1"] and out.identity == [change]
    assert [(m.offset, i) for m, _, i in out.origins[IDENTITY]] == [(1, 1)]
    letters = [json.loads(value) for _, value, _ in out.dead]
    assert [x["record_index"] for x in letters] == [2, 3]
    assert letters[0]["error"].startswith("visitor") and letters[1]["error"].startswith("kind")


@pytest.fixture
def sink(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'winwin.db'}"
    upgrade(url)
    process = SinkProcess(url, 30, "America/New_York")
    yield process, make_sessionmaker(make_engine(url))
    process._pool.shutdown(cancel_futures=True)


def test_the_sink_writes_a_batch_around_the_records_it_cannot_write(sink) -> None:
    process, sessions = sink
    good = [record(i, person="p" + f"{i:032x}") for i in range(20)]
    year_one = record(100, occurred_at="0001-01-01T00:00:00Z")  # OverflowError in New York
    unpicklable = record(101, properties=nested(990))  # RecursionError pickling the batch
    batch = [*good[:7], year_one, *good[7:15], unpicklable, *good[15:]]

    result, failures = asyncio.run(process.write_all(batch, []))

    assert result.new_events == len(good)
    assert [(f.kind, batch[f.index]["event_id"]) for f in failures] == [
        (ENGAGEMENT, "e100"),
        (ENGAGEMENT, "e101"),
    ]
    assert "OverflowError" in failures[0].error and "RecursionError" in failures[1].error
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(EngagementEvent)) == len(good)
    again, failures = asyncio.run(process.write_all(good, []))  # keyed: nothing twice
    assert again.new_events == 0 and again.duplicates == len(good) and not failures
