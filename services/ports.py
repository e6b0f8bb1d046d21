"""Ports: what the service layer needs from the world, named in one place as Protocols.

Adapters implement them; :func:`services.bootstrap.bootstrap` picks real ones, a test
passes fakes. The email and social ports live next to the messages they carry and are
re-exported here: :class:`EmailSender` (campaigns/channels/email.py: SendGrid or the
local outbox) and :class:`SocialPublisher` (campaigns/publishers.py: feed, webhook).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from services.campaigns.channels.email import EmailSender
from services.campaigns.publishers import SocialPublisher

__all__ = ["Clock", "EmailSender", "EventPublisher", "SocialPublisher"]


class Clock(Protocol):
    """Port: the current time, timezone-aware (tests pass a clock they move by hand)."""

    def __call__(self) -> datetime: ...


class EventPublisher(Protocol):
    """Port: engagement records from the hot endpoints (clicks, opens, page views),
    handed over without waiting and spooled in batches into the SQL outbox, from where
    the relay publishes them to Kafka (tracking/ingest.py: :class:`Gatherer`)."""

    def add(self, record: dict[str, Any]) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None:
        """Stop, after spooling what was handed over."""
