"""Building one messenger's toolkit: its Toolkit row, its tracked links (created once,
replaced when a resource's URL changes) and its messages rendered in the sandbox.

Used by :mod:`services.campaigns.toolkits`; see there for the template format.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from services.campaigns.rendering import TemplateProblem
from services.db.models import Campaign, Link, Messenger, Resource, Template
from services.db.models_toolkits import Toolkit, ToolkitLink
from services.db.upsert import insert_ignore
from services.ids import new_id
from services.tracking.links import LinkError, check_destination, create_link

if TYPE_CHECKING:
    from services.application import Container

__all__ = ["KINDS", "ToolkitError", "build_toolkit", "split_messages"]

KINDS = ("sms", "whatsapp", "email", "social")
_MARKER = re.compile(r"^[ \t]*---[ \t]*(sms|whatsapp|email|social)[ \t]*---[ \t]*$", re.I | re.M)
_TRACK_POSITION = 1000
_TOOLKITS = cast(Table, Toolkit.__table__)
_TOOLKIT_LINKS = cast(Table, ToolkitLink.__table__)


class ToolkitError(ValueError):
    """A toolkit that cannot be built; the message says why (unknown campaign, ...)."""


def split_messages(text: str) -> dict[str, str]:
    """``{kind: message}`` from a rendered text part (see the module doc)."""
    parts = _MARKER.split(text)
    common = parts[0].strip()
    own = {name.lower(): body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
    return {kind: own.get(kind) or common for kind in KINDS if own.get(kind) or common}


def build_toolkit(
    session: Session,
    c: Container,
    campaign: Campaign,
    template: Template,
    resources: list[Resource],
    messenger: Messenger,
    refresh: bool,
) -> str:
    """Create (once) one messenger's toolkit and links, render its messages when new or
    ``refresh``; return its id. Racing builders agree on one row (insert-or-ignore)."""
    where = (Toolkit.campaign_id == campaign.id, Toolkit.messenger_id == messenger.id)
    toolkit = session.scalar(select(Toolkit).where(*where))
    if toolkit is None:
        tid = new_id()
        row = {
            "id": tid,
            "campaign_id": campaign.id,
            "messenger_id": messenger.id,
            "token": c.tokens.sign("t", tid),
        }
        insert_ignore(session, _TOOLKITS, [row | {"messages": None, "built_at": None}])
        toolkit = session.scalars(
            select(Toolkit).where(*where)
        ).one()  # ours, or a racing builder's
    links = _Links(session, c, campaign.id, messenger.id, toolkit.id)
    urls = {
        r.id: links.url(r.id, r.url, resource_id=r.id, position=i) for i, r in enumerate(resources)
    }
    if toolkit.messages is None or refresh:
        toolkit.messages = _render(c, campaign, template, resources, messenger, urls, links)
        toolkit.built_at = c.now().astimezone(UTC)
    return toolkit.id


class _Links:
    """The tracked links of one toolkit: existing ones reused, missing ones created."""

    def __init__(
        self, session: Session, c: Container, campaign_id: str, messenger_id: str, toolkit_id: str
    ):
        self.session, self.c = session, c
        self.fields = {
            "campaign_id": campaign_id,
            "channel": "toolkit",
            "messenger_id": messenger_id,
        }
        self.toolkit_id = toolkit_id
        rows = session.execute(
            select(ToolkitLink.key, ToolkitLink.link_id, Link.destination)
            .join(Link, Link.id == ToolkitLink.link_id)
            .where(ToolkitLink.toolkit_id == toolkit_id)
        ).all()
        self.known = {key: (link_id, destination) for key, link_id, destination in rows}

    def url(self, key: str, destination: str, *, resource_id: str | None, position: int) -> str:
        try:
            destination = check_destination(destination, self.c.settings)
        except LinkError as exc:
            raise ToolkitError(f"resource {resource_id or key!r}: {exc}") from None
        link_id, stored = self.known.get(key, (None, None))
        if link_id is None or stored != destination:  # new, or the resource's URL changed
            link = create_link(
                self.session, self.c.settings, destination, resource_id=resource_id, **self.fields
            )
            row = {
                "toolkit_id": self.toolkit_id,
                "key": key,
                "resource_id": resource_id,
                "link_id": link.id,
                "position": position,
            }
            if link_id is None:
                insert_ignore(self.session, _TOOLKIT_LINKS, [row])
            else:
                self.session.execute(
                    update(ToolkitLink)
                    .where(ToolkitLink.toolkit_id == self.toolkit_id, ToolkitLink.key == key)
                    .values(link_id=link.id)
                )
            link_id = self.session.scalars(
                select(ToolkitLink.link_id).where(
                    ToolkitLink.toolkit_id == self.toolkit_id, ToolkitLink.key == key
                )
            ).one()
            self.known[key] = (link_id, destination)
        return f"{self.c.settings.public_base_url}/r/{self.c.tokens.sign('r', link_id)}"

    def track(self, url: str) -> str:
        if not isinstance(url, str) or not url.strip().lower().startswith(("http://", "https://")):
            raise ValueError(f"track() needs an absolute http(s) URL, got {url!r}")
        key = "track:" + hashlib.sha256(url.strip().encode()).hexdigest()[:32]
        return self.url(key, url, resource_id=None, position=_TRACK_POSITION + len(self.known))


def _render(
    c: Container,
    campaign: Campaign,
    template: Template,
    resources: list[Resource],
    messenger: Messenger,
    urls: dict[str, str],
    links: _Links,
) -> dict[str, Any]:
    context = {
        "contact": {"name": "", "first_name": "", "language": None, "attributes": {}},
        "campaign": {"id": campaign.id, "name": campaign.name},
        "resources": [
            {"id": r.id, "title": r.title, "kind": r.kind, "url": urls[r.id]} for r in resources
        ],
        "recommended": [],
        "messenger": {"id": messenger.id, "name": messenger.name, "role": messenger.role},
        "track": links.track,
        "unsubscribe_url": "",
        "preferences_url": "",
    }
    try:
        rendered = c.renderer.render(template.subject, template.html, template.text, context)
    except TemplateProblem as exc:
        raise ToolkitError(
            f"campaign {campaign.id}: template does not render: {exc.reason}"
        ) from None
    messages: dict[str, Any] = split_messages(rendered.text)
    messages["subject"] = rendered.subject or campaign.name
    messages["flyer_html"] = rendered.html
    messages["intro"] = _MARKER.split(rendered.text)[0].strip()
    return messages
