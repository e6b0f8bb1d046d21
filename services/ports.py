"""Ports: what the service layer needs from the world, named in one place as Protocols.

Adapters implement them; :func:`services.bootstrap.bootstrap` picks real ones, a test
passes fakes. The email and social ports live next to the messages they carry:
:class:`~services.campaigns.channels.email.EmailSender` (SendGrid or the local outbox) and
:class:`~services.campaigns.publishers.SocialPublisher` (feed, webhook). This module
imports nothing of the product, so every layer may name its ports.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

__all__ = ["Clock", "EventPublisher"]


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
