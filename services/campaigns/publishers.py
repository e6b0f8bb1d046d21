"""The ``SocialPublisher`` port and its two adapters.

* :class:`FeedPublisher` puts a post into the public feeds (``/feeds/social.atom``,
  ``/feeds/social.json``) that scheduling tools (Buffer, Hootsuite, IFTTT, Zapier...) read.
* :class:`WebhookPublisher` POSTs the post as JSON to a configured URL, signed:
  ``X-WinWin-Timestamp: <unix seconds>`` and
  ``X-WinWin-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``.
  ``X-WinWin-Delivery`` is the post id: delivery is at least once, so a receiver that
  has seen that id already can answer 2xx and ignore it. :func:`verify_signature` is
  the receiver's check.

A publisher answers with a :class:`PublishResult`; it does not raise for a refused or
failed delivery, so one adapter's outage never stops another.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from services.db.models_social import SocialPost
from services.domain.lifecycle import PostStatus

if TYPE_CHECKING:
    from services.application import Container

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-WinWin-Signature"
TIMESTAMP_HEADER = "X-WinWin-Timestamp"
DELIVERY_HEADER = "X-WinWin-Delivery"
SIGNATURE_TOLERANCE = 300  # seconds a receiver should accept between timestamp and its clock


@dataclass(frozen=True)
class Post:
    """A rendered post handed to publishers (what the feeds and the webhook show)."""

    id: str
    campaign_id: str
    platform: str
    text: str
    links: list[dict[str, Any]]
    scheduled_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "campaign_id": self.campaign_id,
            "platform": self.platform,
            "text": self.text,
            "links": self.links,
            "scheduled_at": self.scheduled_at.isoformat() if self.scheduled_at else None,
        }


@dataclass(frozen=True)
class PublishResult:
    """``ok``; otherwise ``retry`` says whether trying again later may succeed."""

    ok: bool
    detail: str = ""
    retry: bool = True


class SocialPublisher(Protocol):
    """Port: somewhere a social post is published. ``name`` keys its delivery record."""

    name: str

    def publish(self, post: Post, now: datetime) -> PublishResult: ...


class FeedPublisher:
    """Publishes into the public Atom and JSON feeds: marks the stored post published."""

    name = "feed"

    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def publish(self, post: Post, now: datetime) -> PublishResult:
        with self._sessions() as session, session.begin():
            session.execute(
                update(SocialPost)
                .where(SocialPost.id == post.id, SocialPost.published_at.is_(None))
                .values(published_at=now, status=PostStatus.PUBLISHED)
            )
        return PublishResult(True, "in the feeds")


class WebhookPublisher:
    """POSTs each post as signed JSON to ``url`` (2xx = delivered)."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ):
        if not secret:
            raise ValueError(
                "WINWIN_SOCIAL_WEBHOOK_SECRET must be set when WINWIN_SOCIAL_WEBHOOK_URL is"
            )
        self.url = url
        self._secret = secret.encode()
        self._client = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)

    def publish(self, post: Post, now: datetime) -> PublishResult:
        body = json.dumps(
            {"type": "social.post", "post": post.as_json()}, separators=(",", ":")
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "WINWIN-social-webhook/1",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: "sha256=" + sign(self._secret, timestamp, body),
            DELIVERY_HEADER: post.id,
        }
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return PublishResult(False, f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= response.status_code < 300:
            return PublishResult(True, f"HTTP {response.status_code}")
        retry = response.status_code in (408, 425, 429) or response.status_code >= 500
        return PublishResult(False, f"HTTP {response.status_code}: {response.text[:200]}", retry)

    def close(self) -> None:
        self._client.close()


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``timestamp + "." + body``."""
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(
    secret: bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float | None = None,
    tolerance: int = SIGNATURE_TOLERANCE,
) -> bool:
    """A receiver's check: genuine signature and a timestamp within ``tolerance`` seconds."""
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    expected = "sha256=" + sign(secret, timestamp, body)
    return age <= tolerance and hmac.compare_digest(expected, signature)


def make_publishers(container: Container) -> list[SocialPublisher]:
    """The feed always; the webhook when ``WINWIN_SOCIAL_WEBHOOK_URL`` is set."""
    publishers: list[SocialPublisher] = [FeedPublisher(container.sessions)]
    settings = container.settings
    url = getattr(settings, "social_webhook_url", "") or ""
    if url:
        secret = getattr(settings, "social_webhook_secret", "") or ""
        if hasattr(secret, "get_secret_value"):
            secret = secret.get_secret_value()
        publishers.append(WebhookPublisher(url, secret))
    return publishers
