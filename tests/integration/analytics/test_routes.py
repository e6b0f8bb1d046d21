"""The analytics HTTP API through the real app (no Kafka: the lifespan is not started)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from services.analytics.sink import AttributionSink
from services.api import create_app
from services.bootstrap import bootstrap
from services.config import Settings
from tests.integration.analytics.conftest import event, person, touch

TOKEN = "analytics-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
AUG = datetime(2017, 8, 14, tzinfo=UTC)


@pytest.fixture
def client(db_url, sessions, tmp_path):
    AttributionSink(sessions).write(
        [
            event("a", "resource.view", AUG, person(1)),
            event("b", "story.shared", AUG.replace(month=9, day=5), person(1)),
            event("c", "email.open", AUG.replace(month=9), person(2)),
            event("d", "email.open", AUG.replace(day=20), person(3)),
        ],
        [
            touch("t1", AUG.replace(day=12), person(1), "c1"),
            touch("t2", AUG.replace(day=1), person(3), "c2"),
        ],  # fmt: skip
    )
    settings = Settings(
        database_url=db_url, api_token=TOKEN, secret_key="s" * 32, state_dir=tmp_path / "state"
    )
    container = bootstrap(settings)
    yield TestClient(create_app(container))
    container.engine.dispose()


def fields(response):
    assert response.status_code == 422, response.text
    return {d["field"].removeprefix("query.") for d in response.json()["detail"]}


@pytest.mark.parametrize("path", ["/api/v1/metrics/stages?from=2017-08&to=2017-09",
                                  "/api/v1/attribution", "/api/v1/campaigns/c1/attribution",
                                  "/api/v1/stage-map"])  # fmt: skip
def test_a_token_is_required(client, path):
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.put("/api/v1/stage-map", json={}).status_code == 401


def test_stage_metrics(client):
    r = client.get("/api/v1/metrics/stages?from=2017-08&to=2017-10", headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["period"] == "month" and body["baseline"] == "2017-08"
    assert body["rows"] == [
        {"period": "2017-08", "aware": 2, "use": 1, "produce": 0},
        {"period": "2017-09", "aware": 2, "use": 1, "produce": 1},
        {"period": "2017-10", "aware": 0, "use": 0, "produce": 0},
    ]
    assert body["growth"] == {"aware": 0.0, "use": 0.0, "produce": None}
    assert set(body["median"]) == set(body["signals"]) == {"aware", "use", "produce"}
    r = client.get(
        "/api/v1/metrics/stages",
        params={"from": "2017-08", "to": "2017-09", "campaign_id": "c1"},
        headers=AUTH,
    )
    assert [row["aware"] for row in r.json()["rows"]] == [1, 1]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("period=year&from=2017-08&to=2017-09", "period"),
        ("to=2017-09", "from"),
        ("from=2017-08", "to"),
        ("from=2017-14&to=2017-09", "from"),
        ("from=2017-09&to=2017-08", "to"),
        ("period=day&from=2017-08-01&to=2017-08-32", "to"),
        ("from=2017-08&to=2017-09&baseline=last", "baseline"),
        ("from=2017-08&to=2017-09&rules=nelson", "rules"),
    ],
)
def test_bad_stage_metric_parameters_are_422_naming_the_field(client, query, field):
    r = client.get(f"/api/v1/metrics/stages?{query}", headers=AUTH)
    assert field in fields(r)


def test_attribution(client):
    r = client.get("/api/v1/attribution", headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert (body["model"], body["window_days"]) == ("last_touch", 30)
    keys = {(row["key"], row["stage"]): row["credited"] for row in body["rows"]}
    assert keys == {("c1", "use"): 1.0, ("c1", "produce"): 1.0, ("c2", "aware"): 1.0,
                    ("unattributed", "aware"): 1.0}  # fmt: skip
    r = client.get(
        "/api/v1/attribution?window_days=7&group_by=channel&from=2017-08-01&to=2017-08",
        headers=AUTH,
    )
    assert r.status_code == 200
    assert {(row["key"], row["stage"]) for row in r.json()["rows"]} == {
        ("email", "use"), ("unattributed", "aware")}  # fmt: skip


@pytest.mark.parametrize(
    ("query", "field"),
    [("model=u_shaped", "model"), ("window_days=0", "window_days"),
     ("group_by=resource", "group_by"), ("from=2017-13", "from"), ("to=someday", "to")],
)  # fmt: skip
def test_bad_attribution_parameters(client, query, field):
    assert field in fields(client.get(f"/api/v1/attribution?{query}", headers=AUTH))


def test_campaign_attribution(client):
    r = client.get("/api/v1/campaigns/c1/attribution?model=linear", headers=AUTH)
    assert r.status_code == 200
    assert r.json() == [
        {"period": "2017-08", "stage": "use", "credited": 1.0, "people": 1, "events": 1},
        {"period": "2017-09", "stage": "produce", "credited": 1.0, "people": 1, "events": 1},
    ]
    r = client.get("/api/v1/campaigns/c1/attribution?period=week&window_days=7", headers=AUTH)
    assert r.json() == [
        {"period": "2017-08-14", "stage": "use", "credited": 1.0, "people": 1, "events": 1}
    ]
    assert "period" in fields(
        client.get("/api/v1/campaigns/c1/attribution?period=year", headers=AUTH)
    )


def test_stage_map_get_and_put(client):
    current = client.get("/api/v1/stage-map", headers=AUTH).json()
    assert "email.open" in current["aware"]
    new = {"aware": ["email.open"], "use": [], "produce": ["resource.view", "story.shared"]}
    r = client.put("/api/v1/stage-map", json=new, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["done"] is True and body["recomputed"]["events"] == 1
    assert {k: body[k] for k in new} == {k: sorted(v) for k, v in new.items()}
    assert client.get("/api/v1/stage-map", headers=AUTH).json() == {
        k: sorted(v) for k, v in new.items()
    }
    rows = client.get("/api/v1/metrics/stages?from=2017-08&to=2017-08", headers=AUTH).json()
    assert rows["rows"] == [{"period": "2017-08", "aware": 2, "use": 1, "produce": 1}]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"aware": ["x"], "use": ["x"]}, "two stages"),
        ({"awareness": ["x"]}, "unknown stage"),
        ({"aware": "email.open"}, "list"),
        (["aware"], ""),
    ],
)
def test_bad_stage_maps_are_422_with_the_reason(client, body, reason):
    r = client.put("/api/v1/stage-map", json=body, headers=AUTH)
    assert "body" in fields(r)
    assert reason in r.text
    assert "email.open" in client.get("/api/v1/stage-map", headers=AUTH).json()["aware"]


def test_stage_map_put_answers_what_the_recomputation_changed(client):
    """Dropping email.open from aware: the two people only opened emails are aware no more."""
    new = {"aware": [], "use": ["resource.view"], "produce": ["story.shared"]}
    r = client.put("/api/v1/stage-map", json=new, headers=AUTH)
    assert r.status_code == 200, r.text
    changes = r.json()["changes"]
    assert "email.open" in changes["aware"]["removed"] and changes["aware"]["added"] == []
    people = {s: (c["people_before"], c["people_after"]) for s, c in changes.items()}
    assert people == {"aware": (3, 1), "use": (1, 1), "produce": (1, 1)}


def test_an_analyst_sees_small_counts_withheld_and_an_admin_exact_ones(client):
    from services import sessions
    from services.auth import SESSION_COOKIE

    path = "/api/v1/metrics/stages?from=2017-08&to=2017-10"
    exact = client.get(path, headers=AUTH)
    assert exact.json()["disclosure"] == {"exact": True, "note": "not for sharing"}
    assert exact.headers["X-WinWin-Disclosure"] == "exact; not for sharing"
    signed = sessions.start(client.app.state.container, "ana", "analyst")
    client.cookies.set(SESSION_COOKIE, signed.session_id)
    shared = client.get(path).json()
    assert shared["rows"][0] == {"period": "2017-08", "aware": None, "use": None,
                                 "produce": 0, "suppressed": ["aware", "use"]}  # fmt: skip
    assert shared["growth"]["aware"] is None and shared["disclosure"]["min_cell"] == 11
    rows = client.get("/api/v1/attribution").json()["rows"]
    assert rows and all(r["people"] is None and r["suppressed"] for r in rows)
    rows = client.get("/api/v1/campaigns/c1/attribution").json()
    assert rows and all(r["people"] is None for r in rows)


def test_the_dashboard_csv_is_meant_to_be_shared_even_for_an_admin(client):
    import csv
    import io

    r = client.get("/api/v1/dashboard/export.csv?from=2017-08&to=2017-10", headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "-shared.csv" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["section", "key", "stage", "measure", "value"]
    monthly = {(k, s): v for section, k, s, _, v in rows if section == "monthly"}
    assert monthly[("2017-08", "aware")] == "<11" and monthly[("2017-08", "produce")] == "0"
    assert {v for section, *_, v in rows if section == "campaign"} == {"<11"}
    assert ["growth", "2017-08..2017-10", "aware", "factor", "suppressed"] in rows
    assert {"view", "counters_today", "counters_range", "median", "channel", "bots"} <= {
        r[0] for r in rows
    }


def test_months_the_data_cannot_hold_are_refused_with_the_field(client):
    """Schemathesis found `to=0000-01`: the twelve months before it stepped to year -1 and
    the CSV export answered 500. Every dashboard route says which month is wrong."""
    for path in ("/api/v1/dashboard/export.csv", "/api/v1/dashboard/panels"):
        for query in ("to=0000-05", "from=2017-13&to=2018-01", "from=0000-01&to=2017-01"):
            r = client.get(f"{path}?{query}", headers=AUTH)
            assert r.status_code == 422, (path, query, r.text)
            assert r.json()["detail"][0]["field"] in {"from", "to"}
