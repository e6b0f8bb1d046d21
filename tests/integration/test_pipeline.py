"""The walking skeleton on real Kafka: HTTP in, Kafka, the Faust worker, SQL counts out."""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from services.db.models import EngagementEvent
from tests.stack import BROWSER, Stack, email_campaign, wait_for

pytestmark = pytest.mark.kafka


@pytest.fixture
def stack(kafka_bootstrap, database_url, tmp_path):
    s = Stack(kafka_bootstrap, database_url, tmp_path)
    yield s
    s.close()


def _stages(client, start: str, end: str, **params) -> dict:
    r = client.get(
        "/api/v1/metrics/stages", params={"period": "month", "from": start, "to": end, **params}
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_events_api_dedupes_rejects_and_counts_exact_unique_people(stack: Stack):
    stack.start_relay()
    stack.start_worker()
    with stack.client() as client:
        future = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
        body = [
            {
                "event_id": "a1",
                "type": "page.view",
                "occurred_at": "2017-08-14T10:00:00Z",
                "person_ref": "fam-1",
            },
            {
                "event_id": "a2",
                "type": "resource.view",
                "occurred_at": "2017-08-15T10:00:00Z",
                "person_ref": "fam-1",
            },
            {
                "event_id": "a3",
                "type": "story.shared",
                "occurred_at": "2017-08-16T10:00:00Z",
                "person_ref": "fam-2",
            },
            {
                "event_id": "a1",
                "type": "page.view",
                "occurred_at": "2017-08-14T10:00:00Z",
                "person_ref": "fam-1",
            },
            {
                "event_id": "bad-time",
                "type": "page.view",
                "occurred_at": future,
                "person_ref": "fam-3",
            },
            {
                "event_id": "",
                "type": "page.view",
                "occurred_at": "2017-08-14T10:00:00Z",
                "person_ref": "fam-3",
            },
            {
                "event_id": "a4",
                "type": "odd.unknown",
                "occurred_at": "2017-09-01T00:00:00Z",
                "person_ref": "fam-4",
            },
        ]
        r = client.post("/api/v1/events", json=body)
        assert r.status_code == 202, r.text
        out = r.json()
        assert out["accepted"] == 4 and out["duplicates"] == 1
        assert [x["index"] for x in out["rejected"]] == [4, 5]
        assert out["rejected"][0]["error"].startswith("occurred_at")
        assert out["rejected"][1]["error"].startswith("event_id")
        again = client.post("/api/v1/events", json=body[:2]).json()
        assert again == {"accepted": 0, "duplicates": 2, "rejected": []}

        for bad in ({"not": "a list"}, [], [1, 2], [{}] * 1001):
            assert client.post("/api/v1/events", json=bad).status_code == 422
        assert client.post("/api/v1/events", content=b"{nope").status_code == 422

        wait_for(lambda: stack.count(EngagementEvent) == 4, 60, what="4 events in SQL")
        data = wait_for(
            lambda: (d := _stages(client, "2017-08", "2017-09"))["rows"][0]["produce"] == 1 and d
        )
        assert data["rows"] == [
            {"period": "2017-08", "aware": 2, "use": 2, "produce": 1},
            {"period": "2017-09", "aware": 0, "use": 0, "produce": 0},
        ]
        assert (
            client.post(
                "/api/v1/events", json=body, headers={"Authorization": "Bearer wrong"}
            ).status_code
            == 401
        )


def test_email_campaign_click_is_counted_and_credited(stack: Stack, tmp_path):
    from services.campaigns.channels.email import SendGridEmailSender
    from services.campaigns.dispatch import Dispatcher
    from tests.fakes.sendgrid_server import FakeSendGrid

    stack.start_relay()
    stack.start_worker()
    with FakeSendGrid("SG.test-key") as sendgrid, stack.client() as client:
        contacts = [
            {
                "external_id": f"fam-{i}",
                "email": f"Family{i}@Example.net",
                "name": f"Parent {i}",
                "role": "parent",
                "consent": {"email": "confirmed" if i != 7 else "unconfirmed"},
            }
            for i in range(1200)
        ]
        assert client.post("/api/v1/contacts", json=contacts[:1000]).json() == {
            "created": 1000,
            "updated": 0,
            "kept_unsubscribed": 0,
            "unknown_guardians": 0,
        }
        assert client.post("/api/v1/contacts", json=contacts[1000:]).status_code == 200
        res = client.post(
            "/api/v1/resources",
            json={
                "id": "diet",
                "title": "Diet tips",
                "kind": "tips",
                "url": "https://network.example.org/diet",
            },
        )
        assert res.status_code == 201
        cid = email_campaign(
            client,
            {
                "name": "digest",
                "subject": "Hello {{ contact.first_name }}",
                "html": '<p>Hi {{ contact.name }}</p>{% for r in resources %}<a href="{{ r.url }}">{{ r.title }}</a>{% endfor %}',
                "text": "Hi {{ contact.name }}\n{% for r in resources %}{{ r.title }}: {{ r.url }}\n{% endfor %}",
            },
            name="Diet month",
            resources=["diet"],
        )
        assert (
            client.post(f"/api/v1/campaigns/{cid}/schedule", json={}).json()["status"]
            == "scheduled"
        )

        container = client.app.state.container
        sender = SendGridEmailSender("SG.test-key", "outreach@example.org", sendgrid.host)
        Dispatcher(container, sender).dispatch_due(datetime.now(UTC))

        delivered = sendgrid.delivered
        assert len(delivered) == 1199 and sendgrid.request_count == 2  # 1000 + 199 personalizations
        assert len({d.to for d in delivered}) == 1199
        mail = next(d for d in delivered if d.to.lower() == "family3@example.net")
        assert mail.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert mail.headers["List-Unsubscribe"].startswith("<http://testserver/u/")
        assert set(mail.custom_args) == {"ww_campaign", "ww_person", "ww_send", "ww_batch"}
        assert mail.custom_args["ww_campaign"] == cid and re.fullmatch(
            r"p[0-9a-f]{32}", mail.custom_args["ww_person"]
        )
        assert "@" not in "".join(mail.custom_args.values())
        assert client.get(f"/api/v1/campaigns/{cid}").json()["progress"]["sent"] == 1199

        link = re.search(r"http://testserver(/r/[A-Za-z0-9_.-]+)", mail.text).group(1)
        import time

        time.sleep(2.1)  # a click within seconds of delivery is a scanner's, not a person's
        r = client.get(link, follow_redirects=False, headers={"User-Agent": BROWSER})
        assert r.status_code == 302 and r.headers["location"] == "https://network.example.org/diet"
        assert r.headers["referrer-policy"] == "no-referrer"

        month = datetime.now(UTC).strftime("%Y-%m")
        data = wait_for(
            lambda: (d := _stages(client, month, month))["rows"][0]["aware"] == 1 and d,
            30,
            what="the click to be counted",
        )
        assert data["rows"][0] == {"period": month, "aware": 1, "use": 0, "produce": 0}
        by_campaign = _stages(client, month, month, campaign_id=cid)
        assert by_campaign["rows"][0]["aware"] == 1
        attribution = client.get(
            f"/api/v1/campaigns/{cid}/attribution", params={"model": "last_touch"}
        ).json()
        assert any(
            row["stage"] == "aware" and row["credited"] == 1 and row["people"] == 1
            for row in attribution
        )


#: Events of the kill-mid-stream test (its crash-and-rebalance sibling in
#: test_reliability_crash.py kills five times; this one once, on both databases).
EVENTS = 12_000


def test_worker_killed_mid_stream_loses_nothing_and_counts_nothing_twice(stack: Stack):
    rng = random.Random(5)
    types = [
        "page.view",
        "link.click",
        "resource.view",
        "resource.download",
        "contribution.submitted",
    ]
    stage_of = {
        "page.view": 0,
        "link.click": 0,
        "resource.view": 1,
        "resource.download": 1,
        "contribution.submitted": 2,
    }
    events, oracle = [], defaultdict(set)
    for i in range(EVENTS):
        who = f"fam-{rng.randrange(4000)}"
        kind = rng.choice(types)
        at = datetime(2017, 8, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(60 * 24 * 90))
        events.append(
            {
                "event_id": f"k{i}",
                "type": kind,
                "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "person_ref": who,
            }
        )
        for s in range(stage_of[kind] + 1):
            oracle[(at.strftime("%Y-%m"), s)].add(who)
    events += rng.sample(events, EVENTS // 20)  # re-sent duplicates
    rng.shuffle(events)
    stack.start_relay()
    with stack.client() as client:
        for start in range(0, len(events), 1000):
            r = client.post("/api/v1/events", json=events[start : start + 1000])
            assert r.status_code == 202
        worker = stack.start_worker()
        wait_for(lambda: stack.count(EngagementEvent) > 3000, 120, what="processing to start")
        stack.kill_worker(worker)
        partial = stack.count(EngagementEvent)
        stack.start_worker()
        wait_for(
            lambda: stack.count(EngagementEvent) == EVENTS,
            180,
            0.5,
            what="all events after restart",
        )
        data = wait_for(
            lambda: (
                (d := _stages(client, "2017-08", "2017-10"))
                and sum(r["aware"] for r in d["rows"])
                == sum(len(oracle[(m, 0)]) for m in ("2017-08", "2017-09", "2017-10"))
                and d
            ),
            30,
            what="final counts",
        )
    expected = [
        {
            "period": m,
            "aware": len(oracle[(m, 0)]),
            "use": len(oracle[(m, 1)]),
            "produce": len(oracle[(m, 2)]),
        }
        for m in ("2017-08", "2017-09", "2017-10")
    ]
    assert data["rows"] == expected
    assert 3000 < partial <= EVENTS
    assert stack.count(EngagementEvent) == EVENTS


def test_credits_topic_carries_one_record_per_model_of_every_stage_event(stack: Stack):
    """SQL stores credits that every model agrees on once; the credits topic still
    carries a schema-valid record per model, with the models' own weights."""
    import schemas
    from services.bus import envelopes, topics
    from services.db.models import Credit
    from services.domain.attribution import Model
    from services.tracking.replay import read_topic

    def ev(event_id: str, kind: str, day: int, who: str, campaign: str | None = None) -> dict:
        extra = {"campaign_id": campaign, "channel": "email"} if campaign else {}
        return {
            "event_id": event_id,
            "type": kind,
            "occurred_at": f"2017-08-{day:02d}T10:00:00Z",
            "person_ref": who,
            **extra,
        }

    stack.start_relay()
    stack.start_worker()
    with stack.client() as client:
        template = {"subject": "Hi", "html": "<p>Hi</p>", "text": "Hi"}
        c1, c2 = (email_campaign(client, template, name=name) for name in ("first", "second"))
        body = [
            ev("one-click", "link.click", 1, "fam-1", c1),  # a touch and an aware event
            ev("one-use", "resource.view", 2, "fam-1"),
            ev("two-a", "link.click", 1, "fam-2", c1),
            ev("two-b", "link.click", 3, "fam-2", c2),
            ev("two-use", "resource.view", 4, "fam-2"),
            ev("none-use", "resource.view", 4, "fam-3"),
        ]
        assert client.post("/api/v1/events", json=body).json()["accepted"] == 6
        wait_for(lambda: stack.count(Credit) > 0 and stack.count(EngagementEvent) == 6, 60)

        def credit_records() -> list[dict]:
            messages = read_topic(stack.settings, topics.CREDITS)
            return [r for m in messages for r in envelopes.decode(m.value)]

        every = {m.value for m in Model}
        records = wait_for(
            lambda: (
                (rs := credit_records())
                and {(r["event_id"], r["model"]) for r in rs}
                == {(e["event_id"], m) for e in body for m in every}
                and rs
            ),
            60,
            what="a credit record per model of each of the 6 stage events",
        )
    assert all(schemas.errors_of("credit.v1", r) is None for r in records)
    shares = defaultdict(dict)
    for r in records:
        shares[(r["event_id"], r["model"])][r["campaign_id"]] = r["weight"]
    assert all(shares[("one-use", m)] == {c1: 1.0} for m in every)
    assert all(shares[("none-use", m)] == {"unattributed": 1.0} for m in every)
    two = {m: shares[("two-use", m)] for m in every}
    assert two["first_touch"] == {c1: 1.0} and two["last_touch"] == {c2: 1.0}
    assert two["linear"] == two["position_based"] == {c1: 0.5, c2: 0.5}
    assert two["time_decay"][c2] > two["time_decay"][c1] > 0
    with stack.sessions() as s:  # one row per (event, touch), a weight per model
        stored = Counter(c.event_id for c in s.query(Credit))
    assert {e: stored[e] for e in ("one-use", "none-use", "two-use")} == {
        "one-use": 1,
        "none-use": 1,
        "two-use": 2,
    }
