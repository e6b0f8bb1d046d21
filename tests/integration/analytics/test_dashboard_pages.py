"""The dashboard's pages without Kafka: login, pages behind it, assets, security headers,
the panels endpoint, the live stream's range check, and JSON logs."""

from __future__ import annotations

import io
import json
import logging

import pytest
from fastapi.testclient import TestClient

from services.config import Settings

TOKEN = "unit-test-token-0123456789"


@pytest.fixture
def client(tmp_path):
    from services.api import create_app
    from services.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'w.db'}"
    upgrade(url)
    settings = Settings(
        database_url=url,
        api_token=TOKEN,
        secret_key="unit-secret-0123456789abcdef",
        state_dir=tmp_path / "state",
    )
    with TestClient(create_app(settings=settings)) as c:
        yield c


def test_pages_need_the_login_and_send_a_strict_csp(client):
    assert 'name="token"' in client.get("/").text
    assert client.get("/campaigns", follow_redirects=False).status_code == 303
    assert client.post("/login", data={"token": "nope"}).status_code == 401
    assert client.post("/login", data={"token": TOKEN}, follow_redirects=False).status_code == 303
    for path in ("/", "/campaigns", "/campaigns/abc", "/preview"):
        r = client.get(path)
        assert r.status_code == 200 and "script-src 'self'" in r.headers["content-security-policy"]
        assert "<script>" not in r.text and "://" not in r.text  # no inline script, no CDN
    assert client.get("/ui/dashboard.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/ui/../services/config.py").status_code == 404


def test_panels_answer_without_kafka(client):
    client.post("/login", data={"token": TOKEN})
    body = client.get(
        "/api/v1/dashboard/panels", params={"from": "2017-08", "to": "2018-07"}
    ).json()
    assert body["from"] == "2017-08" and body["leaderboard"] == []
    assert body["bots"] == {"counted": 0, "flagged": 0, "rows": []}
    assert body["stream"]["deadletters"] is None and body["stream"]["error"]
    assert (
        client.get(
            "/api/v1/dashboard/panels", params={"from": "2018-07", "to": "2017-08"}
        ).status_code
        == 422
    )
    assert client.get("/api/v1/live", params={"from": "2017-8"}).status_code == 422
    assert client.get("/metrics").status_code == 200


def test_json_log_lines(monkeypatch):
    from services.logs import configure

    monkeypatch.setenv("WINWIN_LOG_FORMAT", "json")
    monkeypatch.setenv("WINWIN_LOG_LEVEL", "INFO")
    out = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure(role="relay", stream=out)
        logging.getLogger("services.bus.relay").info("moved %d records", 5, extra={"topic": "t"})
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    entry = json.loads(out.getvalue().splitlines()[-1])
    assert entry["msg"] == "moved 5 records" and entry["role"] == "relay" and entry["topic"] == "t"
    assert entry["level"] == "info" and entry["logger"] == "services.bus.relay"
