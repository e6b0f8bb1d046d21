"""Poison messages: the API answers bad input with a reason (413/422, or a per-event
rejection), and whatever bad got into Kafka goes to the dead-letter topic with its
original bytes, the error and its source offset, while the records around it are
processed (nothing stalls). ``winwin deadletters replay`` re-processes dead letters that
are valid after a fix, idempotently."""

from __future__ import annotations

import base64
import json
from argparse import Namespace
from datetime import UTC, datetime

import pytest

from services.bus import topics
from services.bus.envelopes import encode, partition_for
from services.bus.lag import stream_position
from services.bus.producer import make_producer
from services.db.models import AcceptedEvent, EngagementEvent, OutboxMessage
from services.db.models_deadletters import DeadLetterRow
from services.domain.pseudonyms import pseudonymise
from services.guards import limit_for
from services.tracking.replay import dead_letters, deadletters_command, read_topic
from tests.stack import Stack, wait_for

pytestmark = pytest.mark.kafka
P = "p" + "1" * 32


@pytest.fixture
def stack(kafka_bootstrap, database_url, tmp_path):
    s = Stack(kafka_bootstrap, database_url, tmp_path, partitions=2)
    yield s
    s.close()


def _event(i: int, **extra) -> dict:
    return {
        "event_id": f"e{i}",
        "type": "page.view",
        "occurred_at": "2017-08-14T10:00:00Z",
        "person_ref": f"fam-{i}",
    } | extra


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_the_api_answers_poison_with_a_reason(stack: Stack):
    with stack.client() as client:
        cases = {
            b"{nope": 422,
            b"\xff\xfe[{}]": 422,
            b'[{"a": 1}': 422,
            b"": 422,
            b"null": 422,
            b'"x"': 422,
            json.dumps([_event(1)] * 1001).encode(): 422,
            b"[" + b" " * limit_for("/api/v1/events") + b"]": 413,  # one byte over the limit
            b"[" * 1000 + b"]" * 1000: 422,  # too deep to parse: was 500
        }
        for body, status in cases.items():
            r = client.post(
                "/api/v1/events", content=body, headers={"Content-Type": "application/json"}
            )
            assert r.status_code == status, (body[:40], r.status_code, r.text[:200])
            assert r.json()["detail"], r.text[:200]
        poison = [
            _event(2, occurred_at="yesterday"),
            _event(3, type="Bad Type!"),
            {"event_id": "e4"},
            _event(5, campaign_id="no-such-campaign"),
            _event(6, properties={"x": "y" * 5000}),
            _event(7, event_id="e7\u0000"),
            _event(8, person_ref="fam\u0000-8"),
            _event(9, properties={"x": "\ud800"}),
            _event(10, event_id="\udc80"),
            _event(11, type="x" * 101),
            _event(12, channel="pigeon"),
            _event(13, occurred_at="2016-12-31t23:59:59z"),
            _event(14, occurred_at="0001-01-01T00:00:00+14:00"),  # was 500 for the request
            _event(15, properties=_nested(500)),  # 3.5 KB; killed the worker
            _event(16, occurred_at="0001-01-01T00:00:00Z"),  # killed a New York worker
        ]
        body = json.dumps([_event(1), *poison])  # ensure_ascii: lone surrogates as \\u escapes
        r = client.post(
            "/api/v1/events", content=body, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 202, r.text
        out = r.json()
        rejected = {x["index"]: x["error"] for x in out["rejected"]}
        assert out["accepted"] + len(rejected) == 1 + len(poison), out
        assert 0 not in rejected and {1, 2, 3, 4, 5, 11, 13, 14, 15} <= set(rejected), out
        assert all("outside the supported range" in rejected[i] for i in (13, 15)), out
        assert rejected[14] == "properties: nested deeper than 32 levels"
        assert "campaign" in rejected[4] and all(rejected.values())
        r = client.post(
            "/api/v1/links", json={"destination": "https://x.example/", "campaign_id": "no-such"}
        )
        assert r.status_code == 422 and "campaign" in r.text
        unknown = client.app.state.container.tokens.sign("r", "no-such-link")
        assert client.get(f"/r/{unknown}", follow_redirects=False).status_code == 404
    print(
        f"\n[poison] API: {len(cases)} bad bodies -> 413/422; {len(rejected)} of {len(poison)} poison "
        f"events rejected with a reason, {out['accepted'] - 1} stored safely"
    )


def test_poison_in_kafka_goes_to_dead_letters_and_nothing_stalls(stack: Stack, capsys):
    settings = stack.settings
    secret = settings.secret_key.get_secret_value().encode()
    good = [
        {
            "event_id": f"g{i}",
            "type": "page.view",
            "occurred_at": "2017-08-14T10:00:00Z",
            "person": pseudonymise(secret, f"fam-{i}"),
        }
        for i in range(40)
    ]
    bad_record = {"event_id": "b1", "type": "page.view", "occurred_at": "yesterday", "person": P}
    unstorable = [
        dict(good[0], event_id="u1", occurred_at="2016-12-31t23:59:59z"),
        dict(good[0], event_id="u2\u0000"),
        dict(good[0], event_id="u3", properties={"x": "\ud800"}),
    ]
    poison = [
        b"\xff\xfe\x00 not json",
        b'{"hello": "world"}',
        b'{"v": 1, "records": []}',
        encode([good[0] | {"event_id": "mixed-ok"}, bad_record]),
        encode(unstorable),
    ]
    name = topics.physical(topics.ENGAGEMENT, settings.topic_prefix)
    from services.bus.producer import ensure_topics

    ensure_topics(settings)
    producer = make_producer(settings)
    sent = []
    for i, value in enumerate(poison):
        sent.append(
            producer.send(name, value=value, key=P.encode(), partition=partition_for(P, 2)).get(30)
        )
        chunk = good[i * 8 : (i + 1) * 8]  # good records after every poison message
        for record in chunk:
            producer.send(
                name,
                value=encode([record]),
                key=record["person"].encode(),
                partition=partition_for(record["person"], 2),
            ).get(30)
    producer.close()
    stack.start_worker()
    wait_for(
        lambda: stack.count(EngagementEvent) == len(good) + 1,
        120,
        0.3,
        what="good records past the poison",
    )
    letters = wait_for(
        lambda: (d := dead_letters(settings)) and len(d) >= 7 and d, 60, 0.5, what="dead letters"
    )
    assert len(letters) == 3 + 1 + len(unstorable)
    by_offset = {(int(x.source.split("@")[1]), x.record_index): x for x in letters}
    for meta, value in zip(sent[:3], poison[:3], strict=True):
        letter = by_offset[(meta.offset, None)]
        assert letter.original == value and letter.error and letter.source.startswith(name)
    mixed = by_offset[(sent[3].offset, 1)]
    assert json.loads(mixed.original) == bad_record and "occurred_at" in mixed.error
    assert {by_offset[(sent[4].offset, i)].error.startswith("not storable") for i in range(3)} == {
        True
    }
    raw = read_topic(settings, topics.DEADLETTER)[0].value
    assert set(json.loads(raw)) >= {
        "error",
        "source_topic",
        "source_partition",
        "source_offset",
        "original_b64",
    }

    # A fix is deployed: a dead letter whose record is valid today is replayed, once.
    fixed = dict(good[1], event_id="fixed-1")
    letter = {
        "error": "old bug",
        "source_topic": name,
        "source_partition": 0,
        "source_offset": 0,
        "record_index": 0,
        "original_b64": base64.b64encode(json.dumps(fixed).encode()).decode(),
        "failed_at": "2024-01-01T00:00:00Z",
    }
    producer = make_producer(settings)
    producer.send(
        topics.physical(topics.DEADLETTER, settings.topic_prefix),
        value=json.dumps(letter).encode(),
        key=P.encode(),
    ).get(30)
    producer.close()
    before = stack.count(EngagementEvent)
    capsys.readouterr()
    assert deadletters_command(settings, Namespace(deadletters_command="list")) == 0
    listed = capsys.readouterr().out
    assert f"{len(letters) + 1} dead letters" in listed and "old bug" in listed
    deadletters_command(settings, Namespace(deadletters_command="replay", dry_run=True))
    assert "would replay 1 records from 1 dead letters" in capsys.readouterr().out
    assert stack.count(EngagementEvent) == before
    for _ in range(2):  # idempotent: twice, counted once
        deadletters_command(settings, Namespace(deadletters_command="replay", dry_run=False))
        out = capsys.readouterr().out
        assert "replayed 1 records" in out and out.count("still invalid") == len(letters)
    wait_for(
        lambda: stack.count(EngagementEvent, EngagementEvent.event_id == "fixed-1") == 1,
        60,
        0.3,
        what="the replayed record",
    )
    assert stack.count(EngagementEvent) == before + 1
    assert stack.count(AcceptedEvent) == 0  # nothing here went through the API
    print(
        f"\n[poison] Kafka: {len(poison)} poison messages ({len(letters)} dead letters with original bytes, "
        f"error, source offset); {len(good)} good records after them all counted; replay x2 -> 1 counted"
    )


def test_a_record_the_sink_cannot_write_is_dead_lettered_and_its_batch_goes_on(
    kafka_bootstrap, database_url, tmp_path
):
    """Issue 13: a year-1 event with WINWIN_TIMEZONE=America/New_York made the sink raise
    (OverflowError) and properties 500 deep could not be pickled for the sink process; the
    worker died, and on restart died again on the same record. Now the sink's batch is
    written around the record it cannot write, that record is dead-lettered with its
    original bytes, the worker lives, and the partition's offset moves past it."""
    stack = Stack(
        kafka_bootstrap, database_url, tmp_path, partitions=2, timezone="America/New_York"
    )
    try:
        settings = stack.settings
        secret = settings.secret_key.get_secret_value().encode()
        person = pseudonymise(secret, "fam-poisoned")
        partition = partition_for(person, 2)

        def record(i, **changes):
            at = "2017-08-14T10:00:00Z"
            return (
                {"event_id": f"g{i}", "type": "page.view", "occurred_at": at}
                | {"person": person}
                | changes
            )

        year_one = record(1000, occurred_at="0001-01-01T00:00:00Z")
        too_deep = record(1001, properties=_nested(500))
        # Poison and good records in the same envelopes, good envelopes before and after.
        values = [
            encode([record(i) for i in range(0, 10)]),
            encode([record(10), year_one, record(11)]),
            encode([record(12), too_deep, record(13)]),
            encode([record(i) for i in range(14, 30)]),
        ]
        name = topics.physical(topics.ENGAGEMENT, settings.topic_prefix)
        from services.bus.producer import ensure_topics

        ensure_topics(settings)
        producer = make_producer(settings)
        sent = [
            producer.send(name, value=v, key=person.encode(), partition=partition).get(30)
            for v in values
        ]
        producer.close()
        worker = stack.start_worker()

        def all_good_counted() -> bool:
            assert worker.poll() is None, f"the worker died:\n{stack.worker_log()[-3000:]}"
            return stack.count(EngagementEvent) == 30

        wait_for(all_good_counted, 90, 0.3, what="the good records around the poison")
        letters = wait_for(
            lambda: (d := dead_letters(settings)) and len(d) >= 2 and d, 60, 0.5, what="letters"
        )
        by_offset = {int(x.source.split("@")[1]): x for x in letters}
        assert len(letters) == 2 and set(by_offset) == {sent[1].offset, sent[2].offset}
        sink_letter, deep_letter = by_offset[sent[1].offset], by_offset[sent[2].offset]
        assert sink_letter.record_index == 1 and deep_letter.record_index == 1
        assert json.loads(sink_letter.original) == year_one
        assert "OverflowError" in sink_letter.error, sink_letter.error
        assert json.loads(deep_letter.original) == too_deep
        assert "nested deeper than 32" in deep_letter.error
        wait_for(  # the group's committed offsets reach the end: nothing left behind
            lambda: stream_position(settings).lag == {topics.ENGAGEMENT: 0, topics.TOUCHES: 0},
            30,
            0.5,
            what="the committed offsets to pass the poison",
        )
        assert worker.poll() is None  # alive: it never stopped on the poison
        assert stack.count(EngagementEvent, EngagementEvent.event_id.in_(["g1000", "g1001"])) == 0
    finally:
        stack.close()
    print(
        "\n[poison] sink: 2 poison records among 30 good in 4 envelopes -> 30 counted, "
        "2 dead letters with original bytes, offset committed past them, worker alive"
    )


def test_dead_letters_outlive_an_ephemeral_broker_and_replay_through_the_outbox(
    kafka_bootstrap, database_url, tmp_path, capsys
):
    """Issue 13: on the embedded broker (memory only) the dead-letter topic was the only
    copy, and `winwin deadletters list` needed a bootstrap. Now the worker keeps each
    dead letter in SQL; the CLI lists it with no broker at all, and a replay goes through
    the outbox (the relay publishes it) and counts the fixed record once."""
    stack = Stack(kafka_bootstrap, database_url, tmp_path, partitions=2, kafka_ephemeral=1)
    try:
        settings = stack.settings
        person = pseudonymise(settings.secret_key.get_secret_value().encode(), "fam-1")
        good = {"event_id": "g1", "type": "page.view", "occurred_at": "2017-08-14T10:00:00Z"}
        good["person"] = person
        bad = dict(good, event_id="b1", occurred_at="yesterday")
        name = topics.physical(topics.ENGAGEMENT, settings.topic_prefix)
        from services.bus.producer import ensure_topics

        ensure_topics(settings)
        producer = make_producer(settings)
        sent = producer.send(name, value=encode([good, bad]), key=person.encode()).get(30)
        producer.close()
        stack.start_worker()
        wait_for(
            lambda: stack.count(DeadLetterRow) == 1 and stack.count(EngagementEvent) == 1,
            90,
            0.3,
            what="the dead letter in SQL and the good record",
        )

        no_broker = settings.model_copy(update={"kafka_bootstrap": ""})
        capsys.readouterr()
        assert deadletters_command(no_broker, Namespace(deadletters_command="list")) == 0
        listed = capsys.readouterr().out
        assert f"from {name}[{sent.partition}]@{sent.offset}\trecord 1\t" in listed
        assert "occurred_at" in listed and "1 dead letters" in listed

        # A fix is deployed: a kept dead letter valid today is replayed, twice, counted once.
        fixed = dict(good, event_id="fixed-1")
        with stack.sessions() as session, session.begin():
            session.add(
                DeadLetterRow(
                    letter_id=f"{name}[0]@0#0",
                    source_topic=name,
                    source_partition=0,
                    source_offset=0,
                    record_index=0,
                    error="old bug",
                    original=json.dumps(fixed).encode(),
                    failed_at=datetime(2024, 1, 1, tzinfo=UTC),
                )
            )
        for _ in range(2):
            deadletters_command(settings, Namespace(deadletters_command="replay", dry_run=False))
            out = capsys.readouterr().out
            assert "replayed 1 records" in out and out.count("still invalid") == 1
        stack.start_relay()
        wait_for(
            lambda: stack.count(EngagementEvent, EngagementEvent.event_id == "fixed-1") == 1,
            60,
            0.3,
            what="the replayed record",
        )
        wait_for(lambda: stack.count(OutboxMessage) == 0, 60, 0.5, what="the outbox pruned")
        assert stack.count(EngagementEvent) == 2 and stack.count(DeadLetterRow) == 2
    finally:
        stack.close()
