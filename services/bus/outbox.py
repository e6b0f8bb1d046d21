"""Transactional outbox: records are written in the same SQL transaction as the change
that caused them; the relay publishes them. Pure SQL, no Kafka here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from services.db.models import OutboxMessage


def enqueue(session: Session, topic: str, records: Sequence[dict[str, Any]]) -> None:
    """Add records bound for ``topic`` to the outbox (one row, however many records)."""
    if records:
        session.execute(insert(OutboxMessage), [{"topic": topic, "records": list(records)}])
