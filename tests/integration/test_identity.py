"""One person across channels (SQLite and PostgreSQL): a visitor with 3 anonymous
events is identified as a contact who also has email events. The month's unique people
drop by exactly one, the credits move to the merged person, later events of the visitor
count for the contact, and undoing the merge restores every previous number.

One writer of read models: the API process only records the merge and publishes it
(outbox); the stream worker moves the rows and recounts, and a redelivered identity
change changes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update

import schemas
from services.analytics.credit_rows import model_weights
from services.analytics.sink import AttributionSink
from services.api import create_app
from services.bus.outbox import prune_stored
from services.bus.relay import Relay, drain
from services.db.migrate import upgrade
from services.db.models import Credit, EngagementEvent, OutboxMessage, StageFact, Touch
from services.db.models_journeys import MergedRow
from services.journeys.identity import reconcile
from services.journeys.recount import apply_changes
from streams.writer import SinkProcess
from tests.integration.journeys.helpers import (
    SECRET,
    T0,
    TOKEN,
    Clock,
    add_contacts,
    make_container,
    person,
    record,
    visitor,
)
from tests.stack import Stack, wait_for

MONTH = T0.strftime("%Y-%m")
H = timedelta(hours=1)


def numbers(client, c) -> dict:
    stages = client.get(
        "/api/v1/metrics/stages", params={"period": "month", "from": MONTH, "to": MONTH}
    ).json()
    attribution = client.get(
        "/api/v1/attribution", params={"model": "last_touch", "from": MONTH, "to": MONTH}
    ).json()
    with c.sessions() as s:
        credits = sorted(  # one per model and touch
            (r.event_id, m, r.window_days, r.touch_id, r.person, round(w, 9))
            for r in s.execute(select(Credit.__table__)).mappings()
            for m, w in model_weights(r)
        )
        facts = sorted(
            (f.period_kind, f.period, f.stage, f.person) for f in s.scalars(select(StageFact))
        )
    return {
        "stages": stages["rows"],
        "attribution": attribution["rows"],
        "credits": credits,
        "facts": facts,
    }


def last_outbox_person(c) -> str:
    with c.sessions() as s:
        message = s.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
        return message.records[-1]["person"]


def outbox_records(c) -> list[dict]:
    with c.sessions() as s:
        return [
            r
            for m in s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
            for r in m.records
        ]


def stored(c) -> dict:
    """Every row the stream writes for engagement: events and touches (with their
    person), stage facts, credits, and the rows merges noted."""
    tables = (EngagementEvent, Touch, StageFact, Credit, MergedRow)
    with c.sessions() as s:
        return {
            t.__tablename__: sorted(
                (tuple(row) for row in s.execute(select(t.__table__))), key=repr
            )
            for t in tables
        }


def applied(relay, client, c, was: dict) -> dict:
    """Publish the outbox and wait until the stream worker changed the numbers (two
    reads alike: none of them straddled the stream's commit)."""
    drain(relay)
    return wait_for(
        lambda: (now := numbers(client, c)) != was and now == numbers(client, c) and now,
        90,
        0.2,
        "the stream to apply it",
    )


@pytest.fixture
def stack(kafka_bootstrap, database_url, tmp_path):
    s = Stack(kafka_bootstrap, database_url, tmp_path, partitions=2, secret_key=SECRET)
    (tmp_path / "state").mkdir(exist_ok=True)  # faust's datadir lives there (streams/app.py)
    yield s
    s.close()


def seed(c) -> tuple[str, str]:
    """Two contacts, one with email events, and a visitor with 3 anonymous events, as
    the stream stores them; returns (the contact's, the visitor's) pseudonyms."""
    add_contacts(c, ["fam-9", "fam-8"])
    me, anon = person("fam-9"), visitor("abc123")
    AttributionSink(c.sessions).write(
        [
            record("o1", me, T0 + H, "email.open", campaign_id="digest", channel="email"),
            record("r1", me, T0 + 2 * H, "resource.view", resource_id="diet-tips"),
            record("x1", person("fam-8"), T0 + H, "page.view"),
            record(
                "a1", anon, T0 + H / 2, "link.click", campaign_id="toolkit-1", channel="toolkit"
            ),
            record("a2", anon, T0 + 3 * H, "page.view"),
            record("a3", anon, T0 + 4 * H, "resource.view", resource_id="school-plan"),
        ],
        [
            {
                "touch_id": "send:s1",
                "person": me,
                "campaign_id": "digest",
                "channel": "email",
                "kind": "email.sent",
                "occurred_at": T0.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ],
    )
    return me, anon


def test_merge_counts_one_person_moves_credits_and_undo_restores(stack):
    clock = Clock(T0 + 6 * H)
    stack.start_worker()
    relay = Relay(stack.settings, stack.sessions)  # published by hand: the test reads the outbox
    with stack.client(now=clock) as client:
        c = client.app.state.container
        me, anon = seed(c)
        before = numbers(client, c)
        assert before["stages"] == [{"period": MONTH, "aware": 3, "use": 2, "produce": 0}]

        r = client.post("/api/v1/identify", json={"visitor": "abc123", "external_id": "fam-9"})
        assert r.status_code == 201, r.text
        merge = r.json()
        assert merge["moved"]["events"] == 3 and merge["moved"]["touches"] == 1
        merged = applied(relay, client, c, before)
        assert merged["stages"] == [{"period": MONTH, "aware": 2, "use": 1, "produce": 0}]
        assert all(p != anon for *_, p, _w in merged["credits"])
        credited = {(e, m): t for e, m, w, t, p, _ in merged["credits"] if w == 30}
        assert credited[("a2", "last_touch")] == "e:o1"  # now credited to the email open
        assert credited[("a3", "first_touch")] == "send:s1"
        was = {(e, m): t for e, m, w, t, p, _ in before["credits"] if w == 30}
        assert was[("a2", "last_touch")] == "e:a1" and was[("a3", "first_touch")] == "e:a1"
        by_campaign = {(row["key"], row["stage"]): row for row in merged["attribution"]}
        assert (
            by_campaign[("digest", "use")]["people"] == 1
            and by_campaign[("digest", "use")]["events"] == 2
        )

        again = client.post("/api/v1/identify", json={"visitor": "abc123", "external_id": "fam-9"})
        assert again.status_code == 200 and again.json()["merge_id"] == merge["merge_id"]
        assert (
            client.post(
                "/api/v1/identify", json={"visitor": "abc123", "external_id": "fam-8"}
            ).status_code
            == 409
        )
        assert (
            client.post(
                "/api/v1/identify", json={"visitor": "abc123", "external_id": "nobody"}
            ).status_code
            == 404
        )
        assert (
            client.post(
                "/api/v1/identify", json={"visitor": "no spaces", "external_id": "fam-9"}
            ).status_code
            == 422
        )

        # Later events of the visitor count for the contact.
        late = {
            "event_id": "a4",
            "type": "page.view",
            "occurred_at": (T0 + 5 * H).isoformat(),
            "person_ref": "v:abc123",
        }
        assert client.post("/api/v1/events", json=[late]).json()["accepted"] == 1
        assert last_outbox_person(c) == me
        with c.sessions() as s, s.begin():  # only its routing is checked: it goes no further
            s.execute(delete(OutboxMessage))
        # An event already in flight under the visitor is moved by the periodic reconcile.
        AttributionSink(c.sessions).write([record("a0", anon, T0 + 5 * H, "page.view")], [])
        in_flight = numbers(client, c)
        assert (
            reconcile(c) == 1 and applied(relay, client, c, in_flight)["stages"] == merged["stages"]
        )
        with c.sessions() as s:
            s.begin()
            s.query(EngagementEvent).filter(EngagementEvent.event_id == "a0").delete()
            s.commit()

        r = client.delete(f"/api/v1/identify/{merge['merge_id']}")
        assert r.status_code == 200 and r.json()["undone"] is True
        assert applied(relay, client, c, numbers(client, c)) == before
        assert (
            client.delete(f"/api/v1/identify/{merge['merge_id']}").status_code == 200
        )  # idempotent
        assert client.delete("/api/v1/identify/nope").status_code == 404
        late["event_id"] = "a5"
        client.post("/api/v1/events", json=[late])
        assert last_outbox_person(c) == anon


def test_the_api_process_writes_no_read_model(database_url, tmp_path):
    """Merge and undo with no stream running: not one stored row changes; each is one
    identity change record in the outbox, keyed by the contact."""
    upgrade(database_url)
    c = make_container(database_url, tmp_path, Clock(T0 + 6 * H))
    me, anon = seed(c)
    untouched = stored(c)
    with TestClient(create_app(c), headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        r = client.post("/api/v1/identify", json={"visitor": "abc123", "external_id": "fam-9"})
        assert r.status_code == 201, r.text
        merge_id = r.json()["merge_id"]
        assert stored(c) == untouched
        assert client.delete(f"/api/v1/identify/{merge_id}").status_code == 200
        assert stored(c) == untouched
    changes = outbox_records(c)
    assert [(r["kind"], r["merge_id"], r["person"], r["visitor"]) for r in changes] == [
        ("identity.merged", merge_id, me, anon),
        ("identity.unmerged", merge_id, me, anon),
    ]
    assert not any(schemas.errors_of("identity.v1", r) for r in changes)
    c.close()


def test_a_redelivered_identity_change_changes_nothing(database_url, tmp_path):
    """The stream's sink process applies each change once in effect, however often it
    comes: a merge twice, and the merge again after its undo."""
    upgrade(database_url)
    c = make_container(database_url, tmp_path, Clock(T0 + 6 * H))
    me, anon = seed(c)
    sink = SinkProcess(database_url, 30, "UTC")

    def write(*changes: dict) -> None:
        asyncio.run(sink.write_all([], [], list(changes)))

    def state(client) -> tuple[dict, dict]:  # credits as numbers() compares them
        return numbers(client, c), {k: v for k, v in stored(c).items() if k != "credits"}

    try:
        with TestClient(create_app(c), headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            apart = state(client)
            r = client.post("/api/v1/identify", json={"visitor": "abc123", "external_id": "fam-9"})
            merged_change = outbox_records(c)[-1]
            write(merged_change)
            merged = stored(c)
            assert numbers(client, c)["stages"] == [
                {"period": MONTH, "aware": 2, "use": 1, "produce": 0}
            ]
            assert {row[3] for row in merged["engagement_events"]} == {me, person("fam-8")}
            write(merged_change)
            assert stored(c) == merged

            client.delete(f"/api/v1/identify/{r.json()['merge_id']}")
            unmerged_change = outbox_records(c)[-1]
            write(unmerged_change)
            assert state(client) == apart
            write(merged_change, unmerged_change)
            write(merged_change)
            assert state(client) == apart
    finally:
        sink._pool.shutdown(cancel_futures=True)
        c.close()


def test_an_ephemeral_broker_keeps_identity_changes_until_applied(database_url, tmp_path):
    """On a broker that keeps nothing (WINWIN_KAFKA_EPHEMERAL) a published outbox row is
    kept until the stream applied it: a merge until the visitor's rows are moved, an
    undo until they are moved back."""
    upgrade(database_url)
    c = make_container(database_url, tmp_path, Clock(T0 + 6 * H))
    seed(c)

    def published_then_pruned() -> int:
        with c.sessions() as s, s.begin():
            s.execute(update(OutboxMessage).values(published_at=datetime.now(UTC)))
            return prune_stored(s)[0]

    with TestClient(create_app(c), headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        r = client.post("/api/v1/identify", json={"visitor": "abc123", "external_id": "fam-9"})
        (merged_change,) = outbox_records(c)
        assert published_then_pruned() == 0
        apply_changes(c.sessions, [merged_change], "UTC", 30)
        assert published_then_pruned() == 1
        client.delete(f"/api/v1/identify/{r.json()['merge_id']}")
        (unmerged_change,) = outbox_records(c)
        assert published_then_pruned() == 0
        apply_changes(c.sessions, [unmerged_change], "UTC", 30)
        assert published_then_pruned() == 1
    c.close()
