"""Recommendations on a small catalogue with known topics and histories."""

from __future__ import annotations

from fastapi.testclient import TestClient

from services.analytics.sink import AttributionSink
from services.api import create_app
from services.db.migrate import upgrade
from services.journeys.needs import recommended_for
from tests.integration.journeys.helpers import (
    DAY,
    T0,
    TOKEN,
    Clock,
    add_contacts,
    add_resource,
    make_container,
    person,
    record,
)

CATALOGUE = {
    "starter": ["newly-diagnosed"],
    "diet-tips": ["diet"],
    "diet-school": ["diet", "school"],
    "school-plan": ["school"],
    "teen-talk": ["transition", "mental-health"],
    "calm": ["mental-health"],
}


def test_recommendations_from_needs_and_history(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade(url)
    c = make_container(url, tmp_path, Clock(T0 + 10 * DAY))
    for rid, topics in CATALOGUE.items():
        add_resource(c, rid, topics, title=rid.replace("-", " ").title())
    add_contacts(c, ["new-family"], needs=["newly-diagnosed", "diet"])
    add_contacts(c, ["diet-reader"], needs=[])
    add_contacts(c, ["teen-parent"], needs=["transition"])
    add_contacts(c, ["nobody"], needs=[])
    reader, teen = person("diet-reader"), person("teen-parent")
    AttributionSink(c.sessions).write(
        [
            record("d1", reader, T0, "resource.view", resource_id="diet-tips"),
            record("d2", reader, T0 + DAY, "resource.download", resource_id="diet-tips"),
            record("d3", reader, T0 + DAY, "link.click", resource_id="school-plan"),  # aware only
            record("t1", teen, T0, "resource.use", resource_id="teen-talk"),
            record("b1", teen, T0, "resource.view", resource_id="calm", bot=True),  # a bot's view
        ],
        [],
    )
    with TestClient(create_app(c), headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        get = lambda ext, **p: client.get(f"/api/v1/contacts/{ext}/recommendations", params=p)  # noqa: E731
        new = get("new-family").json()
        assert [r["resource_id"] for r in new] == [
            "diet-school",
            "diet-tips",
            "starter",
        ]  # 3 each: by title
        assert new[2] == {
            "resource_id": "starter",
            "title": "Starter",
            "score": 3.0,
            "reason": "matches newly-diagnosed (a stated need)",
        }
        assert [r["resource_id"] for r in get("new-family", limit=1).json()] == ["diet-school"]

        reading = get(
            "diet-reader"
        ).json()  # used diet tips: diet interest, tips themselves excluded
        assert [(r["resource_id"], r["score"]) for r in reading] == [("diet-school", 1.0)]
        assert reading[0]["reason"] == "matches diet (1 resource on it used)"

        teen_recs = get(
            "teen-parent"
        ).json()  # stated transition + used a transition/mental-health one
        assert [(r["resource_id"], r["score"]) for r in teen_recs] == [("calm", 1.0)]
        assert get("nobody").json() == []
        assert get("stranger").status_code == 404
        assert get("new-family", limit=0).status_code == 422
    with c.sessions() as s:
        found = recommended_for(s, [reader, teen, person("nobody")])
        assert [r.resource_id for r in found[reader]] == ["diet-school"] and found[
            person("nobody")
        ] == []
    c.close()
