"""The demo network, seeded through the public HTTP API as a client would: resources,
trusted messengers, families, a year of history, and outreach on all three channels
(an email digest, a social post, a toolkit for the three messengers) plus a journey
that thanks the families who click with the next guide."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.domain.periods import add_months

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
HISTORY_MONTHS = 11
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
SOCIAL_TEXT = (
    '{% if platform == "instagram" %}{{ resources[0].title }} for your family: {{ resources[0].url }}'
    "{% else %}{{ campaign.name }}: {{ resources[0].title }}. Read it: {{ resources[0].url }}{% endif %}"
)
TOOLKIT_TEXT = """{{ campaign.name }}: {% for r in resources %}{{ r.title }} {{ r.url }} {% endfor %}
--- sms ---
{{ messenger.name }} recommends: {{ resources[0].url }}"""
THANKS_TEXT = """Hi {{ contact.first_name }}, thank you for reading.
Next, what other families read first: {{ track('https://network.example.org/resources/starter-guide') }}
Unsubscribe: {{ unsubscribe_url }}"""


def ok(response: httpx.Response) -> Any:
    """The JSON of a successful answer; otherwise an error naming the request."""
    if response.status_code >= 300:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text[:300]}"
        )
    return response.json()


def event(kind: str, who: str, at: datetime, **extra: str) -> dict[str, Any]:
    """An engagement event for ``POST /api/v1/events``."""
    return {
        "event_id": f"demo-{kind}-{who}-{at.timestamp():.6f}",
        "type": kind,
        "person_ref": who,
        "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        **extra,
    }


def history_months(now: datetime, months: int = HISTORY_MONTHS) -> list[datetime]:
    """The first moments (noon UTC) of the ``months`` calendar months before ``now``'s,
    oldest first: one per month, none skipped whatever day of the month it is."""
    first = now.astimezone(UTC).replace(day=1, hour=12, minute=0, second=0, microsecond=0)
    return [add_months(first, -back) for back in range(months, 0, -1)]


def backfill(
    client: httpx.Client, families: int, rng: random.Random, now: datetime | None = None
) -> None:
    """Eleven past months of web activity, growing, so the run chart has a history."""
    events: list[dict[str, Any]] = []
    for age, month in enumerate(history_months(now or datetime.now(UTC))):
        growth = 1 + age * 0.3
        for k in range(max(1, int(families * 0.04 * growth))):
            who = f"fam-{rng.randrange(families):05d}"
            at = month + timedelta(days=rng.randrange(27), minutes=rng.randrange(1440))
            events.append(event("page.view", who, at))
            if k % 2 == 0:
                events.append(event("resource.view", who, at + timedelta(minutes=3)))
            if k % 8 == 0:
                events.append(event("story.shared", who, at + timedelta(minutes=9)))
    for start in range(0, len(events), 1000):
        ok(client.post("/api/v1/events", json=events[start : start + 1000]))


def seed_catalogue(client: httpx.Client, people: list[dict[str, Any]]) -> None:
    """Resources, messengers and the families (contacts)."""
    for rid, title, kind, topics in RESOURCES:
        url = f"https://network.example.org/resources/{rid}"
        body = {"id": rid, "title": title, "kind": kind, "topics": topics, "url": url}
        ok(client.post("/api/v1/resources", json=body))
    for mid, name, role in MESSENGERS:
        ok(client.post("/api/v1/messengers", json={"id": mid, "name": name, "role": role}))
    for start in range(0, len(people), 1000):
        ok(client.post("/api/v1/contacts", json=people[start : start + 1000]))


def _template(client: httpx.Client, name: str, channel: str, **parts: str) -> str:
    return str(
        ok(client.post("/api/v1/templates", json={"name": name, "channel": channel} | parts))["id"]
    )


def _campaign(client: httpx.Client, body: dict[str, Any]) -> str:
    campaign_id = str(ok(client.post("/api/v1/campaigns", json=body))["id"])
    ok(client.post(f"/api/v1/campaigns/{campaign_id}/schedule", json={}))
    return campaign_id


def thanks_journey(client: httpx.Client, email_campaign: str) -> str:
    """A family who clicks the digest gets the next guide a few seconds later, unless
    they already shared something of their own."""
    template = _template(
        client, "Thank you for reading", "email", subject="{{ contact.first_name }}, one more from the network",
        text=THANKS_TEXT,
    )  # fmt: skip
    body = {
        "name": "thank readers",
        "trigger": {"types": ["link.click"], "campaign_id": email_campaign},
        "delay": "PT5S",
        "exit": {"reached_stage": "produce"},
        "action": {"channel": "email", "template_id": template},
        "enabled": True,
    }
    return str(ok(client.post("/api/v1/journeys", json=body))["id"])


def seed_outreach(client: httpx.Client) -> dict[str, str]:
    """The email digest (with its journey), the social post and the messengers' toolkit,
    each scheduled now: ids by channel, and the journey's under ``journey``."""
    digest = ok(client.post("/api/v1/campaigns", json={
        "name": "Monthly digest", "channel": "email",
        "template_id": _template(client, "Monthly digest", "email", subject="{{ contact.first_name }}, new from the network", html=TEMPLATE_HTML, text=TEMPLATE_TEXT),
        "audience": {"all": [{"attr": "role", "in": ["parent", "patient"]}]},
        "resources": [r[0] for r in RESOURCES[:3]],
    }))["id"]  # fmt: skip
    journey = thanks_journey(client, digest)  # before the clicks: a journey sees later events
    ok(client.post(f"/api/v1/campaigns/{digest}/schedule", json={}))
    social = _campaign(client, {
        "name": "Diet tips week", "channel": "social", "resources": ["diet-tips"],
        "template_id": _template(client, "Diet tips post", "social", text=SOCIAL_TEXT),
    })  # fmt: skip
    toolkit = _campaign(client, {
        "name": "School year toolkit", "channel": "toolkit",
        "template_id": _template(client, "School year toolkit", "toolkit", text=TOOLKIT_TEXT),
        "resources": ["school-plan", "starter-guide"], "messengers": [m[0] for m in MESSENGERS],
    })  # fmt: skip
    return {"email": digest, "social": social, "toolkit": toolkit, "journey": journey}
