"""Tracked links: creation rules and the cached look-ups behind /r, /o and /u.

Links and sent messages never change once written, so the hot endpoints read them from
a small per-process cache instead of a SQL round trip per click.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from services.config import Settings
from services.db.models import Campaign, Link, Send
from services.ids import new_id

CACHE_SIZE = 100_000


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


class _LRU(OrderedDict[str, Any]):
    def remember(self, key: str, value: Any) -> Any:
        self[key] = value
        if len(self) > CACHE_SIZE:
            self.popitem(last=False)
        return value


def _cache(container: Any, name: str) -> _LRU:
    cache = container.extras.get(name)
    if cache is None:
        cache = container.extras.setdefault(name, _LRU())
    return cache  # type: ignore[no-any-return]


#: What :func:`cached` answers for a key it does not hold (the caller looks it up).
MISS: Any = object()


def cached(container: Any, name: str, key: str) -> Any:
    """``"links"``/``"sends"`` cache entry for ``key`` without touching SQL, else MISS
    (so that an async endpoint runs the SQL look-up in a thread only on a miss)."""
    return _cache(container, name).get(key, MISS)


def lookup_link(container: Any, link_id: str) -> Link | None:
    cache = _cache(container, "links")
    if link_id in cache:
        return cache[link_id]  # type: ignore[no-any-return]
    with container.sessions() as session:
        link = session.get(Link, link_id)
        if link is not None:
            session.expunge(link)
    return cache.remember(link_id, link) if link is not None else None


def lookup_send(container: Any, send_id: str) -> SendView | None:
    cache = _cache(container, "sends")
    if send_id in cache:
        return cache[send_id]  # type: ignore[no-any-return]
    with container.sessions() as session:
        send = session.get(Send, send_id)
        if send is None:
            return None
        view = SendView(send.id, send.campaign_id, send.contact_id, send.person, send.sent_at)
    return cache.remember(send_id, view) if view.sent_at else view
