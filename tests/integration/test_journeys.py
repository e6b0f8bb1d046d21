"""Journeys end to end.

* On SQLite and PostgreSQL: a simulation over a generated quarter gives the same counts
  as actually running the journeys over the same events (fed in shuffled batches, the
  timer runner stepped through time).
* On real Kafka: "used a diet resource → 7 days later, unless already produced, invite to
  share a tip" acts exactly once per person under a controlled clock, survives a stream
  worker killed with SIGKILL while timers are pending, honours an unsubscribe during the
  delay, respects the frequency cap, and its emails are credited like a campaign's.
"""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from services.analytics.sink import AttributionSink
from services.api import create_app
from services.db.migrate import upgrade
from services.db.models import Credit, EngagementEvent, LocalEmail, Send, Touch
from services.db.models_journeys import JourneyRun
from services.journeys.runner import run_due_journeys
from services.journeys.stream import JourneyTriggers
from tests.integration.journeys.helpers import (
    DAY,
    TOKEN,
    Clock,
    add_contacts,
    add_resource,
    add_sent,
    add_template,
    make_container,
    person,
    record,
    visitor,
)

Q0 = datetime(2024, 1, 1, tzinfo=UTC)
INVITE = {
    "name": "invite to share",
    "trigger": {"types": ["resource.view"], "topic": "diet"},
    "delay": "P7D",
    "exit": {"reached_stage": "produce"},
    "action": {"channel": "email", "template_id": "tpl-invite"},
}
THANKS = {
    "name": "thank producers",
    "trigger": {"stage": "produce"},
    "delay": "P2D",
    "action": {"channel": "email", "template_id": "tpl-invite"},
}


def quarter_of_events(rng: random.Random, people: int) -> list[dict]:
    kinds = [
        ("resource.view", "diet-tips"),
        ("resource.view", "diet-school"),
        ("resource.view", "school-plan"),
        ("page.view", None),
        ("story.shared", None),
    ]
    out = []
    for i in range(people):
        who = person(f"fam-{i}") if i % 5 else visitor(f"vid{i}")
        for k in range(rng.randrange(0, 7)):
            kind, resource = rng.choices(kinds, weights=[4, 2, 2, 3, 1])[0]
            at = Q0 + timedelta(minutes=rng.randrange(60 * 24 * 90))
            out.append(
                record(
                    f"q{i}-{k}", who, at, kind, **({"resource_id": resource} if resource else {})
                )
            )
    return out


