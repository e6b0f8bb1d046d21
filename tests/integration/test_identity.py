"""One person across channels (SQLite and PostgreSQL): a visitor with 3 anonymous
events is identified as a contact who also has email events. The month's unique people
drop by exactly one, the credits move to the merged person, later events of the visitor
count for the contact, and undoing the merge restores every previous number."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from services.analytics.recompute import models_of
from services.analytics.sink import AttributionSink
from services.api import create_app
from services.db.migrate import upgrade
from services.db.models import Credit, EngagementEvent, OutboxMessage, StageFact
from services.journeys.identity import reconcile
from tests.unit.journeys.helpers import (
    T0,
    TOKEN,
    Clock,
    add_contacts,
    make_container,
    person,
    record,
    visitor,
)

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
        credits = sorted(  # one per model, as if none were stored once for all models
            (r.event_id, m, r.window_days, r.touch_id, r.person, round(r.weight, 9))
            for r in s.scalars(select(Credit))
            for m in models_of(r.model)
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


def test_merge_counts_one_person_moves_credits_and_undo_restores(database_url, tmp_path):
    upgrade(database_url)
    clock = Clock(T0 + 6 * H)
    c = make_container(database_url, tmp_path, clock)
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
    with TestClient(create_app(c), headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        before = numbers(client, c)
        assert before["stages"] == [{"period": MONTH, "aware": 3, "use": 2, "produce": 0}]

        r = client.post("/api/v1/identify", json={"visitor": "abc123", "external_id": "fam-9"})
        assert r.status_code == 201, r.text
        merge = r.json()
        assert merge["moved"]["events"] == 3 and merge["moved"]["touches"] == 1
        merged = numbers(client, c)
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
        # An event already in flight under the visitor is moved by the periodic reconcile.
        AttributionSink(c.sessions).write([record("a0", anon, T0 + 5 * H, "page.view")], [])
        assert reconcile(c) == 1 and numbers(client, c)["stages"] == merged["stages"]
        with c.sessions() as s:
            s.begin()
            s.query(EngagementEvent).filter(EngagementEvent.event_id == "a0").delete()
            s.commit()

        r = client.delete(f"/api/v1/identify/{merge['merge_id']}")
        assert r.status_code == 200 and r.json()["undone"] is True
        assert numbers(client, c) == before
        assert (
            client.delete(f"/api/v1/identify/{merge['merge_id']}").status_code == 200
        )  # idempotent
        assert client.delete("/api/v1/identify/nope").status_code == 404
        late["event_id"] = "a5"
        client.post("/api/v1/events", json=[late])
        assert last_outbox_person(c) == anon
    c.close()
