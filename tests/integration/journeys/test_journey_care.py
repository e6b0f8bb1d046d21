"""Journeys honour the duty of care like campaigns do (issue 18, part 3), on SQLite and
PostgreSQL, no Kafka: ages are taken on the network's calendar (``WINWIN_TIMEZONE``), a
"monthly digest only" person gets no journey message, and a person who turned off a
journey's topic is not reached by it. The live runner and the simulation agree."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi.testclient import TestClient

from services.analytics.sink import AttributionSink
from services.api import create_app
from services.db.migrate import upgrade
from services.journeys.runner import run_due_journeys
from services.journeys.stream import JourneyTriggers
from tests.integration.journeys.helpers import (
    TOKEN,
    Clock,
    add_contacts,
    add_resource,
    add_template,
    make_container,
    person,
    record,
)

# 03:00 UTC on 5 March is still 4 March (22:00) in New York: a child born on 5 March
# 2011 is 13 by UTC's calendar but 12 on the network's.
NOW = datetime(2024, 3, 5, 3, 0, tzinfo=UTC)
ZONE = "America/New_York"
DIET = {
    "name": "diet follow-up",
    "trigger": {"types": ["resource.view"], "topic": "diet"},
    "delay": "PT1H",
    "action": {"channel": "email", "template_id": "tpl-invite"},
}
BY_RESOURCE = DIET | {"name": "by resource", "trigger": {"resource_id": "diet-tips"}}


def test_journeys_take_ages_on_the_networks_calendar_and_honour_preferences(database_url, tmp_path):
    upgrade(database_url)
    clock = Clock(NOW - timedelta(hours=2))
    c = make_container(database_url, tmp_path, clock, timezone=ZONE)
    consented = datetime(2024, 3, 5, 2, 0, tzinfo=UTC)  # the child's own, 5 March in UTC
    add_contacts(c, ["plain"])
    add_contacts(c, ["kid"], birth_date=date(2011, 3, 5), email_consent_at=consented)
    add_contacts(c, ["digest"], frequency="monthly_digest")
    add_contacts(c, ["no-diet"], topics_off=["Diet"])
    add_resource(c, "diet-tips", ["diet"])
    add_template(c)
    refs = ["plain", "kid", "digest", "no-diet"]
    try:
        with TestClient(create_app(c), headers={"Authorization": f"Bearer {TOKEN}"}) as api:
            ids = [
                api.post("/api/v1/journeys", json=body).json()["id"] for body in (DIET, BY_RESOURCE)
            ]
            events = [record(f"v-{r}", person(r), clock.at, resource_id="diet-tips") for r in refs]
            AttributionSink(c.sessions).write(events, [])
            JourneyTriggers(c.sessions, ttl=0).on_batch(events)
            clock.at = NOW
            run_due_journeys(c, NOW, deliver=False)
            for jid in ids:
                stats = api.get(f"/api/v1/journeys/{jid}").json()["stats"]
                assert (stats["acted"], stats["skipped_consent"]) == (1, 3), stats
                simulated = api.post(
                    f"/api/v1/journeys/{jid}/simulate",
                    json={"from": "2024-03-01", "to": "2024-03-05"},
                ).json()
                assert (simulated["acted"], simulated["skipped_consent"]) == (1, 3), simulated
    finally:
        c.close()
