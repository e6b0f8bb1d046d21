"""Tracked links: creation rules and the cached look-ups behind /r, /o and /u.

Links and sent messages never change once written, so the hot endpoints read them from
a small per-process cache instead of a SQL round trip per click.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from services.config import Settings
from services.db.models import Campaign, Link, Send
from services.ids import new_id
from services.service_layer.handlers import find_link

if TYPE_CHECKING:
    from services.application import Container

CACHE_SIZE = 100_000
V = TypeVar("V")


class LinkError(ValueError):
    """A destination that may not be linked to; the message names the field."""


def check_destination(destination: str, settings: Settings) -> str:
    parts = urlsplit(destination.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LinkError("destination: must be an absolute http(s) URL")
    if any(ch in destination for ch in "\r\n\t\\") or "@" in (parts.netloc or ""):
        raise LinkError("destination: contains characters not allowed in a link")
    allowed = settings.allowed_hosts
    if allowed and parts.hostname.lower() not in allowed:
        raise LinkError(f"destination: host {parts.hostname!r} is not in WINWIN_LINK_ALLOWED_HOSTS")
    return destination.strip()


def create_link(session: Session, settings: Settings, destination: str, **fields: Any) -> Link:
    campaign_id = fields.get("campaign_id")
    if campaign_id and session.get(Campaign, campaign_id) is None:
        raise LinkError(f"campaign_id: unknown campaign {campaign_id!r}")
    link = Link(
        id=new_id(), token="", destination=check_destination(destination, settings), **fields
    )
    link.token = link.id  # the public token is signed around the id (tokens.py)
    session.add(link)
    session.flush()
    return link


@dataclass(frozen=True)
class SendView:
    id: str
    campaign_id: str
    contact_id: int
    person: str
    sent_at: datetime | None


class LRU(OrderedDict[str, V]):
    """A per-process cache of at most CACHE_SIZE entries, the oldest dropped first."""

    def remember(self, key: str, value: V) -> V:
        self[key] = value
        if len(self) > CACHE_SIZE:
            self.popitem(last=False)
        return value


#: What :func:`cached` answers for a key it does not hold (the caller looks it up).
MISS: Any = object()


def cached(cache: LRU[Any], key: str) -> Any:
    """The entry of ``cache`` (``container.links``/``.sends``) for ``key`` without touching
    SQL, else MISS (so that an async endpoint runs the SQL look-up in a thread only on a miss)."""
    return cache.get(key, MISS)


def lookup_link(container: Container, link_id: str) -> Link | None:
    cache = container.links
    if link_id in cache:
        return cache[link_id]
    link = find_link(container.unit_of_work(), link_id)
    return cache.remember(link_id, link) if link is not None else None


def lookup_send(container: Container, send_id: str) -> SendView | None:
    cache = container.sends
    if send_id in cache:
        return cache[send_id]
    with container.sessions() as session:
        send = session.get(Send, send_id)
        if send is None:
            return None
        view = SendView(send.id, send.campaign_id, send.contact_id, send.person, send.sent_at)
    return cache.remember(send_id, view) if view.sent_at else view
