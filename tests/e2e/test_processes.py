"""Production shape: `winwin api`, `worker`, `dispatcher` and `relay` as four separate
processes against real Kafka and PostgreSQL. An email campaign runs end to end (no
SendGrid key: the local outbox), recipients click and post events, every role gets
SIGTERM while work is in flight, exits cleanly, is started again, and every accepted
event is stored and counted exactly once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.db.migrate import upgrade
from services.db.models import EngagementEvent, LocalEmail, Send
from services.db.session import make_engine, make_sessionmaker
from tests.stack import BROWSER, ROOT, TOKEN, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]
ROLES = ("relay", "worker", "dispatcher", "api")
CONTACTS = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Roles:
    """The four roles as child processes, each logging JSON lines to its own file."""

    def __init__(self, env: dict[str, str], port: int, logs: Path):
        self.env, self.port, self.logs = env, port, logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        for role in ROLES:
            args = [sys.executable, "-m", "services.cli", role]
            if role == "api":
                args += ["--port", str(self.port)]
            out = open(self.logs / f"{role}-{self.starts}.log", "wb")  # noqa: SIM115 - the child owns it
            self.procs[role] = subprocess.Popen(
                args, cwd=self.logs, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def terminate(self) -> dict[str, int | None]:
        """SIGTERM to every role at once; their exit codes (None: had to be killed)."""
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for role, proc in self.procs.items():
            try:
                codes[role] = proc.wait(45)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                codes[role] = None
        return codes

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    def log_tail(self, chars: int = 1500) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}"
            for p in sorted(self.logs.glob("*.log"))
        )


@pytest.fixture
def production(
    kafka_bootstrap, postgres_server, tmp_path
) -> Iterator[tuple[Roles, httpx.Client, str]]:
    url = postgres_server.create_database()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WINWIN_")} | {
        "WINWIN_ENV": "production",
        "WINWIN_DATABASE_URL": url,
        "WINWIN_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "WINWIN_KAFKA_PARTITIONS": "4",
        "WINWIN_TOPIC_PREFIX": f"p{uuid.uuid4().hex[:10]}-",
        "WINWIN_SECRET_KEY": "process-test-secret-0123456789abcdef",
        "WINWIN_API_TOKEN": TOKEN,
        "WINWIN_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "WINWIN_STATE_DIR": str(tmp_path / "state"),
        "WINWIN_LOG_FORMAT": "json",
        "WINWIN_LOG_LEVEL": "INFO",
        "PYTHONPATH": str(ROOT),
    }
    upgrade(url)
    roles = Roles(env, port, tmp_path)
    headers = {"Authorization": f"Bearer {TOKEN}", "User-Agent": BROWSER}
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
        ) as client:
            yield roles, client, url
    finally:
        roles.kill_all()
        postgres_server.drop_database(url)


def _ready(client: httpx.Client) -> bool:
    try:
        return client.get("/readyz").status_code == 200
    except httpx.TransportError:
        return False


def _ok(r: httpx.Response) -> Any:
    assert r.status_code < 300, (
        f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}"
    )
    return r.json()


def _events(kind: str, prefix: str, campaign_id: str) -> list[dict[str, Any]]:
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return [
        {
            "event_id": f"{prefix}-{i}",
            "type": kind,
            "occurred_at": at,
            "person_ref": f"fam-{i}",
            "campaign_id": campaign_id,
            "channel": "email",
        }
        for i in range(CONTACTS)
    ]


def _campaign(client: httpx.Client) -> str:
    contacts = [
        {
            "external_id": f"fam-{i}",
            "email": f"family{i}@example.net",
            "name": f"Parent {i}",
            "consent": {"email": "confirmed"},
        }
        for i in range(CONTACTS)
    ]
    _ok(client.post("/api/v1/contacts", json=contacts))
    _ok(
        client.post(
            "/api/v1/resources",
            json={
                "id": "diet",
                "title": "Diet tips",
                "kind": "tips",
                "url": "https://network.example.org/diet",
            },
        )
    )
    tpl = _ok(
        client.post(
            "/api/v1/templates",
            json={
                "name": "digest",
                "channel": "email",
                "subject": "Hello {{ contact.first_name }}",
                "html": '<p>Hi</p>{% for r in resources %}<a href="{{ r.url }}">{{ r.title }}</a>{% endfor %}',
                "text": "Hi\n{% for r in resources %}{{ r.title }}: {{ r.url }}\n{% endfor %}",
            },
        )
    )
    cid = _ok(
        client.post(
            "/api/v1/campaigns",
            json={
                "name": "Diet month",
                "channel": "email",
                "template_id": tpl["id"],
                "resources": ["diet"],
            },
        )
    )["id"]
    _ok(client.post(f"/api/v1/campaigns/{cid}/schedule", json={}))
    return str(cid)


def test_four_processes_survive_sigterm_and_count_every_event_once(production):
    roles, client, url = production
    sessions = make_sessionmaker(make_engine(url))

    def count(*where: Any) -> int:
        with sessions() as s:
            return int(
                s.scalar(select(func.count()).select_from(EngagementEvent).where(*where)) or 0
            )

    roles.start()
    wait_for(lambda: _ready(client), 120, 0.5, f"/readyz\n{roles.log_tail()}")
    cid = _campaign(client)
    wait_for(
        lambda: client.get(f"/api/v1/campaigns/{cid}").json()["status"] == "sent",
        60,
        0.3,
        "the campaign to be sent",
    )
    mails = _ok(client.get("/api/v1/outbox", params={"campaign_id": cid, "limit": 1000}))
    links = [
        re.search(r"http://127\.0\.0\.1:\d+(/r/[A-Za-z0-9_.-]+)", m["text"]).group(1) for m in mails
    ]  # type: ignore[union-attr]
    assert len(links) == CONTACTS

    # In flight when SIGTERM arrives: clicks gathered in the API, events in the outbox/Kafka.
    accepted = _ok(client.post("/api/v1/events", json=_events("resource.view", "use", cid)))[
        "accepted"
    ]
    clicks = sum(
        client.get(link, follow_redirects=False).status_code == 302 for link in links[:100]
    )
    codes = roles.terminate()
    assert _clean(codes), f"not a clean exit on SIGTERM: {codes}\n{roles.log_tail()}"

    roles.start()
    wait_for(lambda: _ready(client), 120, 0.5, f"/readyz after restart\n{roles.log_tail()}")
    again = _ok(client.post("/api/v1/events", json=_events("resource.view", "use", cid)))
    assert again["accepted"] == 0 and again["duplicates"] == CONTACTS
    accepted += _ok(
        client.post("/api/v1/events", json=_events("contribution.submitted", "produce", cid))
    )["accepted"]
    assert accepted == 2 * CONTACTS and clicks == 100

    expected = accepted + clicks
    wait_for(lambda: count() == expected, 90, 0.5, f"{expected} events stored (have {count()})")
    month = datetime.now(UTC).strftime("%Y-%m")

    def stages() -> dict[str, Any]:
        params = {"from": month, "to": month}
        return _ok(client.get("/api/v1/metrics/stages", params=params))["rows"][0]  # type: ignore[no-any-return]

    wait_for(lambda: stages()["produce"] == CONTACTS, 60, 0.5, "every contributor counted")
    assert stages() == {"period": month, "aware": CONTACTS, "use": CONTACTS, "produce": CONTACTS}

    counted_clicks = count(EngagementEvent.type == "link.click", EngagementEvent.bot.is_(False))
    credited = {
        row["stage"]: row for row in _ok(client.get(f"/api/v1/campaigns/{cid}/attribution"))
    }
    assert credited["use"]["events"] == CONTACTS and credited["produce"]["events"] == CONTACTS
    assert (
        credited.get("aware", {}).get("events", 0) == counted_clicks
    )  # clicks right after delivery: scanners
    assert sum(r["credited"] for r in credited.values()) == pytest.approx(
        2 * CONTACTS + counted_clicks
    )
    with sessions() as s:  # nobody got the campaign twice
        assert (
            s.scalar(select(func.count()).select_from(Send).where(Send.status == "sent"))
            == CONTACTS
        )
        assert s.scalar(select(func.count()).select_from(LocalEmail)) == CONTACTS

    metrics = client.get("/metrics").text
    assert "winwin_worker_events_total{" in metrics and "winwin_consumer_lag_messages{" in metrics
    assert 'winwin_sends_total{status="sent"} 300' in metrics
    assert _clean(roles.terminate())
    _json_logs(roles.logs)


def _clean(codes: dict[str, int | None]) -> bool:
    """Exit 0, or (uvicorn re-raises the signal after its graceful shutdown) by SIGTERM itself."""
    return all(code in (0, -signal.SIGTERM) for code in codes.values())


def _json_logs(logs: Path) -> None:
    """WINWIN_LOG_FORMAT=json: what the roles logged through logging is JSON lines."""
    lines = [
        line for p in logs.glob("*.log") for line in p.read_text(errors="replace").splitlines()
    ]
    structured = [json.loads(line) for line in lines if line.startswith('{"ts"')]
    assert structured, "no JSON log line at all"
    assert all({"ts", "level", "logger", "msg", "role"} <= set(e) for e in structured)
