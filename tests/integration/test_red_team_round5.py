"""Red team, round 5: what landed last session (the credits layout of issue 19, group
commit for clicks, the watchdogs, the JSON body route). Each test is one finding and fails
on the code it was found on. In process, on a fresh database (``tests.integration.red_team``
on SQLite; ``database_url`` where PostgreSQL answers differently); no Kafka."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.analytics.sink import AttributionSink
from services.api import create_app
from services.bootstrap import Container
from services.db.migrate import upgrade
from services.db.models import Credit, EngagementEvent
from tests.integration.analytics.conftest import event, person
from tests.integration.journeys.helpers import Clock, make_container
from tests.integration.red_team import STAFF, client, container  # noqa: F401 (fixtures)

JSON = STAFF | {"Content-Type": "application/json"}


@pytest.fixture
def any_db_client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The API on a fresh SQLite and PostgreSQL database in turn."""
    upgrade(database_url)
    c = make_container(database_url, tmp_path, Clock())
    try:
        with TestClient(create_app(c), raise_server_exceptions=False) as api:
            yield api
    finally:
        c.close()


# --- JSON bodies: a number too large for a float is Infinity all the same ------------------


@pytest.mark.parametrize("number", ["1e400", "-1E999"])
def test_a_contact_attribute_too_large_for_a_float_is_refused_not_500_nor_null(
    any_db_client: TestClient, number: str
):
    """services/json_bodies.py refuses the literals ``NaN`` and ``Infinity`` (round 4), but
    ``json.loads`` turns a number beyond the float range (``1e400``, RFC 8259 valid JSON)
    into ``inf`` through ``parse_float``, not ``parse_constant``: it passes the check.
    ``POST /api/v1/contacts`` with ``{"score": 1e400}`` then answers 500 on PostgreSQL
    (its json column refuses ``Infinity``) and 200 on SQLite, where the contact reads
    back ``{"score": null}``, a value other than the one given."""
    body = (
        '[{"external_id": "fam-big", "email": "big@family.example", "attributes": {"score": %s}}]'
    )
    r = any_db_client.post("/api/v1/contacts", content=body % number, headers=JSON)
    assert r.status_code in (400, 422), r.text


def test_an_audience_rule_comparing_with_1e400_is_refused_not_saved(any_db_client: TestClient):
    """The same through an audience rule: 500 on PostgreSQL; saved on SQLite."""
    body = '{"name": "big", "rule": {"filter": {"attr": "score", "eq": 1e400}}}'
    r = any_db_client.post("/api/v1/audiences", content=body, headers=JSON)
    assert r.status_code in (400, 422), r.text


# --- JSON bodies: nesting that is stored but can never be read back ------------------------


def test_a_contact_with_deeply_nested_attributes_does_not_break_the_contact_list(
    client: TestClient,  # noqa: F811
):
    """An event's properties may nest 32 levels at most ("nested deeper than 32 levels"),
    a contact's attributes as deep as the body parser goes (~970). ``POST
    /api/v1/contacts`` stores ``{"a": [[[...300 deep...]]]}`` (200); pydantic's response
    serializer stops at depth ~255 ("Maximum serialization depth exceeded"), so from
    then on ``GET /api/v1/contacts`` answers 500 to every caller while that contact is on
    the page, and the contact's own ``GET`` and ``/export`` (the right of access) answer
    500 for good. One import line with a deep attribute takes the contact list down."""
    deep = "[" * 300 + "]" * 300
    body = '[{"external_id": "fam-deep", "email": "deep@family.example", "attributes": {"a": %s}}]'
    created = client.post("/api/v1/contacts", content=body % deep, headers=JSON)
    if created.status_code in (400, 413, 422):
        return  # refused at the door, like an event's properties: fine
    assert created.status_code == 200, created.text
    assert client.get("/api/v1/contacts", headers=STAFF).status_code == 200
    assert client.get("/api/v1/contacts/fam-deep", headers=STAFF).status_code == 200
    assert client.get("/api/v1/contacts/fam-deep/export", headers=STAFF).status_code == 200


# --- Credits: a stage-map change and the stream's cached map -------------------------------


def test_an_event_stored_just_after_a_stage_map_change_is_staged_with_the_new_map(
    client: TestClient,  # noqa: F811
    container: Container,  # noqa: F811
):
    """README: a stage-map change "is applied to stored events too (counts recomputed)",
    and ``PUT /api/v1/stage-map`` answers ``"done": true``. The stream's sink keeps the
    map it read for ``stage_map_ttl`` (2 s): an event it stores in those seconds (or in
    a batch whose transaction began before the PUT committed) is staged with the old map,
    and nothing ever looks at it again (recompute.apply_stage_map's docstring: "fixed by
    applying the map again"). Here ``page.view`` leaves the map; a page view the stream
    stores right after the answer still counts as "aware", with its credits, for good."""
    sink = AttributionSink(container.sessions)
    at = datetime(2024, 3, 1, tzinfo=UTC)
    sink.write([event("before", "page.view", at, person(1))], [])  # the sink reads the map
    new_map = {"aware": ["email.open", "link.click"], "use": ["resource.view"],
               "produce": ["story.shared"]}  # fmt: skip
    r = client.put("/api/v1/stage-map", json=new_map, headers=STAFF)
    assert r.status_code == 200 and r.json()["done"], r.text
    sink.write([event("after", "page.view", at + timedelta(hours=1), person(2))], [])
    with container.sessions() as s:
        stages = dict(s.execute(select(EngagementEvent.event_id, EngagementEvent.stage)).all())
        credited = set(s.scalars(select(Credit.event_id)))
    assert stages == {"before": None, "after": None}
    assert credited == set()


# --- Credits: every window a reader asks for is kept --------------------------------------


def test_a_read_only_analyst_cannot_grow_the_credits_table_without_bound(
    client: TestClient,  # noqa: F811
    container: Container,  # noqa: F811
):
    """Credits for a window other than the stream's are computed on its first read and
    kept for good (recompute.ensure_window; README: "Every other ``window_days`` that
    someone asks for adds a whole second set"). ``window_days`` may be 1 to 3650, and an
    ``analyst`` ("read only: every change is refused") may ask: each new value writes a
    full copy of the credits (~1.3 rows per stage event; 2.9 GB of database at 1M
    events). 40 reads with windows 1 to 40 leave 40 sets (the stream's 30 among them); 3650 would leave 3650. The
    kept windows should be bounded (or the values a reader may ask for)."""
    sink = AttributionSink(container.sessions)
    at = datetime(2024, 3, 1, tzinfo=UTC)
    sink.write([event(f"e{i}", "resource.view", at, person(i)) for i in range(5)], [])
    made = client.post("/api/v1/tokens", json={"name": "site", "role": "analyst"}, headers=STAFF)
    assert made.status_code == 201, made.text
    reader = {"Authorization": f"Bearer {made.json()['token']}"}
    for window in range(1, 41):
        r = client.get("/api/v1/attribution", params={"window_days": window}, headers=reader)
        assert r.status_code == 200, r.text
    with container.sessions() as s:
        kept = set(s.scalars(select(Credit.window_days).distinct()))
    assert len(kept) < 40, f"{len(kept)} windows of credits kept after an analyst's 40 reads"
