"""Red team, round 4: hostile input against a running stack's HTTP surface (the kills of
round 4 are in tests/e2e/test_red_team_kills.py). Each test is one finding and fails on
the code it was found on. In process, on a fresh database (``tests.integration.red_team``
on SQLite; ``database_url`` where PostgreSQL answers differently); no Kafka."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.api import create_app
from services.db.migrate import upgrade
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


# --- JSON that is not JSON: NaN and Infinity ------------------------------------------------


@pytest.mark.parametrize("number", ["NaN", "Infinity"])
def test_a_contact_attribute_of_nan_or_infinity_is_refused_not_500_nor_changed(
    any_db_client: TestClient, number: str
):
    """RFC 8259 has no NaN nor Infinity, yet the body parser (Python's ``json.loads``)
    takes them and ``attributes: dict[str, Any]`` lets them through. On PostgreSQL the
    JSON column refuses the token: ``POST /api/v1/contacts`` answers 500. On SQLite the
    row is stored and read back as ``{"score": null}``: the API says 200 and keeps a
    value other than the one it was given. Either way it should be a 422 (or 400)
    naming the field, as ``POST /api/v1/events`` does for its ``properties``."""
    body = (
        '[{"external_id": "fam-nan", "email": "nan@family.example", "attributes": {"score": %s}}]'
    )
    r = any_db_client.post("/api/v1/contacts", content=body % number, headers=JSON)
    assert r.status_code in (400, 422), r.text


def test_an_audience_rule_comparing_with_nan_is_refused_not_saved_as_null(
    any_db_client: TestClient,
):
    """``{"attr": "score", "eq": NaN}`` parses (NaN is a float) and is saved; PostgreSQL
    answers 500, SQLite saves and shows the rule as ``"eq": null``, which the filter
    language itself refuses ("null matches nothing; use exists: false")."""
    body = '{"name": "nan", "rule": {"filter": {"attr": "score", "eq": NaN}}}'
    r = any_db_client.post("/api/v1/audiences", content=body, headers=JSON)
    assert r.status_code in (400, 422), r.text


# --- Sign-in limits: the counters of one API process --------------------------------------


def test_refused_sign_ins_do_not_grow_the_limiter_without_bound(
    client: TestClient,  # noqa: F811
):
    """The per-email limiter keeps at most ``max_keys`` emails (it forgets old ones when
    a new failure would pass the cap). But ``AttemptLimiter.wait`` runs ``setdefault``
    for every email asked about, and a client already over its 20 failures a minute is
    answered 429 after ``wait`` and before ``failed``: each such anonymous POST /login
    with a fresh email adds a key past the cap, and nothing ever removes it (only
    ``failed`` prunes). At a few thousand cheap 429s a second the API process grows by
    about a megabyte a second until it is killed."""
    limits = client.app.state.sign_in_limits  # type: ignore[attr-defined]
    limits.by_email.max_keys = 50
    for i in range(200):
        form = {"email": f"nobody{i}@attacker.example", "password": "x"}
        r = client.post("/login", data=form)
        assert r.status_code in (401, 429)
    assert r.status_code == 429
    assert len(limits.by_email._failures) <= limits.by_email.max_keys


# --- Events: the 4 KB of properties --------------------------------------------------------


def test_a_property_that_quotes_the_text_backslash_u0000_is_accepted(
    client: TestClient,  # noqa: F811
):
    """``check_event`` looks for NUL characters in the *serialised* properties
    (``"\\u0000" in text``). A NUL is serialised as ``\\u0000``, but so is the harmless
    six-character text ``\\u0000`` once its backslash is escaped (``\\\\u0000``): the
    network's site posting a search query or a code snippet that mentions it gets its
    event refused as "must not contain NUL characters", and the event is lost."""
    event = {"event_id": "r4-backslash", "type": "page.view", "person_ref": "fam-1",
             "occurred_at": "2024-03-01T00:00:00Z",
             "properties": {"query": "what does \\u0000 mean in JSON?"}}  # fmt: skip
    r = client.post("/api/v1/events", json=[event], headers=STAFF)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 1, r.text
