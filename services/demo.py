"""``winwin demo``: a seeded network, an email campaign, and simulated recipients.

Everything goes through the real system: the supervisor runs the api, stream worker,
dispatcher and relay on the embedded broker; the simulation seeds through the HTTP API,
reads the local outbox for each family's email, opens it (pixel), clicks its tracked
links (/r) and posts use and contribution events (/api/v1/events) over time.
"""

from __future__ import annotations

import random
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from services.accounts_cli import dev_admin_sign_in
from services.config import Settings
from services.db.models import Contact, LocalEmail, Send
from services.db.session import make_engine, make_sessionmaker
from services.supervisor import Supervisor

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
RESOURCES = [
    (
        "starter-guide",
        "Newly diagnosed: a starter guide for families",
        "guide",
        ["newly-diagnosed"],
    ),
    ("diet-tips", "Diet tips from other parents", "tips", ["diet"]),
    ("school-plan", "School accommodation plan template", "tool", ["school"]),
    ("transition", "Moving to adult care: a checklist", "tool", ["transition"]),
    ("feelings", "Talking about feelings: stories from teens", "story", ["mental-health"]),
    ("med-tracker", "Medication tracker", "tool", ["treatment"]),
]
MESSENGERS = [
    ("maria", "Maria (parent leader)", "parent"),
    ("dr-lee", "Dr. Lee", "clinician"),
    ("sam", "Sam (patient advocate)", "patient"),
]
TEMPLATE_TEXT = """Hi {{ contact.first_name }},

This month the network shares what families asked for:
{% for r in resources %}- {{ r.title }}: {{ r.url }}
{% endfor %}
Have a tip of your own? Share it: {{ track('https://network.example.org/share') }}

Unsubscribe: {{ unsubscribe_url }}
"""
TEMPLATE_HTML = """<html><body><p>Hi {{ contact.first_name }},</p><ul>
{% for r in resources %}<li><a href="{{ r.url }}">{{ r.title }}</a></li>{% endfor %}
</ul><p><a href="{{ track('https://network.example.org/share') }}">Share your own tip</a></p>
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>"""


def run_demo(
    settings: Settings, port: int, headless: bool, duration: float | None, families: int
) -> int:
    base = f"http://127.0.0.1:{port}"
    settings = settings.model_copy(update={"public_base_url": base})
    token = settings.api_token.get_secret_value()
    with Supervisor(settings, port=port) as sup:
        client = httpx.Client(
            base_url=base,
            headers={"Authorization": f"Bearer {token}", "User-Agent": BROWSER},
            timeout=30,
        )
        _wait_ready(client, sup)
        if not headless:
            admin = dev_admin_sign_in(settings)
            who = f"as the admin (email / password):\n  {admin}\nor " if admin else ""
            print(
                f"\nWINWIN demo: open {base}/ and sign in {who}with the API token:\n  {token}\n(Ctrl-C stops)\n"
            )
        sim = Simulation(client, settings, families, random.Random(2017))
        sim.seed()
        deadline = time.monotonic() + duration if duration else None
        try:
            while deadline is None or time.monotonic() < deadline:
                sup.watch()  # a role that died is started again
                sim.tick()
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        return _summary(client, sim)


