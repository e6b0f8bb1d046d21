"""People's rights (issue 18) on SQLite and PostgreSQL: access and erasure.

Sentinel values are given to one person (address, name, free text in attributes, event
properties and a reply); after ``DELETE /api/v1/contacts/{external_id}`` none of them is
in any table, nor (SQLite) in the database files, the logs or the local outbox, while the
month's stage counts are unchanged and an import of the same address is never mailed.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from services.analytics import metrics
from services.analytics.sink import AttributionSink
from services.api import create_app
from services.campaigns.dispatch import Dispatcher, make_sender
from services.campaigns.outbox_store import list_outbox
from services.db.migrate import upgrade
from services.db.models import Base, Contact, Credit, EngagementEvent, Suppression
from services.db.models_consent import Reply
from services.dispatcher_role import due_work
from services.domain.pseudonyms import pseudonymise
from tests.integration.analytics.conftest import event, touch
from tests.integration.test_dispatch import (
    NOW,
    SECRET,
    TOKEN,
    add_campaign,
    add_contacts,
    make_container,
    plain,
)

AUTH = {"Authorization": f"Bearer {TOKEN}"}
EMAIL, NAME = "Sentinel.Erasure@Example.net", "Quetzalsentinel Name"
NOTE, PROPERTY, REPLY = "SENTINEL-NOTE-4711", "SENTINEL-PROPERTY-0815", "SENTINEL-REPLY-1234"
SENTINELS = [EMAIL.lower(), EMAIL, NAME, NOTE, PROPERTY, REPLY, "sentinel-ext"]


@pytest.fixture
def db_url(database_url: str) -> str:
    upgrade(database_url)
    return database_url


def _everything(c: Any) -> str:
    """Every row of every table, as text."""
    with c.engine.connect() as connection:
        return "\n".join(
            repr(row)
            for table in Base.metadata.sorted_tables
            for row in connection.execute(select(table)).all()
        )


def _file_bytes(url: str) -> bytes:
    path = Path(make_url(url).database or "")
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def _seed(c: Any) -> str:
    add_contacts(c, [*plain(3), {"external_id": "sentinel-ext", "email": EMAIL, "name": NAME,
                                 "attributes": {"note": NOTE}}])  # fmt: skip
    person = pseudonymise(SECRET.encode(), "sentinel-ext")
    campaign = add_campaign(c)
    assert Dispatcher(c, make_sender(c)).dispatch_due(NOW) == 4
    others = [pseudonymise(SECRET.encode(), f"c{i}") for i in range(3)]
    AttributionSink(c.sessions).write(
        [event("e1", "resource.view", NOW, person, properties={"comment": PROPERTY}),
         event("e2", "story.shared", NOW, person),
         *(event(f"o{i}", "resource.view", NOW, p) for i, p in enumerate(others))],
        [touch("t1", NOW, person, "c1")],
    )  # fmt: skip
    with c.sessions() as s, s.begin():
        s.add(Reply(dedupe_key="r1", campaign_id=campaign, person=person, matched_by="token",
                    from_email=EMAIL, subject="Re", text=REPLY, html=f"<p>{REPLY}</p>",
                    received_at=NOW))  # fmt: skip
    return person


def _counts(c: Any) -> list[dict[str, Any]]:
    with c.sessions() as s:
        return metrics.stage_metrics(s, "month", "2024-03", "2024-03")["rows"]


def test_export_then_erasure_leaves_nothing_of_the_person_and_counts_unchanged(
    db_url, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    c = make_container(db_url, tmp_path)
    try:
        person = _seed(c)
        before = _counts(c)
        client = TestClient(create_app(c))
        held = client.get("/api/v1/contacts/sentinel-ext/export", headers=AUTH)
        assert held.status_code == 200, held.text
        body = held.json()
        assert body["contact"]["email"] == EMAIL and body["contact"]["name"] == NAME
        assert (
            len(body["sends"]) == len(body["outbox"]) == 1 and body["replies"][0]["text"] == REPLY
        )
        assert {e["event_id"] for e in body["events"]} == {"e1", "e2"}
        assert body["touches"] and body["stage_facts"] and body["consent_history"] == []
        assert NAME in _everything(c) and person in _everything(c)
        if db_url.startswith("sqlite"):
            assert REPLY.encode() in _file_bytes(db_url)  # the file check below can see it

        erased = client.delete("/api/v1/contacts/sentinel-ext", headers=AUTH)
        assert erased.status_code == 200, erased.text
        assert erased.json()["erased"] is True

        trail = client.get("/api/v1/audit", params={"object_kind": "contacts"}, headers=AUTH)
        actions = {(e["action"], e["object_id"]) for e in trail.json()["entries"]}
        assert {a for a, _ in actions} >= {"export", "delete"}  # both, by a digest of the id
        assert len({ref for _, ref in actions}) == 1 and "sentinel" not in str(actions)
        everything = _everything(c)
        for sentinel in [*SENTINELS, person]:
            assert sentinel not in everything, sentinel
        if db_url.startswith("sqlite"):
            files = _file_bytes(db_url)
            for sentinel in [EMAIL.lower(), NAME, NOTE, PROPERTY, REPLY]:
                assert sentinel.encode() not in files, sentinel
        with c.sessions() as s:
            assert all(EMAIL.lower() != m["to"].lower() for m in list_outbox(s, limit=1000))
        assert _counts(c) == before  # the facts stay, unlinkable
        assert client.get("/api/v1/contacts/sentinel-ext/export", headers=AUTH).status_code == 404
        for sentinel in SENTINELS[:-1]:  # the external id is in the request line (the URL)
            assert sentinel not in caplog.text
        assert "erasure" in caplog.text and "access" in caplog.text  # the audit trail

        # The same address imported again (a new external id) is never mailed.
        again = client.post("/api/v1/contacts", headers=AUTH, json=[
            {"external_id": "back-again", "email": EMAIL, "consent": {"email": "confirmed"}}])  # fmt: skip
        assert again.status_code == 200, again.text
        with c.sessions() as s:
            back = s.scalar(select(Contact).where(Contact.external_id == "back-again"))
            assert back.email_consent == "unsubscribed"
            assert s.get(Suppression, EMAIL.lower()) is not None
        add_campaign(c, campaign_id="cmp-2")
        Dispatcher(c, make_sender(c)).dispatch_due(NOW)
        with c.sessions() as s:
            sent_to = [m["to"].lower() for m in list_outbox(s, campaign_id="cmp-2")]
        assert len(sent_to) == 3 and EMAIL.lower() not in sent_to
    finally:
        c.close()


def test_an_unknown_person_is_404(db_url, tmp_path):
    c = make_container(db_url, tmp_path)
    try:
        client = TestClient(create_app(c))
        assert client.delete("/api/v1/contacts/nobody", headers=AUTH).status_code == 404
        assert client.get("/api/v1/contacts/nobody/export", headers=AUTH).status_code == 404
    finally:
        c.close()


def test_retention_clears_old_raw_detail_once_a_day_and_keeps_counts(db_url, tmp_path):
    c = make_container(db_url, tmp_path, retention_months_raw=24)
    old, recent = NOW - timedelta(days=800), NOW - timedelta(days=30)
    who = pseudonymise(SECRET.encode(), "someone")
    try:
        AttributionSink(c.sessions).write(
            [event("old", "resource.view", old, who, properties={"comment": PROPERTY}),
             event("new", "resource.view", recent, who, properties={"comment": "kept"})],
            [touch("t1", old, who, "c1")],
        )  # fmt: skip
        with c.sessions() as s, s.begin():
            for key, at in (("r-old", old), ("r-new", recent)):
                s.add(Reply(dedupe_key=key, person=who, from_email=EMAIL, subject="Re",
                            text=f"{REPLY} {key}", received_at=at))  # fmt: skip
        with c.sessions() as s:
            counts = metrics.stage_metrics(s, "month", "2022-01", "2024-03")["rows"]
        step = dict(due_work(c))["retention"]

        assert step(NOW) == {"events": 1, "replies": 1}
        assert step(NOW + timedelta(hours=1)) is None  # once a day
        assert step(NOW + timedelta(days=1)) == {"events": 0, "replies": 0}  # idempotent
        with c.sessions() as s:
            events = dict(
                s.execute(select(EngagementEvent.event_id, EngagementEvent.properties)).all()
            )
            replies = dict(s.execute(select(Reply.dedupe_key, Reply.text)).all())
            assert events == {"old": {}, "new": {"comment": "kept"}}
            assert replies == {"r-old": None, "r-new": f"{REPLY} r-new"}
            assert metrics.stage_metrics(s, "month", "2022-01", "2024-03")["rows"] == counts
            assert s.scalar(select(func.count()).select_from(Credit)) > 0  # credits stay
    finally:
        c.close()
