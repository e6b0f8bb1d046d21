"""NaN and Infinity in a JSON body are refused on every route, naming where (one place:
services/json_bodies.py; the events' own parser: services/domain/inputs.parse_json).
In process on SQLite (``tests.integration.red_team``); no Kafka."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from services.bootstrap import Container
from services.db.models import Contact
from tests.integration.red_team import STAFF, client, container  # noqa: F401 (fixtures)

JSON = STAFF | {"Content-Type": "application/json"}
EVENT = '{"event_id": "e1", "type": "page.view", "person_ref": "p", "occurred_at": "2024-03-01T00:00:00Z"'


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/templates/preview", '{"text": "hi", "context": {"n": NaN}}', "context.n"),
        ("/api/v1/journeys", '{"name": "j", "delay": Infinity}', "delay"),
        ("/api/v1/identify", "[-Infinity]", "0"),
        (
            "/api/v1/audiences/count",
            '{"rule": {"filter": {"attr": "a", "gt": NaN}}}',
            "rule.filter.gt",
        ),
    ],
)
def test_nan_and_infinity_are_refused_on_every_route_naming_where(
    client: TestClient,  # noqa: F811
    path: str,
    body: str,
    field: str,
):
    r = client.post(path, content=body, headers=JSON)
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["field"] == field
    assert error["error"].endswith("is not a number JSON allows")


def test_an_event_batch_with_nan_is_refused_whole_naming_the_event(
    client: TestClient,  # noqa: F811
):
    body = f'[{EVENT}}}, {EVENT.replace("e1", "e2")}, "properties": {{"score": NaN}}}}]'
    r = client.post("/api/v1/events", content=body, headers=JSON)
    assert r.status_code == 422, r.text
    assert "NaN is not a number JSON allows, at 1.properties.score" in r.json()["detail"]


def test_a_number_beyond_a_float_is_refused_naming_where(client: TestClient):  # noqa: F811
    """``1e400`` is valid JSON that ``json.loads`` makes ``inf``: refused like Infinity."""
    body = '{"text": "hi", "context": {"n": [1.5, -2e999]}}'
    r = client.post("/api/v1/templates/preview", content=body, headers=JSON)
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == [
        {"field": "context.n.1", "error": "-2e999 is too large for a number (beyond about 1.8e308)"}
    ]


def _contact(attributes: str) -> str:
    return f'[{{"external_id": "fam-1", "attributes": {attributes}}}]'


def test_contact_attributes_nest_32_levels_like_event_properties(
    client: TestClient,  # noqa: F811
):
    deepest = '{"a": %s}' % ("[" * 31 + "]" * 31)  # the object is level 1
    assert client.post("/api/v1/contacts", content=_contact(deepest), headers=JSON).is_success
    too_deep = '{"a": %s}' % ("[" * 32 + "]" * 32)
    r = client.post("/api/v1/contacts", content=_contact(too_deep), headers=JSON)
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error == {"field": "0.attributes", "error": "Value error, nested deeper than 32 levels"}


def test_a_contact_stored_with_deeper_attributes_before_the_cap_can_still_be_read(
    client: TestClient,  # noqa: F811
    container: Container,  # noqa: F811
):
    """Attributes stored 300 deep before the cap: pydantic cannot serialise them (~255), so
    the contact list, the contact and its export answered 500. The deep value reads as its
    JSON text; the others as they are."""
    client.post("/api/v1/contacts", content=_contact('{"b": 1}'), headers=JSON)
    deep = json.loads("[" * 300 + "]" * 300)
    with container.sessions() as session, session.begin():
        session.execute(update(Contact).values(attributes={"a": deep, "b": 1}))
    shown = {"a": "[" * 300 + "]" * 300, "b": 1}
    [listed] = client.get("/api/v1/contacts", headers=STAFF).json()
    assert listed["attributes"] == shown
    one = client.get("/api/v1/contacts/fam-1", headers=STAFF)
    assert one.json()["attributes"] == shown
    export = client.get("/api/v1/contacts/fam-1/export", headers=STAFF)
    assert export.json()["contact"]["attributes"] == shown
