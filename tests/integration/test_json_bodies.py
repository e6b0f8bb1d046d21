"""NaN and Infinity in a JSON body are refused on every route, naming where (one place:
services/json_bodies.py; the events' own parser: services/domain/inputs.parse_json).
In process on SQLite (``tests.integration.red_team``); no Kafka."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

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
