"""People of the demo network, behaving like people do, over HTTP.

* Families read the digest in the local outbox: most ignore it, some open it (pixel),
  fewer click its tracked links (/r), fewer still use a resource and a few contribute.
* Followers of the network's social accounts click the published posts' links.
* Each trusted messenger opens their own toolkit page (/t/) once, and people they reach
  arrive through the messenger's tracked links; some then use the resource or share.

Visitors carry no bearer token: they are browsers with their own ``ww_vid`` cookie.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select

from services.config import Settings
from services.db.models import Contact, LocalEmail, Send
from services.db.session import make_engine, make_sessionmaker
from services.demo.network import event, ok


class Simulation:
    """One half-second of the network's behaviour per :meth:`tick`."""

    def __init__(
        self,
        client: httpx.Client,
        public: httpx.Client,
        settings: Settings,
        families: int,
        rng: random.Random,
    ):
        self.client, self.public, self.settings = client, public, settings
        self.families, self.rng = families, rng
        self.ids: dict[str, str] = {}
        self.inbox: list[dict[str, Any]] = []
        self.read_all = False
        self.posts: list[dict[str, Any]] = []  # the social posts' tracked links
        self.kits: list[dict[str, Any]] = []  # the messengers' toolkits
        self.visitors = 0
        self.posted = 0

    def tick(self) -> None:
        events = self._email_recipients() + self._social_followers() + self._messenger_reach()
        if self.rng.random() < 0.5:  # people who found the site on their own
            who = f"v:web-{self.rng.randrange(10**6)}"
            events.append(event("page.view", who, datetime.now(UTC)))
        if events:
            ok(self.client.post("/api/v1/events", json=events))
            self.posted += len(events)

    # -- email -----------------------------------------------------------------------
    def _email_recipients(self) -> list[dict[str, Any]]:
        self._check_inbox()
        take = min(len(self.inbox), 40)
        batch = [self.inbox.pop(self.rng.randrange(len(self.inbox))) for _ in range(take)]
        events = []
        for mail in batch:
            if self.rng.random() < 0.6:
                for pixel in mail["pixels"]:
                    self.public.get(pixel)
            if self.rng.random() < 0.5 and mail["links"]:
                self.public.get(self.rng.choice(mail["links"]))
                now, campaign = datetime.now(UTC), self.ids["email"]
                if self.rng.random() < 0.6:
                    events.append(
                        event(
                            "resource.view", mail["who"], now, campaign_id=campaign, channel="email"
                        )
                    )
                if self.rng.random() < 0.2:
                    events.append(event("contribution.submitted", mail["who"], now))
        return events

    def _check_inbox(self) -> None:
        if self.inbox or self.read_all:
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
        self.read_all = bool(rows)

    # -- social and toolkits: visitors arriving through tracked links ------------------
    def _social_followers(self) -> list[dict[str, Any]]:
        if not self.posts:
            posts = ok(self.client.get(f"/api/v1/campaigns/{self.ids['social']}/posts"))
            self.posts = [link for p in posts if p.get("published_at") for link in p["links"]]
        if not self.posts:
            return []
        return [self._arrive(self.rng.choice(self.posts)) for _ in range(3)]

    def _messenger_reach(self) -> list[dict[str, Any]]:
        if not self.kits:
            kits = ok(self.client.get(f"/api/v1/campaigns/{self.ids['toolkit']}/toolkits"))
            if not kits or not all(k["links"] for k in kits):
                return []
            self.kits = kits
            for kit in kits:  # the messenger looks at their own page first
                self.public.cookies.clear()
                self.public.get(kit["url"], headers={"Cookie": f"ww_vid={self._visitor()}"})
        return [self._arrive(self.rng.choice(kit["links"])) for kit in self.kits]

    def _visitor(self) -> str:
        self.visitors += 1
        return f"demo-{self.rng.randrange(10**9)}-{self.visitors}"

    def _arrive(self, link: dict[str, Any]) -> dict[str, Any]:
        """A new browser follows ``link``: its click is the touch; then it usually views
        the resource (use), now and then shares a story (produce), or just the page."""
        vid = self._visitor()
        self.public.cookies.clear()  # a browser of its own
        self.public.get(link["url"], headers={"Cookie": f"ww_vid={vid}"})
        now, roll = datetime.now(UTC), self.rng.random()
        if roll < 0.1:
            return event("story.shared", f"v:{vid}", now)
        if roll < 0.6 and link.get("resource_id"):
            return event("resource.view", f"v:{vid}", now, resource_id=link["resource_id"])
        return event("page.view", f"v:{vid}", now)