def test_simulation_gives_the_counts_of_actually_running(database_url, tmp_path):
    upgrade(database_url)
    clock = Clock(Q0)
    c = make_container(database_url, tmp_path, clock, frequency_cap="1/7d")
    rng = random.Random(8)
    refs = [f"fam-{i}" for i in range(160) if i % 5]
    add_contacts(c, [r for r in refs if int(r[4:]) % 7])
    add_contacts(c, [r for r in refs if int(r[4:]) % 7 == 0], consent="unsubscribed")
    for n in range(4):
        add_sent(
            c,
            f"news-{n}",
            [
                (r, Q0 + timedelta(hours=rng.randrange(24 * 90)))
                for r in refs
                if int(r[4:]) % 3 == 0
            ],
        )
    add_resource(c, "diet-tips", ["diet"])
    add_resource(c, "diet-school", ["diet", "school"])
    add_resource(c, "school-plan", ["school"])
    add_template(c)
    with TestClient(create_app(c), headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        ids = [client.post("/api/v1/journeys", json=body).json()["id"] for body in (INVITE, THANKS)]
        events = quarter_of_events(rng, 160)
        rng.shuffle(events)
        sink, hook = AttributionSink(c.sessions), JourneyTriggers(c.sessions, ttl=0)
        for start in range(0, len(events), 97):
            sink.write(events[start : start + 97], [])
            hook.on_batch(events[start : start + 97])
        while clock.at < Q0 + timedelta(days=125):
            clock.at += timedelta(days=5)
            run_due_journeys(c, clock.at)
        for jid in ids:
            actual = client.get(f"/api/v1/journeys/{jid}").json()["stats"]
            simulated = client.post(
                f"/api/v1/journeys/{jid}/simulate", json={"from": "2024-01-01", "to": "2024-03-31"}
            ).json()
            assert {k: simulated[k] for k in actual} == actual, jid
            assert simulated["messages"] == simulated["people"] == actual["acted"]
        invite = client.get(f"/api/v1/journeys/{ids[0]}").json()["stats"]
        assert invite["waiting"] == 0 and all(
            invite[k] > 0 for k in ("acted", "exited", "skipped_consent", "skipped_cap")
        )
        early = client.post(
            f"/api/v1/journeys/{ids[0]}/simulate", json={"from": "2024-01-01", "to": "2024-01-31"}
        ).json()
        assert 0 < early["triggered"] < invite["triggered"]
        assert (
            client.post(
                f"/api/v1/journeys/{ids[0]}/simulate",
                json={"from": "2024-02-01", "to": "2024-01-01"},
            ).status_code
            == 422
        )
        assert (
            client.post(
                "/api/v1/journeys/nope/simulate", json={"from": "2024-01-01", "to": "2024-01-02"}
            ).status_code
            == 404
        )
        with c.sessions() as s:  # nothing sent by the simulations
            assert (
                s.scalar(select(func.count()).select_from(LocalEmail))
                == invite["acted"]
                + client.get(f"/api/v1/journeys/{ids[1]}").json()["stats"]["acted"]
            )
    c.close()


def test_journey_definitions_are_checked(database_url, tmp_path):
    upgrade(database_url)
    c = make_container(database_url, tmp_path, Clock())
    add_template(c)
    with TestClient(create_app(c), headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for bad in (
            {**INVITE, "delay": "7 days"},
            {**INVITE, "trigger": {}},
            {**INVITE, "exit": {"reached_stage": "famous"}},
            {**INVITE, "action": {"channel": "email", "template_id": "nope"}},
            {**INVITE, "action": {"channel": "pigeon"}},
        ):
            r = client.post("/api/v1/journeys", json=bad)
            assert r.status_code == 422, (bad, r.text)
        r = client.post("/api/v1/journeys", json=INVITE)
        assert r.status_code == 201
        body = r.json()
        assert body["stats"] == {
            "triggered": 0,
            "waiting": 0,
            "acted": 0,
            "exited": 0,
            "skipped_consent": 0,
            "skipped_cap": 0,
            "held_out": 0,
        }
        assert (
            body["campaign_id"]
            and client.get(f"/api/v1/campaigns/{body['campaign_id']}").json()["name"]
            == "journey: invite to share"
        )
        assert [j["id"] for j in client.get("/api/v1/journeys").json()] == [body["id"]]
        assert client.get("/api/v1/journeys/nope").status_code == 404
        assert (
            client.get("/api/v1/journeys", headers={"Authorization": "Bearer wrong"}).status_code
            == 401
        )
    c.close()


@pytest.mark.kafka
@pytest.mark.postgres
def test_diet_journey_on_kafka_survives_sigkill_unsubscribe_and_cap(
    kafka_bootstrap, postgres_server, tmp_path
):
    from tests.integration.journeys.helpers import SECRET, T0
    from tests.stack import Stack, wait_for

    url = postgres_server.create_database()  # real Kafka and PostgreSQL (SQLite: the tests above)
    stack = Stack(kafka_bootstrap, url, tmp_path, secret_key=SECRET)
    (tmp_path / "state").mkdir(exist_ok=True)  # faust's datadir lives there (streams/app.py)
    try:
        _diet_journey(stack, wait_for, T0)
    finally:
        stack.close()
        with contextlib.suppress(Exception):  # retried by drop_created() at session end
            postgres_server.drop_database(url)


def _diet_journey(stack, wait_for, t0) -> None:
    stack.start_relay()
    worker = stack.start_worker()
    clock = Clock(t0)
    with stack.client(now=clock) as client:
        c = client.app.state.container
        contacts = [
            {
                "external_id": f"fam-{i}",
                "email": f"fam-{i}@example.net",
                "name": f"Parent {i}",
                "consent": {"email": "confirmed"},
            }
            for i in (1, 2, 3, 4, 6)
        ]
        assert client.post("/api/v1/contacts", json=contacts).status_code == 200
        assert (
            client.post(
                "/api/v1/resources",
                json={
                    "id": "diet-tips",
                    "title": "Diet tips",
                    "kind": "tips",
                    "url": "https://network.example.org/diet",
                    "topics": ["diet"],
                },
            ).status_code
            == 201
        )
        add_template(c)
        (unsub_send,) = add_sent(c, "news-0", [("fam-3", t0 - DAY)])
        for n in range(1, 4):  # fam-4 gets 3 newsletters in the week before the invite is due
            add_sent(c, f"news-{n}", [("fam-4", t0 + timedelta(days=5, hours=n))])
        journey = client.post("/api/v1/journeys", json=INVITE).json()
        jid, jcampaign = journey["id"], journey["campaign_id"]
        clock.at = t0 + timedelta(hours=3)

        def view(eid, ref, at, type_="resource.view"):
            return {
                "event_id": eid,
                "type": type_,
                "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "person_ref": ref,
                **({"resource_id": "diet-tips"} if type_ == "resource.view" else {}),
            }

        h = timedelta(hours=1)
        first = [
            view("d1", "fam-1", t0 + h),
            view("d1b", "fam-1", t0 + 2 * h),
            view("d2", "fam-2", t0 + h),
            view("d3", "fam-3", t0 + h),
            view("d4", "fam-4", t0 + h),
            view("d5", "v:visitor5", t0 + h),
            view("p7", "fam-7", t0 + h, "page.view"),
        ]
        assert client.post("/api/v1/events", json=first).json()["accepted"] == 7
        wait_for(lambda: stack.count(JourneyRun) == 5, 90, what="5 journey timers")
        stack.kill_worker(worker)  # SIGKILL while every timer is pending

        clock.at = t0 + DAY
        later = [view("d6", "fam-6", t0 + DAY - h), view("d1", "fam-1", t0 + h)]
        assert client.post("/api/v1/events", json=later).json() == {
            "accepted": 1,
            "duplicates": 1,
            "rejected": [],
        }
        clock.at = t0 + 3 * DAY
        client.post("/api/v1/events", json=[view("s2", "fam-2", t0 + 3 * DAY - h, "story.shared")])
        stack.start_worker()
        wait_for(
            lambda: stack.count(EngagementEvent) == 9 and stack.count(JourneyRun) == 6,
            90,
            what="restart",
        )

        clock.at = t0 + 6 * DAY
        assert sum(run_due_journeys(c, clock.at).values()) == 0
        assert (
            client.post(f"/u/{c.tokens.sign('u', unsub_send)}").status_code == 200
        )  # during the delay

        clock.at = t0 + 8 * DAY
        counts = run_due_journeys(c, clock.at)
        assert counts == {"acted": 2, "exited": 1, "skipped_consent": 2, "skipped_cap": 1}
        assert sum(run_due_journeys(c, clock.at + DAY).values()) == 0  # acts once
        stats = client.get(f"/api/v1/journeys/{jid}").json()["stats"]
        assert stats == {"triggered": 6, "waiting": 0, "held_out": 0, **counts}
        outbox = client.get("/api/v1/outbox", params={"campaign_id": jcampaign}).json()
        assert sorted(m["to"] for m in outbox) == ["fam-1@example.net", "fam-6@example.net"]
        with stack.sessions() as s:
            states = dict(s.execute(select(JourneyRun.person, JourneyRun.state)).all())
            assert (
                states[person("fam-3")] == "skipped_consent"
                and states[person("fam-4")] == "skipped_cap"
            )
            assert (
                s.scalar(
                    select(func.count()).select_from(Send).where(Send.campaign_id == jcampaign)
                )
                == 2
            )

        # The invitations are touches: fam-1's story is credited to the journey.
        wait_for(
            lambda: stack.count(Touch, Touch.campaign_id == jcampaign) == 2,
            60,
            what="journey touches",
        )
        clock.at = t0 + 9 * DAY
        client.post("/api/v1/events", json=[view("s1", "fam-1", t0 + 9 * DAY - h, "story.shared")])
        wait_for(
            lambda: (
                stack.count(
                    Credit,
                    Credit.event_id == "s1",
                    Credit.campaign_id == jcampaign,
                    Credit.w_last_touch > 0,
                )
                == 1
            ),
            60,
            what="the credit",
        )
        rows = client.get(
            f"/api/v1/campaigns/{jcampaign}/attribution", params={"model": "last_touch"}
        ).json()
        assert any(r["stage"] == "produce" and r["people"] == 1 for r in rows)