def _wait_ready(client: httpx.Client, sup: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sup.watch()
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise TimeoutError("WINWIN did not become ready in time")


class Simulation:
    """Families of a small network, behaving like people do: most ignore the email,
    some open it, fewer click, fewer still use a resource and a few contribute."""

    def __init__(self, client: httpx.Client, settings: Settings, families: int, rng: random.Random):
        self.client, self.settings, self.families, self.rng = client, settings, families, rng
        self.campaign_id = ""
        self.inbox: list[dict[str, Any]] = []
        self.posted = 0

    def seed(self) -> None:
        c = self.client
        for rid, title, kind, topics in RESOURCES:
            _ok(
                c.post(
                    "/api/v1/resources",
                    json={
                        "id": rid,
                        "title": title,
                        "kind": kind,
                        "topics": topics,
                        "url": f"https://network.example.org/resources/{rid}",
                    },
                )
            )
        for mid, name, role in MESSENGERS:
            _ok(c.post("/api/v1/messengers", json={"id": mid, "name": name, "role": role}))
        people = [self._family(i) for i in range(self.families)]
        for start in range(0, len(people), 1000):
            _ok(c.post("/api/v1/contacts", json=people[start : start + 1000]))
        self._backfill()
        template = _ok(
            c.post(
                "/api/v1/templates",
                json={
                    "name": "Monthly digest",
                    "channel": "email",
                    "subject": "{{ contact.first_name }}, new from the network",
                    "html": TEMPLATE_HTML,
                    "text": TEMPLATE_TEXT,
                },
            )
        )
        campaign = _ok(
            c.post(
                "/api/v1/campaigns",
                json={
                    "name": "Monthly digest",
                    "channel": "email",
                    "template_id": template["id"],
                    "audience": {"all": [{"attr": "role", "in": ["parent", "patient"]}]},
                    "resources": [r[0] for r in RESOURCES[:3]],
                },
            )
        )
        self.campaign_id = campaign["id"]
        _ok(c.post(f"/api/v1/campaigns/{self.campaign_id}/schedule", json={}))

    def _family(self, i: int) -> dict[str, Any]:
        first = self.rng.choice(
            ["Ana", "Ben", "Chloe", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "June"]
        )
        return {
            "external_id": f"fam-{i:05d}",
            "email": f"family{i:05d}@example.net",
            "name": f"{first} Family{i}",
            "role": "patient" if i % 5 == 0 else "parent",
            "language": "es" if i % 7 == 0 else "en",
            "consent": {"email": "confirmed" if i % 10 else "unconfirmed"},
        }

    def _backfill(self) -> None:
        """Eleven past months of web activity, growing, so the run chart has a history."""
        now = datetime.now(UTC).replace(day=1, hour=12, minute=0, second=0, microsecond=0)
        events: list[dict[str, Any]] = []
        for back in range(11, 0, -1):
            month = (now - timedelta(days=31 * back)).replace(day=1)
            growth = 1 + (11 - back) * 0.3
            for k in range(int(self.families * 0.04 * growth)):
                who = f"fam-{self.rng.randrange(self.families):05d}"
                at = month + timedelta(
                    days=self.rng.randrange(27), minutes=self.rng.randrange(1440)
                )
                events.append(_event("page.view", who, at))
                if k % 2 == 0:
                    events.append(_event("resource.view", who, at + timedelta(minutes=3)))
                if k % 8 == 0:
                    events.append(_event("story.shared", who, at + timedelta(minutes=9)))
        for start in range(0, len(events), 1000):
            _ok(self.client.post("/api/v1/events", json=events[start : start + 1000]))

    def tick(self) -> None:
        """One half-second of recipient behaviour."""
        self._check_inbox()
        if not self.inbox:
            return
        batch = [
            self.inbox.pop(self.rng.randrange(len(self.inbox)))
            for _ in range(min(len(self.inbox), 40))
        ]
        events = []
        for mail in batch:
            if self.rng.random() < 0.6:
                for pixel in mail["pixels"]:
                    self.client.get(pixel)
            if self.rng.random() < 0.5 and mail["links"]:
                self.client.get(self.rng.choice(mail["links"]), follow_redirects=False)
                now = datetime.now(UTC)
                if self.rng.random() < 0.6:
                    events.append(
                        _event("resource.view", mail["who"], now, campaign=self.campaign_id)
                    )
                if self.rng.random() < 0.2:
                    events.append(_event("contribution.submitted", mail["who"], now))
        if self.rng.random() < 0.5:  # people who found the site on their own
            events.append(
                _event("page.view", f"v:web-{self.rng.randrange(10**6)}", datetime.now(UTC))
            )
        if events:
            _ok(self.client.post("/api/v1/events", json=events))
            self.posted += len(events)

    def _check_inbox(self) -> None:
        if self.inbox or getattr(self, "_read_all", False):
            return

        sessions = make_sessionmaker(make_engine(self.settings.database_url))
        with sessions() as s:
            rows = s.execute(
                select(LocalEmail.html, Contact.external_id)
                .join(Send, Send.id == LocalEmail.send_id)
                .join(Contact, Contact.id == Send.contact_id)
            ).all()
        base = re.escape(self.settings.public_base_url)
        for html, who in rows:
            self.inbox.append(
                {
                    "who": who,
                    "links": sorted(set(re.findall(base + r"/r/[A-Za-z0-9_.-]+", html or ""))),
                    "pixels": re.findall(base + r"/o/[A-Za-z0-9_.-]+\.gif", html or ""),
                }
            )
        self._read_all = bool(rows)


def _event(kind: str, who: str, at: datetime, campaign: str | None = None) -> dict[str, Any]:
    event = {
        "event_id": f"demo-{kind}-{who}-{at.timestamp():.6f}",
        "type": kind,
        "person_ref": who,
        "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    if campaign:
        event |= {"campaign_id": campaign, "channel": "email"}
    return event


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 300:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text[:300]}"
        )
    return response.json()


def _summary(client: httpx.Client, sim: Simulation) -> int:
    month = datetime.now(UTC).strftime("%Y-%m")
    first = (datetime.now(UTC).replace(day=1) - timedelta(days=31 * 11)).strftime("%Y-%m")
    time.sleep(2)  # let the last events reach the counters
    data = _ok(
        client.get("/api/v1/metrics/stages", params={"period": "month", "from": first, "to": month})
    )
    now = data["rows"][-1]
    campaign = _ok(client.get(f"/api/v1/campaigns/{sim.campaign_id}"))
    print(
        f"WINWIN demo summary ({month}): aware={now['aware']} use={now['use']} produce={now['produce']}"
    )
    print(f"  email campaign: {campaign['progress']}; events posted by recipients: {sim.posted}")
    print(f"  growth since {data['baseline']}: {data['growth']}")
    return 0 if now["aware"] > 0 and now["use"] > 0 and now["produce"] > 0 else 1
