"""Dispatch bench: a 100,000-recipient email campaign rendered and handed to a fake
SendGrid (the test fake, in its own process) through the real Dispatcher and
SendGridEmailSender, 1,000 personalizations a request.

Baseline: the same fake SendGrid receiving the bodies alone (the dispatcher's requests
replayed without rendering or SQL), i.e. what the HTTP hop itself allows here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

from services.bench.env import ROOT, BenchEnv, progress
from services.bench.figures import Figure
from services.bootstrap import bootstrap
from services.campaigns.channels.email import SendGridEmailSender
from services.campaigns.dispatch import Dispatcher
from services.db import models
from services.domain.lifecycle import CampaignStatus
from services.domain.pseudonyms import pseudonymise
from services.ids import new_id

TARGET = 5000
API_KEY = "SG.bench-key"
HTML = (
    "<html><body><p>Hello {{ contact.first_name }},</p><p>This month's picks:</p>"
    '{% for r in resources %}<p><a href="{{ r.url }}">{{ r.title }}</a></p>{% endfor %}'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
)
TEXT = (
    "Hello {{ contact.first_name }},\n{% for r in resources %}{{ r.title }}: {{ r.url }}\n"
    "{% endfor %}Unsubscribe: {{ unsubscribe_url }}\n"
)


def bench_dispatch(recipients: int = 100_000) -> list[Figure]:
    with BenchEnv("dispatch") as env:
        env.vars["WINWIN_PUBLIC_BASE_URL"] = "https://winwin.example.org"
        settings = env.make_settings()
        campaign_id = _seed(env, settings, recipients)
        fake = subprocess.Popen(
            [sys.executable, "-m", "services.bench.sendgrid_proc", API_KEY],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        env.children.append(fake)  # type: ignore[arg-type]
        host = (fake.stdout.readline() if fake.stdout else "").strip()
        progress(
            f"dispatch: {recipients} recipients seeded; sending to the fake SendGrid at {host}"
        )
        sent, seconds = _dispatch(settings, host)
        stats = _stop_fake(fake)
        base_rate = _baseline(host_of := _start_fake())
        host_of.stdin.close()  # type: ignore[union-attr]
        host_of.wait(10)
        with env.sessions() as s:
            status = s.get(models.Campaign, campaign_id).status  # type: ignore[union-attr]
    rate = sent / seconds
    details = {
        "recipients": recipients,
        "sent": sent,
        "seconds": round(seconds, 2),
        "campaign_status": status,
    } | stats
    return [
        Figure(
            "dispatch",
            "recipients/s",
            rate,
            "rcpt/s",
            f">= {TARGET:,}/s",
            rate >= TARGET and sent == recipients == stats["delivered"],
            base_rate,
            "fake SendGrid alone",
            details,
        )
    ]


def _seed(env: BenchEnv, settings: Any, n: int) -> str:
    secret = settings.secret_key.get_secret_value().encode()
    now = datetime.now(UTC)
    with env.sessions() as s, s.begin():
        for start in range(0, n, 10_000):
            s.execute(
                insert(models.Contact),
                [
                    {
                        "external_id": f"fam-{i}",
                        "pseudonym": pseudonymise(secret, f"fam-{i}"),
                        "email": f"family{i}@example.net",
                        "email_normalized": f"family{i}@example.net",
                        "name": f"Parent {i}",
                        "role": "parent",
                        "language": "en",
                        "attributes": {},
                        "tags": [],
                        "needs": [],
                        "email_consent": "confirmed",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(start, min(n, start + 10_000))
                ],
            )
        s.add(
            models.Resource(
                id="diet",
                title="Diet tips",
                url="https://network.example.org/diet",
                kind="tips",
                topics=[],
            )
        )
        s.add(
            models.Template(
                id=(tid := new_id()),
                name="digest",
                channel="email",
                subject="News for {{ contact.first_name }}",
                html=HTML,
                text=TEXT,
            )
        )
        s.flush()
        s.add(
            models.Campaign(
                id=(cid := new_id()),
                name="Bench month",
                channel="email",
                template_id=tid,
                audience=None,
                resources=["diet"],
                messengers=[],
                platforms=[],
                status=CampaignStatus.SCHEDULED,
                send_at=now,
            )
        )
    return cid


def _dispatch(settings: Any, host: str) -> tuple[int, float]:
    container = bootstrap(settings)
    try:
        sender = SendGridEmailSender(API_KEY, "outreach@example.org", host)
        start = time.monotonic()
        sent = Dispatcher(container, sender).dispatch_due(datetime.now(UTC))
        return sent, time.monotonic() - start
    finally:
        container.engine.dispose()


def _start_fake() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.bench.sendgrid_proc", API_KEY],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _stop_fake(fake: subprocess.Popen[str]) -> dict[str, Any]:
    assert fake.stdin and fake.stdout
    fake.stdin.write("stats\n")
    fake.stdin.flush()
    stats = json.loads(fake.stdout.readline())
    fake.wait(30)
    return dict(stats)


def _baseline(fake: subprocess.Popen[str], requests: int = 10, per_request: int = 1000) -> float:
    """Recipients/s the fake SendGrid accepts when handed ready bodies (no rendering)."""
    import httpx

    host = (fake.stdout.readline() if fake.stdout else "").strip()
    body = {
        "from": {"email": "outreach@example.org"},
        "subject": "News for -ww_first-",
        "content": [
            {"type": "text/plain", "value": "Hello -ww_first-, https://x.example/r/-ww_res0-"},
            {"type": "text/html", "value": "<p>Hello -ww_first-</p>"},
        ],
        "personalizations": [
            {
                "to": [{"email": f"family{i}@example.net"}],
                "substitutions": {"-ww_first-": "Parent", "-ww_res0-": f"tok{i}"},
                "custom_args": {"ww_send": f"s{i}"},
            }
            for i in range(per_request)
        ],
    }
    payload = json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    with httpx.Client(base_url=host, headers=headers, timeout=60) as client:
        start = time.monotonic()
        for _ in range(requests):
            r = client.post("/v3/mail/send", content=payload)
            if r.status_code != 202:
                raise RuntimeError(f"fake SendGrid answered {r.status_code}: {r.text[:200]}")
        return requests * per_request / (time.monotonic() - start)
