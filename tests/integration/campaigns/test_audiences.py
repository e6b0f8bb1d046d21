"""Audiences, campaign clone, journey update and switch, over HTTP on SQLite and
PostgreSQL (``database_url``); no Kafka (the lifespan is not started)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.campaigns.schedule import claim_due
from services.db.migrate import upgrade
from services.db.models import Send, StageFact
from services.db.upsert import insert_ignore
from services.domain.periods import PeriodKind, period_label
from services.domain.stages import Stage, implied
from tests.integration.test_security_access import local_client

NOW = datetime(2024, 6, 30, 12, tzinfo=UTC)
RECENT_USE = {"stage": "use", "reached": True, "within_days": 90}
AWARE_NEVER_USED = [{"stage": "aware"}, {"stage": "use", "reached": False}]


def contact(external_id: str, role: str, **more: object) -> dict[str, object]:
    return {
        "external_id": external_id,
        "email": f"{external_id}@family.example",
        "role": role,
        "consent": {"email": "confirmed"},
    } | more


CONTACTS = [
    contact("p1", "parent", language="es", needs=["diet"]),
    contact("p2", "parent"),
    contact("p3", "clinician"),
    contact("p4", "parent", consent={"email": "unconfirmed"}),
    contact("p5", "parent", email=None),
]
#: who reached which stage how many days ago
REACHED = {"p1": ("use", 10), "p2": ("aware", 200), "p3": ("use", 120), "p4": ("use", 1)}


@pytest.fixture
def client(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    upgrade(database_url)
    with local_client(tmp_path, now=lambda: NOW, database_url=database_url) as client:
        assert client.post("/api/v1/contacts", json=CONTACTS).status_code == 200
        add_stage_facts(client)
        yield client


def add_stage_facts(client: TestClient) -> None:
    """The facts the stream's sink would have written for ``REACHED``."""
    container = client.app.state.container
    people = {r["external_id"]: r for r in client.get("/api/v1/contacts").json()}
    assert people
    with container.sessions() as session, session.begin():
        pseudonyms = dict(
            session.execute(select_pseudonyms()).tuples().all()  # external id -> pseudonym
        )
        rows = []
        for who, (stage, days) in REACHED.items():
            day = (NOW - timedelta(days=days)).date()
            for reached in implied(Stage(stage)):
                for kind in (PeriodKind.DAY, PeriodKind.MONTH):
                    rows.append(
                        {"period_kind": kind.value, "period": period_label(day, kind)}
                        | {"stage": reached.value, "person": pseudonyms[who]}
                    )
        insert_ignore(session, StageFact.__table__, rows)


def select_pseudonyms():
    from services.db.models import Contact

    return select(Contact.external_id, Contact.pseudonym)


def count(client: TestClient, rule: dict) -> dict:
    r = client.post("/api/v1/audiences/count", json={"rule": rule})
    assert r.status_code == 200, r.text
    return r.json()


def test_live_count_is_people_with_consent_who_match_with_a_sample_of_ids(client):
    parents = {"filter": {"attr": "role", "eq": "parent"}}
    assert count(client, parents) == {"people": 2, "sample": ["p1", "p2"]}  # p4, p5: no consent
    assert count(client, {"engagement": [RECENT_USE]})["sample"] == ["p1"]  # p3: 120 days ago
    assert count(client, {"engagement": AWARE_NEVER_USED})["sample"] == ["p2"]
    needs = {"filter": {"attr": "needs", "in": ["diet"]}}
    assert count(client, needs) == {"people": 1, "sample": ["p1"]}
    lapsed = {"engagement": [{"stage": "use", "reached": False, "within_days": 90}]}
    assert count(client, lapsed)["sample"] == ["p2", "p3"]
    everyone = count(client, {})
    assert everyone["people"] == 3 and not any("@" in x for x in everyone["sample"])
    audited = {e["object_kind"] for e in client.get("/api/v1/audit").json()["entries"]}
    assert "audiences" not in audited  # a count changes nothing


def test_a_bad_rule_is_422_naming_its_part(client):
    """The domain's checks (tests/unit/domain/test_segments.py) answer over HTTP."""
    rule = {"engagement": [{"stage": "usage"}]}
    r = client.post("/api/v1/audiences", json={"name": "bad", "rule": rule})
    assert r.status_code == 422 and "rule.engagement[0].stage" in r.text, r.text
    assert client.post("/api/v1/audiences/count", json={"rule": rule}).status_code == 422
    assert client.get("/api/v1/audiences").json() == []


def test_a_stored_audience_is_counted_and_an_email_campaign_goes_to_it(client):
    r = client.post("/api/v1/audiences", json={"name": "aware, never used", "rule": {
        "engagement": AWARE_NEVER_USED}})  # fmt: skip
    assert r.status_code == 201, r.text
    audience = r.json()
    assert client.get("/api/v1/audiences").json()[0]["id"] == audience["id"]
    found = client.get(f"/api/v1/audiences/{audience['id']}").json()
    assert (found["name"], found["people"], found["sample"]) == ("aware, never used", 1, ["p2"])
    assert client.get("/api/v1/audiences/nope").status_code == 404
    audited = [(e["action"], e["object_id"]) for e in client.get("/api/v1/audit").json()["entries"]]
    assert ("create", audience["id"]) in audited

    campaign = email_campaign(client, audience_id=audience["id"])
    assert campaign["audience_id"] == audience["id"]
    r = client.post(f"/api/v1/campaigns/{campaign['id']}/schedule", json={"send_at": iso(NOW)})
    assert r.status_code == 200, r.text
    container = client.app.state.container
    assert claim_due(container.sessions, NOW) == [campaign["id"]]
    with container.sessions() as session:
        sent_to = session.scalars(select(Send.person).where(Send.campaign_id == campaign["id"]))
        assert len(list(sent_to)) == 1  # p2 only


