"""Poison messages: the API answers bad input with a reason (413/422, or a per-event
rejection), and whatever bad got into Kafka goes to the dead-letter topic with its
original bytes, the error and its source offset, while the records around it are
processed (nothing stalls). ``winwin deadletters replay`` re-processes dead letters that
are valid after a fix, idempotently."""

from __future__ import annotations

import base64
import json
from argparse import Namespace

import pytest

from services.bus import topics
from services.bus.envelopes import encode, partition_for
from services.bus.producer import make_producer
from services.db.models import AcceptedEvent, EngagementEvent
from services.domain.pseudonyms import pseudonymise
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
            b"[" + b" " * (5 * 1024 * 1024) + b"]": 413,
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
        ]
        body = json.dumps([_event(1), *poison])  # ensure_ascii: lone surrogates as \\u escapes
        r = client.post(
            "/api/v1/events", content=body, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 202, r.text
        out = r.json()
        rejected = {x["index"]: x["error"] for x in out["rejected"]}
        assert out["accepted"] + len(rejected) == 1 + len(poison), out
        assert 0 not in rejected and {1, 2, 3, 4, 5, 11} <= set(rejected), out
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
