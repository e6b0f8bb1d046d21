"""Red team, round 3: attacks on what landed with issues 16 to 18 in their last hour
(audiences, content tests, journeys' edit and switch, erasure with events in flight).
Each test is one finding and fails on the code it was found on. In process, on a fresh
SQLite database (``tests.integration.red_team``); no Kafka."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from services.analytics.sink import AttributionSink
from services.api import create_app
from services.bootstrap import Container
from services.db.migrate import upgrade
from services.db.models import Contact, EngagementEvent
from services.db.models_journeys import JourneyRun
from tests.integration.analytics.conftest import event
from tests.integration.journeys.helpers import (
    SECRET,
    T0,
    Clock,
    add_contacts,
    add_template,
    make_container,
)
from tests.integration.red_team import STAFF, client, container, journey  # noqa: F401 (fixtures)
from tests.integration.test_red_team_round2 import analyst_token

SECRET_ID = "fam-sentinel-round3"


# --- Audiences: the analyst sees counts, never people ---------------------------------------


def test_an_analyst_reads_no_external_ids_nor_a_small_count_of_an_audience(
    client: TestClient,  # noqa: F811
    container: Container,  # noqa: F811
):
    """``GET /api/v1/audiences/{id}`` is in the outreach area, so an analyst may read it:
    it answers the live count exactly (here 2) and a "sample of ten" *external ids*, the
    ids the network knows its families by. The analyst is the role that sees "counts,
    never a person's details", with counts of 1 to 10 withheld; a saved audience whose
    filter is ``external_id`` names one person and says whether she still consents."""
    add_contacts(container, [SECRET_ID, "fam-other"])
    made = client.post("/api/v1/audiences", json={"name": "everyone", "rule": {}}, headers=STAFF)
    assert made.status_code == 201, made.text
    seen = client.get(f"/api/v1/audiences/{made.json()['id']}", headers=analyst_token(client))
    assert seen.status_code in (200, 403), seen.text
    assert SECRET_ID not in seen.text
    if seen.status_code == 200:
        assert seen.json().get("people") is None  # 2 people: withheld


# --- Journeys: statistics for the analyst ------------------------------------------------


def test_journey_statistics_withhold_small_counts_from_an_analyst(
    client: TestClient,  # noqa: F811
    container: Container,  # noqa: F811
):
    """Journeys' statistics are counts of people (triggered, acted, held out...). The
    lift routes and campaigns withhold counts of 1 to 10 for the analyst;
    ``GET /api/v1/journeys`` and ``/journeys/{id}`` (and PUT, on, off) answer them
    exactly to every role: 3 people triggered, shown to the analyst."""
    made = client.post("/api/v1/journeys", json=journey("P1D", add_template(container)),
                       headers=STAFF)  # fmt: skip
    assert made.status_code == 201, made.text
    jid = made.json()["id"]
    with container.sessions() as session, session.begin():
        session.add_all(
            JourneyRun(journey_id=jid, person=f"p{i}", trigger_event_id=f"e{i}",
                       triggered_at=T0, due_at=T0 + timedelta(days=1))
            for i in range(3)
        )  # fmt: skip
    analyst = analyst_token(client)
    one = client.get(f"/api/v1/journeys/{jid}", headers=analyst)
    listed = client.get("/api/v1/journeys", headers=analyst)
    assert one.status_code == listed.status_code == 200, one.text
    assert one.json()["stats"]["triggered"] != 3
    assert listed.json()[0]["stats"]["triggered"] != 3


# --- Content tests: an inline subject is a template too ------------------------------------


def test_a_content_test_subject_that_does_not_render_is_refused(
    client: TestClient,  # noqa: F811
    container: Container,  # noqa: F811
):
    """``POST /api/v1/templates`` refuses a subject that does not render in the sending
    sandbox (422, "template does not render"). A content test's inline ``subject`` is
    rendered by the same sandbox for every recipient of its variant, yet
    ``content_test_for`` never checks it: a campaign whose variant B is ``{% if %}`` is
    saved (201) and its variant fails for every person at send time."""
    test = {"variants": [{"subject": "Tips"}, {"subject": "{% if %}"}], "test_share": 0.5,
            "metric": "open", "decide_at": (T0 + timedelta(days=2)).isoformat()}  # fmt: skip
    body = {"name": "school", "channel": "email", "template_id": add_template(container),
            "content_test": test}  # fmt: skip
    r = client.post("/api/v1/campaigns", json=body, headers=STAFF)
    assert r.status_code == 422, r.text


# --- Erasure: erase, re-import, erase again ---------------------------------------------------


def test_a_second_erasure_of_a_reimported_person_maps_her_late_events(tmp_path: Path):
    """The pseudonym is a keyed hash of the external id, so a family erased and then
    imported again (same id) gets the same pseudonym. Erasing her again stores the map
    ``old -> new`` with ``insert_ignore``: the first erasure's row stays, with the first
    erasure's time. A late event from between the two erasures is then "after the
    erasure" by that row and is stored under the erased person's own pseudonym again: a
    new person with the keyed hash that ties her to the next re-import."""
    url = f"sqlite:///{tmp_path / 'red.db'}"
    upgrade(url)
    clock = Clock()
    c = make_container(url, tmp_path, clock, erasure_inflight_days=7)
    family = [{"external_id": SECRET_ID, "email": "round3@family.example",
               "consent": {"email": "confirmed"}}]  # fmt: skip
    try:
        with TestClient(create_app(c), raise_server_exceptions=False) as client:  # noqa: F811
            assert client.post("/api/v1/contacts", json=family, headers=STAFF).status_code == 200
            with c.sessions() as s:
                old = s.scalar(select(Contact.pseudonym).filter_by(external_id=SECRET_ID))
            assert client.delete(f"/api/v1/contacts/{SECRET_ID}", headers=STAFF).status_code == 200
            clock.at = T0 + timedelta(days=1)  # imported again the next day
            assert client.post("/api/v1/contacts", json=family, headers=STAFF).status_code == 200
            clock.at = T0 + timedelta(days=2)
            assert client.delete(f"/api/v1/contacts/{SECRET_ID}", headers=STAFF).status_code == 200
        late = T0 + timedelta(days=1, hours=12)  # before the second erasure, stored after it
        AttributionSink(c.sessions, secret=SECRET.encode()).write(
            [event("late-r3", "resource.view", late, old)], []
        )
        with c.sessions() as s:
            stored = s.scalar(select(EngagementEvent.person).filter_by(event_id="late-r3"))
        assert stored not in (None, old)
    finally:
        c.close()
