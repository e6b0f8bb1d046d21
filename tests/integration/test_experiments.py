"""Holdouts and lift through the API on SQL (SQLite and PostgreSQL), no Kafka: a campaign
with a 20% holdout is sent by the dispatcher (controls get no message and are stored
with their arm and time), engagement lands through the stream sink, and
``GET /api/v1/campaigns/{id}/lift`` answers as assigned; a journey's controls are
recorded ``held_out`` with no follow-up; social campaigns cannot have a holdout."""

from __future__ import annotations

from collections import Counter

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.analytics.sink import AttributionSink
from services.api import create_app
from services.campaigns.dispatch import Dispatcher, make_sender
from services.db.migrate import upgrade
from services.db.models import Send
from services.db.models_experiments import HoldoutAssignment
from services.domain.holdouts import NOT_RANDOMIZABLE
from tests.integration.journeys.helpers import (
    DAY,
    T0,
    TOKEN,
    Clock,
    add_contacts,
    add_template,
    make_container,
    person,
    record,
)

AUTH = {"Authorization": f"Bearer {TOKEN}"}
PEOPLE = 200


def test_a_campaign_holdout_is_assigned_at_send_time_and_its_lift_is_reported(
    database_url, tmp_path
):
    upgrade(database_url)
    clock = Clock(T0)
    c = make_container(database_url, tmp_path, clock)
    refs = [f"fam-{i}" for i in range(PEOPLE)]
    add_contacts(c, refs)
    add_contacts(c, ["no-consent"], consent="none")
    template = add_template(c)
    client = TestClient(create_app(c), headers=AUTH)
    body = {"name": "tips", "channel": "email", "template_id": template,
            "holdout": {"share": 0.2, "window_days": 30}}  # fmt: skip
    created = client.post("/api/v1/campaigns", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["holdout"] == {"share": 0.2, "window_days": 30}
    cid = created.json()["id"]
    assert client.get(f"/api/v1/campaigns/{cid}").json()["holdout"]["share"] == 0.2
    assert client.post(f"/api/v1/campaigns/{cid}/schedule", json={}).status_code == 200
    sent = Dispatcher(c, make_sender(c)).dispatch_due(T0)

    with c.sessions() as s:
        arms = dict(s.execute(select(HoldoutAssignment.person, HoldoutAssignment.arm)).all())
        statuses = Counter(s.scalars(select(Send.status).where(Send.campaign_id == cid)))
    controls = {p for p, arm in arms.items() if arm == "control"}
    assert len(arms) == PEOPLE and person("no-consent") not in arms  # eligible only
    # Controls are Binomial(200, 0.2) (the campaign's id is new in each run): 11 to 80
    # fails about once in a billion runs; 20 to 60 failed once in 3,000.
    assert 11 <= len(controls) <= 80 and sent == PEOPLE - len(controls)
    assert statuses["held_out"] == len(controls) and statuses["sent"] == sent

    # Every treated person uses a resource on day 2; no control does. One control uses
    # on day 40: outside the 30-day window, it does not count.
    treated = sorted(set(arms) - controls)
    events = [record(f"u-{p}", p, T0 + 2 * DAY, "resource.use") for p in treated]
    events.append(record("late", sorted(controls)[0], T0 + 40 * DAY, "resource.use"))
    AttributionSink(c.sessions).write(events, [])

    clock.at = T0 + 10 * DAY
    lift = client.get(f"/api/v1/campaigns/{cid}/lift").json()
    assert lift["share"] == 0.2 and lift["window_days"] == 30 and lift["complete"] is False
    assert lift["arms"]["treatment"] == {"people": sent, "aware": sent, "use": sent, "produce": 0}
    assert lift["arms"]["control"] == {"people": len(controls), "aware": 0, "use": 0,
                                       "produce": 0}  # fmt: skip
    use = next(row for row in lift["stages"] if row["stage"] == "use")
    assert use["difference"] == 1.0 and use["ci95"][0] > 0.5 and use["p_holm"] < 0.001
    assert use["incremental_people"] == sent
    # A sound draw: not "flag is False", which a sound draw raises once in 1,000 runs.
    srm = lift["srm"]
    assert srm["expected_share"] == 0.2 and srm["flag"] == (srm["p_value"] < 0.001)
    assert srm["p_value"] > 1e-7

    clock.at = T0 + 31 * DAY
    assert client.get(f"/api/v1/campaigns/{cid}/lift").json()["complete"] is True
    _report_lift(c.settings, cid, use, tmp_path)
    c.engine.dispose()


def _report_lift(settings, cid, use, tmp_path) -> None:
    """``winwin report lift`` renders the same numbers (CSV, table, PNG)."""
    import csv
    import io

    from services.cli import build_parser
    from services.experiments.report import run_lift_report

    def report(*extra):
        args = build_parser().parse_args(["report", "lift", "--campaign", cid, *extra])
        assert run_lift_report(settings, args) == 0

    out = tmp_path / "lift.csv"
    report("--format", "csv", "--out", str(out))
    rows = {r["stage"]: r for r in csv.DictReader(io.StringIO(out.read_text()))}
    assert float(rows["use"]["ci95_low"]) == pytest.approx(use["ci95"][0])
    report("--format", "table", "--out", str(tmp_path / "lift.txt"))
    assert "20% held out, 30-day window" in (tmp_path / "lift.txt").read_text()
    report("--format", "png", "--out", str(tmp_path / "lift.png"))
    assert (tmp_path / "lift.png").read_bytes()[:4] == b"\x89PNG"


def test_holdouts_only_where_people_can_be_randomized(database_url, tmp_path):
    upgrade(database_url)
    c = make_container(database_url, tmp_path, Clock(T0))
    client = TestClient(create_app(c), headers=AUTH)
    tpl = client.post("/api/v1/templates", json={"name": "s", "channel": "social", "text": "Hi"})
    body = {"name": "post", "channel": "social", "template_id": tpl.json()["id"],
            "holdout": {"share": 0.2}}  # fmt: skip
    refused = client.post("/api/v1/campaigns", json=body)
    assert refused.status_code == 422 and "cannot be randomized per person" in refused.text
    assert NOT_RANDOMIZABLE in refused.json()["detail"]
    email = {"name": "e", "channel": "email", "template_id": add_template(c),
             "holdout": {"share": 0.7}}  # fmt: skip
    assert client.post("/api/v1/campaigns", json=email).status_code == 422  # share > 0.5
    no_holdout = client.post("/api/v1/campaigns", json=email | {"holdout": None}).json()
    assert client.get(f"/api/v1/campaigns/{no_holdout['id']}/lift").status_code == 404
    c.engine.dispose()


def test_the_global_holdout_keeps_its_share_out_of_every_campaign(database_url, tmp_path):
    upgrade(database_url)
    c = make_container(database_url, tmp_path, Clock(T0), global_holdout_share=0.3)
    add_contacts(c, [f"fam-{i}" for i in range(100)])
    template = add_template(c)
    client = TestClient(create_app(c), headers=AUTH)
    body = {"name": "no holdout of its own", "channel": "email", "template_id": template}
    cids = [client.post("/api/v1/campaigns", json=body).json()["id"] for _ in range(2)]
    for cid in cids:
        assert client.post(f"/api/v1/campaigns/{cid}/schedule", json={}).status_code == 200
    Dispatcher(c, make_sender(c)).dispatch_due(T0)
    with c.sessions() as s:
        kept = set(s.scalars(select(HoldoutAssignment.person).where(
            HoldoutAssignment.kind == "global")))  # fmt: skip
        held = {cid: set(s.scalars(select(Send.person).where(
            Send.campaign_id == cid, Send.status == "held_out"))) for cid in cids}  # fmt: skip
    assert 10 < len(kept) < 50
    assert held[cids[0]] == held[cids[1]] == kept  # the same people, out of both
    c.engine.dispose()
