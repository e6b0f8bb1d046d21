"""Shared by the journey tests: a controllable clock, a container, seed data."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from services.bootstrap import Container, bootstrap
from services.config import Settings
from services.db.models import Campaign, Contact, Resource, Send, Template
from services.domain.events import format_timestamp
from services.domain.pseudonyms import pseudonymise, visitor_ref

SECRET = "journeys-test-secret-0123456789"
TOKEN = "journeys-test-token-0123456789"
T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


class Clock:
    """``container.now``: a time the test moves by hand."""

    def __init__(self, at: datetime = T0):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def person(ref: str) -> str:
    return pseudonymise(SECRET.encode(), ref)


def visitor(vid: str) -> str:
    return person(visitor_ref(vid))


def make_container(url: str, tmp_path: Path, clock: Clock, **overrides: Any) -> Container:
    """A dev-mode container on ``url``; ``overrides`` replace any setting (``env`` too)."""
    defaults: dict[str, Any] = {
        "env": "dev",
        "database_url": url,
        "secret_key": SECRET,
        "api_token": TOKEN,
        "public_base_url": "http://testserver",
        "state_dir": tmp_path / "state",
    }
    return bootstrap(Settings(**(defaults | overrides)), now=clock)


def add_contacts(
    c: Container, refs: Sequence[str], consent: str = "confirmed", **fields: Any
) -> None:
    rows = [
        {"external_id": ref, "pseudonym": person(ref), "email": f"{ref}@example.net"}
        | {"email_normalized": f"{ref}@example.net", "name": f"Parent {ref}", "language": "en"}
        | {"attributes": {}, "tags": [], "needs": [], "email_consent": consent}
        | fields
        for ref in refs
    ]
    with c.sessions() as s, s.begin():
        s.execute(insert(Contact), rows)


def add_resource(c: Container, rid: str, topics: Sequence[str], title: str | None = None) -> None:
    with c.sessions() as s, s.begin():
        s.add(
            Resource(
                id=rid,
                title=title or rid,
                url=f"https://network.example.org/{rid}",
                kind="guide",
                topics=list(topics),
            )
        )


def add_template(c: Container, tid: str = "tpl-invite") -> str:
    with c.sessions() as s, s.begin():
        s.add(
            Template(
                id=tid,
                name="invite",
                channel="email",
                subject="Share your tip, {{ contact.first_name }}",
                html=None,
                text="Hello {{ contact.name }}, share a tip! {{ unsubscribe_url }}",
            )
        )
    return tid


def add_sent(c: Container, campaign_id: str, refs_at: Sequence[tuple[str, datetime]]) -> list[str]:
    """A campaign already sent to some contacts (for the frequency cap); returns send ids."""
    from sqlalchemy import select

    with c.sessions() as s, s.begin():
        if s.get(Template, "tpl-news") is None:
            s.add(
                Template(
                    id="tpl-news",
                    name="news",
                    channel="email",
                    subject="News",
                    html=None,
                    text="News",
                )
            )
            s.flush()
        s.add(
            Campaign(
                id=campaign_id,
                name=campaign_id,
                channel="email",
                template_id="tpl-news",
                resources=[],
                status="sent",
            )
        )
        s.flush()
        ids = dict(s.execute(select(Contact.external_id, Contact.id)).all())
        sends = [
            {
                "id": f"{campaign_id}-{ref}",
                "campaign_id": campaign_id,
                "contact_id": ids[ref],
                "person": person(ref),
                "status": "sent",
                "sent_at": at,
            }
            for ref, at in refs_at
        ]
        s.execute(insert(Send), sends)
    return [row["id"] for row in sends]


def record(
    eid: str, who: str, at: datetime, type_: str = "resource.view", **extra: Any
) -> dict[str, Any]:
    """An engagement record as the stream carries it (``who`` is a pseudonym)."""
    return {
        "event_id": eid,
        "type": type_,
        "occurred_at": format_timestamp(at),
        "person": who,
        "source": "api",
        "properties": {},
    } | extra
