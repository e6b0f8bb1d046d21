"""The "Did it work?" figures over HTTP on SQL (SQLite and PostgreSQL), no Kafka: every
experiment with its lift (``GET /api/v1/experiments``), the global holdout's monthly
report (``GET /api/v1/experiments/global``), the CSV of all of it (formula-neutralised,
small counts withheld), the forest plot, and an analyst's lift with small cells withheld."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient
from sqlalchemy import select

from services.analytics.charts import RuleSet
from services.analytics.sink import AttributionSink
from services.api import create_app
from services.campaigns.dispatch import Dispatcher, make_sender
from services.db.migrate import upgrade
from services.db.models_experiments import HoldoutAssignment
from services.experiments.board import run_chart_data
from services.experiments.routes import board_for
from tests.integration.journeys.helpers import (
    DAY,
    T0,
    TOKEN,
    Clock,
    add_contacts,
    add_template,
    make_container,
    record,
)

AUTH = {"Authorization": f"Bearer {TOKEN}"}
NAME = "=1+1 tips"  # a name a spreadsheet would run as a formula


def test_experiments_the_global_holdout_and_their_csv(database_url, tmp_path):
    upgrade(database_url)
    clock = Clock(T0)
    c = make_container(database_url, tmp_path, clock, global_holdout_share=0.1)
    add_contacts(c, [f"fam-{i}" for i in range(300)])
    add_contacts(c, ["no-consent"], consent="unsubscribed")
    client = TestClient(create_app(c), headers=AUTH)
    body = {"name": NAME, "channel": "email", "template_id": add_template(c),
            "holdout": {"share": 0.2, "window_days": 30}}  # fmt: skip
    cid = client.post("/api/v1/campaigns", json=body).json()["id"]
    assert client.post(f"/api/v1/campaigns/{cid}/schedule", json={}).status_code == 200
    Dispatcher(c, make_sender(c)).dispatch_due(T0)
    with c.sessions() as s:
        arms = {(kind, arm): set() for kind in ("global", "campaign") for arm in ("control",
                                                                              "treatment")}  # fmt: skip
        for kind, person, arm in s.execute(select(HoldoutAssignment.kind, HoldoutAssignment.person,
                                                  HoldoutAssignment.arm)):  # fmt: skip
            arms[(kind, arm)].add(person)
    treated, controls = arms[("campaign", "treatment")], arms[("campaign", "control")]
    held_globally = arms[("global", "control")]
    # Every treated person uses a resource on day 2 (March); three controls do too.
    events = [record(f"u-{p}", p, T0 + 2 * DAY, "resource.use") for p in sorted(treated)]
    events += [record(f"c-{p}", p, T0 + 3 * DAY, "resource.use") for p in sorted(controls)[:3]]
    AttributionSink(c.sessions).write(events, [])
    clock.at = T0 + 40 * DAY  # April

    listed = client.get("/api/v1/experiments").json()
    assert listed["disclosure"]["exact"] is True
    [exp] = listed["experiments"]
    assert (exp["kind"], exp["id"], exp["name"]) == ("campaign", cid, NAME)
    assert exp | {"kind": None} == client.get(f"/api/v1/campaigns/{cid}/lift").json() | {
        "kind": None, "id": cid, "name": NAME}  # fmt: skip
    assert exp["arms"]["control"]["use"] == 3

    report = client.get("/api/v1/experiments/global?from=2024-03&to=2024-04").json()
    assert report["share"] == 0.1 and [m["month"] for m in report["months"]] == ["2024-03",
                                                                                  "2024-04"]  # fmt: skip
    for month in report["months"]:  # cumulative: April counts March's converters
        assert month["arms"]["control"] == {"people": len(held_globally), "aware": 0, "use": 0,
                                            "produce": 0}  # fmt: skip
        assert month["arms"]["treatment"]["people"] == 300 - len(held_globally)
        assert month["arms"]["treatment"]["use"] == len(treated) + 3
        use = next(r for r in month["stages"] if r["stage"] == "use")
        assert use["difference"] > 0 and use["ci95"][0] > 0
    assert client.get("/api/v1/experiments/global?from=2024-05&to=2024-04").status_code == 422

    text = client.get("/api/v1/experiments/export.csv?from=2024-03&to=2024-04").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["section"] for r in rows} >= {"experiment", "global holdout", "p-chart",
                                            "run chart"}  # fmt: skip
    mine = [r for r in rows if r["section"] == "experiment"]
    assert {r["subject"] for r in mine} == {"'campaign " + NAME} or {
        r["subject"] for r in mine} == {"campaign " + NAME}  # fmt: skip
    assert "\n=" not in text and ",=" not in text  # nothing a spreadsheet would run
    use_row = next(r for r in mine if r["stage"] == "use")
    assert use_row["people_control"] == str(len(controls)) and use_row["difference"] == ""
    png = client.get("/api/v1/experiments/forest.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    c.engine.dispose()


def test_an_analyst_gets_small_cells_of_a_lift_withheld(database_url, tmp_path):
    upgrade(database_url)
    c = make_container(database_url, tmp_path, Clock(T0))
    add_contacts(c, [f"fam-{i}" for i in range(120)])
    client = TestClient(create_app(c), headers=AUTH)
    body = {"name": "tips", "channel": "email", "template_id": add_template(c),
            "holdout": {"share": 0.2}}  # fmt: skip
    cid = client.post("/api/v1/campaigns", json=body).json()["id"]
    client.post(f"/api/v1/campaigns/{cid}/schedule", json={})
    Dispatcher(c, make_sender(c)).dispatch_due(T0)
    with c.sessions() as s:
        controls = sorted(s.scalars(select(HoldoutAssignment.person).where(
            HoldoutAssignment.arm == "control")))  # fmt: skip
    AttributionSink(c.sessions).write(
        [record(f"c-{p}", p, T0 + DAY, "resource.use") for p in controls[:4]], []
    )
    analyst = client.post("/api/v1/tokens", json={"name": "a", "role": "analyst"}).json()
    as_analyst = {"Authorization": f"Bearer {analyst['token']}"}
    exact = client.get(f"/api/v1/campaigns/{cid}/lift").json()
    assert exact["arms"]["control"]["use"] == 4
    for path in (f"/api/v1/campaigns/{cid}/lift", "/api/v1/experiments"):
        shared = client.get(path, headers=as_analyst).json()
        lift = shared["experiments"][0] if "experiments" in shared else shared
        assert lift["arms"]["control"]["use"] is None
        assert "use" in lift["arms"]["control"]["suppressed"]
        use = next(r for r in lift["stages"] if r["stage"] == "use")
        assert use["rate_control"] is None and use["ci95"] is None and use["difference"] is None
        assert str(exact["arms"]["control"]["use"]) not in str(use)
    c.engine.dispose()


def test_the_p_charts_and_the_run_chart_as_pictures(database_url, tmp_path):
    upgrade(database_url)
    c = make_container(database_url, tmp_path, Clock(T0 + 40 * DAY))  # April
    events = [record(f"v-{i}", f"p-{i}", T0 + DAY, "page.view") for i in range(30)]
    events += [record(f"u-{i}", f"p-{i}", T0 + DAY, "resource.use") for i in range(4)]
    AttributionSink(c.sessions).write(events, [])
    client = TestClient(create_app(c), headers=AUTH)
    analyst = client.post("/api/v1/tokens", json={"name": "a", "role": "analyst"}).json()
    months = "from=2024-02&to=2024-04"
    for who in (AUTH, {"Authorization": f"Bearer {analyst['token']}"}):
        for path in ("p-charts.png", "run-chart.png", "run-chart.png?rules=anhoej&stage=use&"):
            sep = "" if path.endswith("&") else "?"
            png = client.get(f"/api/v1/experiments/{path}{sep}{months}", headers=who)
            assert png.status_code == 200 and png.headers["content-type"] == "image/png"
            assert png.content[:8] == b"\x89PNG\r\n\x1a\n" and len(png.content) > 1000
    for bad in ("rules=nope", "stage=nope", "from=2024-13"):
        assert client.get(f"/api/v1/experiments/run-chart.png?{bad}").status_code == 422
    assert client.get("/api/v1/experiments/p-charts.png?from=2024-05&to=2024-04").status_code == 422

    def use_counts(min_cell):
        board = board_for(c, "2024-02", "2024-04", RuleSet.IHI, min_cell)
        return run_chart_data(board["stages"], "use"), board["stages"]["p_charts"]

    exact, _ = use_counts(0)
    assert [r["use"] for r in exact["rows"]] == [0, 4, 0] and exact["median"] == {"use": 0}
    shared, p_charts = use_counts(c.settings.min_cell)
    assert [r["use"] for r in shared["rows"]] == [0, None, 0]  # a gap, not the 4
    assert shared["disclosure"] == {"exact": False, "min_cell": c.settings.min_cell}
    assert not any(0 < (r["use"] or 0) < c.settings.min_cell for r in shared["rows"])
    assert p_charts["use_of_aware"]["points"][1]["p"] is None  # 4 of March's 30: a gap
    for point in [p for chart in p_charts.values() for p in chart["points"]]:
        if point["denominator"] is None:  # its limits would give it back: not drawn
            assert point["lower"] is None and point["upper"] is None
    c.engine.dispose()
