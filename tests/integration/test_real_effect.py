"""Issue 17, "Done when: real effect", through the whole system on real Kafka: 5,000
eligible people, a campaign with a 20% holdout sent through the API and the dispatcher
(local outbox), use events posted through ``POST /api/v1/events`` (batches of 1,000)
and counted by the real stream worker; ``GET /api/v1/campaigns/{id}/lift`` then gives a
use interval that covers the true lift (0.04) and excludes 0.

The network is simulated with its true rates realised exactly: 14% of the treated and
10% of the controls use a resource, the people chosen by a seeded shuffle (SEED = 17).
The campaign's id, hence its arms, differs each run; with the rates realised exactly the
interval (half-width about 0.02) holds for every draw of the arms, so the test cannot
flake. How often the interval covers the truth over random samples is the estimator's
property, tested in tests/unit/analytics/test_stats.py."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from services.campaigns.dispatch import Dispatcher, make_sender
from services.db.models import Contact, EngagementEvent
from services.db.models_experiments import HoldoutAssignment
from tests.stack import Stack, email_campaign, wait_for

PEOPLE, SEED = 5000, 17
RATES = {"treatment": 0.14, "control": 0.10}


@pytest.fixture
def stack(kafka_bootstrap, database_url, tmp_path):
    s = Stack(kafka_bootstrap, database_url, tmp_path)
    yield s
    s.close()


def test_a_true_lift_in_use_is_found_through_the_whole_system(stack: Stack):
    stack.start_relay()
    stack.start_worker()
    with stack.client() as client:
        contacts = [{"external_id": f"fam-{i}", "email": f"fam{i}@example.net",
                     "consent": {"email": "confirmed"}} for i in range(PEOPLE)]  # fmt: skip
        for start in range(0, PEOPLE, 1000):
            assert client.post("/api/v1/contacts", json=contacts[start : start + 1000]).is_success
        cid = email_campaign(client, {"subject": "Tips", "text": "Hi"}, name="tips",
                             holdout={"share": 0.2, "window_days": 30})  # fmt: skip
        assert client.post(f"/api/v1/campaigns/{cid}/schedule", json={}).is_success
        container = client.app.state.container
        Dispatcher(container, make_sender(container)).dispatch_due(datetime.now(UTC))

        events = _use_events(stack)
        for start in range(0, len(events), 1000):
            r = client.post("/api/v1/events", json=events[start : start + 1000])
            assert r.status_code == 202 and r.json()["accepted"] == len(events[start:][:1000])
        wait_for(lambda: stack.count(EngagementEvent) == len(events), 60, 0.5, "events counted")
        lift = client.get(f"/api/v1/campaigns/{cid}/lift").json()

    arms = lift["arms"]
    assert arms["treatment"]["people"] + arms["control"]["people"] == PEOPLE
    # A sound draw: not "flag is False", which a sound draw raises once in 1,000 runs.
    assert lift["srm"]["p_value"] > 1e-7
    use = next(row for row in lift["stages"] if row["stage"] == "use")
    low, high = use["ci95"]
    assert low < 0.04 < high, use
    assert low > 0, use


def _use_events(stack: Stack) -> list[dict[str, object]]:
    """Per arm, exactly its rate of people (a seeded choice) use a resource, now."""
    with stack.sessions() as s:
        rows = s.execute(
            select(Contact.external_id, HoldoutAssignment.arm)
            .join(HoldoutAssignment, HoldoutAssignment.person == Contact.pseudonym)
            .where(HoldoutAssignment.kind == "campaign")
        ).all()
    rng = random.Random(SEED)
    users: list[str] = []
    for arm, rate in RATES.items():
        members = sorted(ref for ref, a in rows if a == arm)
        rng.shuffle(members)
        users += members[: round(rate * len(members))]
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return [{"event_id": f"use-{ref}", "type": "resource.use", "occurred_at": at,
             "person_ref": ref} for ref in sorted(users)]  # fmt: skip