def test_an_audience_id_must_exist_and_serve_an_email_campaign_alone(client):
    assert "unknown audience" in email_campaign(client, 422, audience_id="nope")["detail"]
    audience = client.post("/api/v1/audiences", json={"name": "all", "rule": {}}).json()
    both = email_campaign(client, 422, audience_id=audience["id"], audience={"tag": "x"})
    assert "not both" in both["detail"]


def test_clone_makes_a_draft_copy_with_the_same_audience(client):
    audience = client.post("/api/v1/audiences", json={"name": "all", "rule": {}}).json()
    original = email_campaign(client, audience_id=audience["id"], resources=[])
    client.post(f"/api/v1/campaigns/{original['id']}/schedule", json={"send_at": iso(NOW)})
    r = client.post(f"/api/v1/campaigns/{original['id']}/clone")
    assert r.status_code == 201, r.text
    copy = r.json()
    assert copy["id"] != original["id"] and copy["name"] == "June news (copy)"
    assert (copy["status"], copy["audience_id"]) == ("draft", audience["id"])
    assert client.get(f"/api/v1/campaigns/{original['id']}").json()["status"] == "scheduled"
    assert client.post("/api/v1/campaigns/nope/clone").status_code == 404


def test_a_journey_is_edited_and_switched_off_and_on(client):
    template = email_template(client)
    journey = client.post("/api/v1/journeys", json={
        "name": "invite", "trigger": {"types": ["resource.view"]}, "delay": "P7D",
        "action": {"channel": "email", "template_id": template}}).json()  # fmt: skip
    edit = {"name": "invite to share", "trigger": {"stage": "use"}, "delay": "P3D",
            "exit": {"reached_stage": "produce"},
            "action": {"channel": "email", "template_id": template}}  # fmt: skip
    r = client.put(f"/api/v1/journeys/{journey['id']}", json=edit)
    assert r.status_code == 200, r.text
    saved = client.get(f"/api/v1/journeys/{journey['id']}").json()
    assert (saved["name"], saved["delay"], saved["trigger"]) == ("invite to share", "P3D", {
        "stage": "use"})  # fmt: skip
    assert saved["campaign_id"] == journey["campaign_id"]
    campaign = client.get(f"/api/v1/campaigns/{saved['campaign_id']}").json()
    assert campaign["name"] == "journey: invite to share"
    assert client.post(f"/api/v1/journeys/{journey['id']}/off").json()["enabled"] is False
    assert client.get(f"/api/v1/journeys/{journey['id']}").json()["enabled"] is False
    assert client.post(f"/api/v1/journeys/{journey['id']}/on").json()["enabled"] is True
    bad = client.put(f"/api/v1/journeys/{journey['id']}", json=edit | {"delay": "soon"})
    assert bad.status_code == 422
    assert client.put("/api/v1/journeys/nope", json=edit).status_code == 404


def test_stage_map_put_says_how_many_people_each_stage_had_before_and_after(client):
    stage_map = client.get("/api/v1/stage-map").json()
    r = client.put("/api/v1/stage-map", json=stage_map)
    assert r.status_code == 200, r.text
    changes = r.json()["changes"]
    assert changes["use"]["added"] == [] and changes["use"]["removed"] == []
    # the facts above came from no stored event: the recomputation drops them
    assert (changes["use"]["people_before"], changes["use"]["people_after"]) == (3, 0)


def email_template(client: TestClient) -> str:
    body = {"name": "news", "channel": "email", "subject": "News", "text": "Hello"}
    r = client.post("/api/v1/templates", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def email_campaign(client: TestClient, status: int = 201, **fields: object) -> dict:
    body = {"name": "June news", "channel": "email", "template_id": email_template(client)}
    r = client.post("/api/v1/campaigns", json=body | fields)
    assert r.status_code == status, r.text
    return r.json()


def iso(moment: datetime) -> str:
    return moment.isoformat()


def test_a_messengers_toolkit_downloads_as_a_zip(client):
    for m in ("maria", "li"):
        client.post("/api/v1/messengers", json={"id": m, "name": m.title(), "role": "parent"})
    body = {"name": "kit", "channel": "toolkit", "text": "From {{ messenger.name }}"}
    template = client.post("/api/v1/templates", json=body).json()["id"]
    client.post("/api/v1/resources", json={"id": "g", "title": "Guide", "url": "https://x.example/g", "kind": "guide"})  # fmt: skip
    kit = {"name": "Kit", "channel": "toolkit", "template_id": template, "resources": ["g"]}
    made = client.post("/api/v1/campaigns", json=kit | {"messengers": ["maria", "li"]}).json()
    r = client.get(f"/api/v1/campaigns/{made['id']}/toolkits/li/zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip", r.text
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert {"index.html", "messages.txt", "qr/g.svg", "qr/g.png"} <= set(names)
    assert "From Li" in zipfile.ZipFile(io.BytesIO(r.content)).read("messages.txt").decode()
    assert client.get(f"/api/v1/campaigns/{made['id']}/toolkits/nobody/zip").status_code == 404
